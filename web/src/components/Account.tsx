import { useState, type FormEvent } from "react";
import { ApiError, privateCall, webCall, type Me } from "../api";
import { fromString, sub, toFixed } from "../decimal";
import { fmtAmount, fmtTime, toCsv } from "../format";
import { usePoll } from "../hooks";
import type { AssetInfo } from "../market";
import { checkAmount, type PairInfo } from "../validate";
import { Funding } from "./Funding";

export interface Order {
  status: string;
  opentm: number;
  closetm?: number;
  reason?: string | null;
  descr: { pair: string; type: string; ordertype: string; price: string; price2: string; order: string };
  vol: string;
  vol_exec: string;
  cost: string;
  fee: string;
  price: string;
}
interface Trade {
  ordertxid: string;
  pair: string;
  time: number;
  type: string;
  ordertype: string;
  price: string;
  cost: string;
  fee: string;
  vol: string;
  maker: boolean;
}
interface LedgerEntry {
  refid: string;
  time: number;
  type: string;
  asset: string;
  amount: string;
  fee: string;
  balance: string;
}
export type Balances = Record<string, { balance: string; hold_trade: string }>;

type Tab = "open" | "closed" | "trades" | "balances" | "ledger" | "funding";
const TABS: [Tab, string][] = [
  ["open", "Open orders"],
  ["closed", "Order history"],
  ["trades", "Trade history"],
  ["balances", "Balances"],
  ["ledger", "Ledger"],
  ["funding", "Funding"],
];

export function Account(props: {
  pairs: PairInfo[];
  assets: Record<string, AssetInfo>;
  balances: Balances | null;
  version: number;
  bump: () => void;
  me: Me;
  setMe: (m: Me) => void;
}) {
  const [tab, setTab] = useState<Tab>("open");
  return (
    <section className="panel account" aria-label="Your account">
      <div className="tabs" role="tablist" aria-label="Account views">
        {TABS.map(([k, label]) => (
          <button
            key={k}
            type="button"
            role="tab"
            id={`tab-${k}`}
            aria-selected={tab === k}
            aria-controls={`pane-${k}`}
            onClick={() => setTab(k)}
          >
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`pane-${tab}`} aria-labelledby={`tab-${tab}`} className="scroll">
        {tab === "open" && <OpenOrders {...props} />}
        {tab === "closed" && <ClosedOrders {...props} />}
        {tab === "trades" && <Trades {...props} />}
        {tab === "balances" && <BalancesView {...props} />}
        {tab === "ledger" && <Ledger {...props} />}
        {tab === "funding" && <Funding {...props} />}
      </div>
    </section>
  );
}

function pairByAltname(pairs: PairInfo[], name: string): PairInfo | undefined {
  return pairs.find((p) => p.altname === name || p.id === name || p.wsname === name);
}

function OpenOrders({ pairs, version, bump }: { pairs: PairInfo[]; version: number; bump: () => void }) {
  const { data, error } = usePoll(
    async () => (await privateCall<{ open: Record<string, Order> }>("OpenOrders")).open,
    2000,
    [version],
  );
  const [rowError, setRowError] = useState<Record<string, string>>({});
  const [editing, setEditing] = useState("");
  const cancel = async (txid: string) => {
    try {
      await privateCall("CancelOrder", { txid });
      setRowError({});
      bump();
    } catch (e) {
      setRowError({ [txid]: e instanceof Error ? e.message : String(e) });
    }
  };
  const entries = Object.entries(data ?? {});
  return (
    <>
      {error && <p className="field-error">{error}</p>}
      <table className="compact" data-testid="open-orders">
        <thead>
          <tr>
            <th scope="col">Opened</th>
            <th scope="col">Pair</th>
            <th scope="col">Side</th>
            <th scope="col">Type</th>
            <th scope="col" className="num">
              Price
            </th>
            <th scope="col" className="num">
              Amount
            </th>
            <th scope="col" className="num">
              Filled
            </th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {entries.map(([txid, o]) => {
            const p = pairByAltname(pairs, o.descr.pair);
            return (
              <tr key={txid} data-txid={txid}>
                <td className="muted">{fmtTime(o.opentm)}</td>
                <td>{p?.wsname ?? o.descr.pair}</td>
                <td className={o.descr.type === "buy" ? "up" : "down"}>{o.descr.type}</td>
                <td>{o.descr.ordertype}</td>
                <td className="num">{o.descr.price}</td>
                <td className="num">{fmtAmount(o.vol, p?.lot_decimals ?? 8)}</td>
                <td className="num">{fmtAmount(o.vol_exec, p?.lot_decimals ?? 8)}</td>
                <td className="actions">
                  {editing === txid && p ? (
                    <AmendForm txid={txid} order={o} pair={p} onDone={() => (setEditing(""), bump())} />
                  ) : (
                    <>
                      <button type="button" className="small" onClick={() => setEditing(txid)}>
                        Amend
                      </button>
                      <button type="button" className="small danger" onClick={() => cancel(txid)}>
                        Cancel
                      </button>
                    </>
                  )}
                  {rowError[txid] && <span className="field-error">{rowError[txid]}</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {data && !entries.length && <p className="muted small">No open orders.</p>}
    </>
  );
}

function AmendForm({ txid, order, pair, onDone }: { txid: string; order: Order; pair: PairInfo; onDone: () => void }) {
  const [price, setPrice] = useState(order.descr.price);
  const [qty, setQty] = useState(order.vol);
  const [err, setErr] = useState("");
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const e1 = checkAmount(price, pair.pair_decimals, "price") ?? checkAmount(qty, pair.lot_decimals, "amount");
    if (e1) return setErr(e1);
    try {
      await privateCall("AmendOrder", { txid, limit_price: price.trim(), order_qty: qty.trim() });
      onDone();
    } catch (ex) {
      setErr(ex instanceof ApiError ? ex.message : String(ex));
    }
  };
  return (
    <form className="inline" onSubmit={submit} noValidate>
      <input aria-label="New price" value={price} onChange={(e) => setPrice(e.target.value)} size={9} />
      <input aria-label="New amount" value={qty} onChange={(e) => setQty(e.target.value)} size={9} />
      <button type="submit" className="small">
        Save
      </button>
      <button type="button" className="small ghost" onClick={onDone}>
        Close
      </button>
      {err && <span className="field-error">{err}</span>}
    </form>
  );
}

function ClosedOrders({ pairs, version }: { pairs: PairInfo[]; version: number }) {
  const { data, error } = usePoll(
    async () => (await privateCall<{ closed: Record<string, Order> }>("ClosedOrders")).closed,
    4000,
    [version],
  );
  const entries = Object.entries(data ?? {});
  return (
    <>
      {error && <p className="field-error">{error}</p>}
      <table className="compact" data-testid="closed-orders">
        <thead>
          <tr>
            <th scope="col">Closed</th>
            <th scope="col">Pair</th>
            <th scope="col">Order</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">
              Filled
            </th>
            <th scope="col" className="num">
              Avg price
            </th>
          </tr>
        </thead>
        <tbody>
          {entries.map(([txid, o]) => {
            const p = pairByAltname(pairs, o.descr.pair);
            return (
              <tr key={txid}>
                <td className="muted">{fmtTime(o.closetm ?? o.opentm)}</td>
                <td>{p?.wsname ?? o.descr.pair}</td>
                <td>{o.descr.order}</td>
                <td>
                  {o.status}
                  {o.reason ? ` (${o.reason})` : ""}
                </td>
                <td className="num">{fmtAmount(o.vol_exec, p?.lot_decimals ?? 8)}</td>
                <td className="num">{o.price}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {data && !entries.length && <p className="muted small">No closed orders.</p>}
    </>
  );
}

function Trades({ pairs, version }: { pairs: PairInfo[]; version: number }) {
  const { data, error } = usePoll(
    async () => (await privateCall<{ trades: Record<string, Trade> }>("TradesHistory")).trades,
    4000,
    [version],
  );
  const entries = Object.entries(data ?? {});
  return (
    <>
      {error && <p className="field-error">{error}</p>}
      <table className="compact" data-testid="my-trades">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Pair</th>
            <th scope="col">Side</th>
            <th scope="col" className="num">
              Price
            </th>
            <th scope="col" className="num">
              Amount
            </th>
            <th scope="col" className="num">
              Cost
            </th>
            <th scope="col" className="num">
              Fee
            </th>
            <th scope="col">Role</th>
          </tr>
        </thead>
        <tbody>
          {entries.map(([id, t]) => {
            const p = pairs.find((x) => x.id === t.pair);
            return (
              <tr key={id}>
                <td className="muted">{fmtTime(t.time)}</td>
                <td>{p?.wsname ?? t.pair}</td>
                <td className={t.type === "buy" ? "up" : "down"}>{t.type}</td>
                <td className="num">{t.price}</td>
                <td className="num">{t.vol}</td>
                <td className="num">{t.cost}</td>
                <td className="num">{t.fee}</td>
                <td>{t.maker ? "maker" : "taker"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {data && !entries.length && <p className="muted small">No trades yet.</p>}
    </>
  );
}

function BalancesView({
  balances,
  assets,
  bump,
  me,
  setMe,
}: {
  balances: Balances | null;
  assets: Record<string, AssetInfo>;
  bump: () => void;
  me: Me;
  setMe: (m: Me) => void;
}) {
  const [msg, setMsg] = useState("");
  const faucet = async () => {
    try {
      const r = await webCall<{ faucet_uses_left: number }>("POST", "faucet");
      setMe({ ...me, faucet_uses_left: r.faucet_uses_left });
      setMsg("Sandbox funds credited.");
      bump();
    } catch (e) {
      setMsg(e instanceof Error ? e.message : String(e));
    }
  };
  const rows = Object.entries(balances ?? {});
  return (
    <>
      {me.faucet && (
        <p className="row">
          <button type="button" onClick={faucet} disabled={me.faucet_uses_left <= 0}>
            Get sandbox funds
          </button>
          <span className="muted small">
            {me.faucet_uses_left} left. {msg}
          </span>
        </p>
      )}
      <table className="compact" data-testid="balances">
        <thead>
          <tr>
            <th scope="col">Asset</th>
            <th scope="col" className="num">
              Total
            </th>
            <th scope="col" className="num">
              On hold
            </th>
            <th scope="col" className="num">
              Available
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map(([id, b]) => {
            const a = assets[id];
            const d = a?.decimals ?? 8;
            const avail = available(b);
            return (
              <tr key={id} data-asset={a?.altname ?? id}>
                <td>{a?.altname ?? id}</td>
                <td className="num">{fmtAmount(b.balance, d)}</td>
                <td className="num">{fmtAmount(b.hold_trade, d)}</td>
                <td className="num">{fmtAmount(avail, d)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {balances && !rows.length && <p className="muted small">No funds yet.</p>}
    </>
  );
}

/** balance - hold_trade, exact, at the larger of the two scales. */
export function available(b: { balance: string; hold_trade: string } | undefined): string {
  if (!b) return "0";
  const x = fromString(b.balance);
  const y = fromString(b.hold_trade);
  return toFixed(sub(x, y), Math.max(x.scale, y.scale));
}

const LEDGER_PAGE = 50; // Kraken's page size
const LEDGER_EXPORT_MAX = 10_000; // entries fetched for one CSV export
const LEDGER_TYPES = ["all", "trade", "deposit", "withdrawal"] as const;

type LedgerPage = { ledger: Record<string, LedgerEntry>; count: number };

/** Ledgers parameters for a filter and a page: asset by Kraken id, type, offset. */
export function ledgerParams(asset: string, type: string, ofs: number): Record<string, string> {
  const p: Record<string, string> = { ofs: String(ofs) };
  if (asset !== "all") p.asset = asset;
  if (type !== "all") p.type = type;
  return p;
}

function Ledger({ assets, version }: { assets: Record<string, AssetInfo>; version: number }) {
  const [asset, setAsset] = useState("all");
  const [type, setType] = useState<string>("all");
  const [ofs, setOfs] = useState(0);
  const [exporting, setExporting] = useState("");
  const { data, error } = usePoll(
    async () => await privateCall<LedgerPage>("Ledgers", ledgerParams(asset, type, ofs)),
    5000,
    [version, asset, type, ofs],
  );
  const entries = Object.entries(data?.ledger ?? {});
  const count = data?.count ?? 0;
  const exportCsv = async () => {
    setExporting("Exporting…");
    const all: [string, LedgerEntry][] = [];
    try {
      for (let at = 0; at < Math.min(count, LEDGER_EXPORT_MAX); at += LEDGER_PAGE) {
        const page = await privateCall<LedgerPage>("Ledgers", ledgerParams(asset, type, at));
        const rows = Object.entries(page.ledger);
        all.push(...rows);
        if (rows.length < LEDGER_PAGE) break;
      }
    } catch (e) {
      setExporting(e instanceof ApiError ? e.message : String(e));
      return;
    }
    setExporting("");
    const csv = toCsv(
      ["id", "time", "type", "asset", "amount", "fee", "balance", "refid"],
      all.map(([id, l]) => [id, fmtTime(l.time), l.type, assets[l.asset]?.altname ?? l.asset, l.amount, l.fee, l.balance, l.refid]),
    );
    const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "abyssal-ledger.csv";
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <>
      <p className="row">
        <label>
          Asset{" "}
          <select aria-label="Ledger asset" value={asset} onChange={(e) => (setAsset(e.target.value), setOfs(0))}>
            <option value="all">All</option>
            {Object.entries(assets).map(([id, a]) => (
              <option key={id} value={id}>
                {a.altname}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type{" "}
          <select aria-label="Ledger type" value={type} onChange={(e) => (setType(e.target.value), setOfs(0))}>
            {LEDGER_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => void exportCsv()} disabled={!count || !!exporting}>
          Export CSV
        </button>
        {exporting && <span className="muted small">{exporting}</span>}
        {error && <span className="field-error">{error}</span>}
      </p>
      <p className="row small muted" aria-live="polite">
        <button type="button" onClick={() => setOfs(Math.max(0, ofs - LEDGER_PAGE))} disabled={ofs === 0}>
          Newer
        </button>
        <span data-testid="ledger-range">
          {count ? `${ofs + 1}–${Math.min(ofs + LEDGER_PAGE, count)} of ${count}` : "no entries"}
        </span>
        <button type="button" onClick={() => setOfs(ofs + LEDGER_PAGE)} disabled={ofs + LEDGER_PAGE >= count}>
          Older
        </button>
      </p>
      <table className="compact" data-testid="ledger">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Type</th>
            <th scope="col">Asset</th>
            <th scope="col" className="num">
              Amount
            </th>
            <th scope="col" className="num">
              Fee
            </th>
            <th scope="col" className="num">
              Balance
            </th>
          </tr>
        </thead>
        <tbody>
          {entries.map(([id, l]) => (
            <tr key={id}>
              <td className="muted">{fmtTime(l.time)}</td>
              <td>{l.type}</td>
              <td>{assets[l.asset]?.altname ?? l.asset}</td>
              <td className={`num ${l.amount.startsWith("-") ? "down" : "up"}`}>{l.amount}</td>
              <td className="num">{l.fee}</td>
              <td className="num">{l.balance}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
