// Deposits and withdrawals through Kraken's funding endpoints (docs/payments.md), with the session.
// A withdrawal needs the account password again (step-up, docs/adr/0007-web-sessions.md).
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { ApiError, privateCall } from "../api";
import { cmp, parseDec } from "../decimal";
import { fmtAmount, fmtTime } from "../format";
import { usePoll } from "../hooks";
import type { AssetInfo } from "../market";
import { checkAmount } from "../validate";
import { available, type Balances } from "./Account";

interface WithdrawKey {
  address: string;
  asset: string;
  method: string;
  key: string;
}
interface Method {
  asset: string;
  method: string;
  minimum: string;
}
export interface FundingRow {
  refid: string;
  asset: string;
  amount: string;
  fee: string;
  time: number;
  status: string;
  "status-prop"?: string;
  key?: string;
  info: string;
}

/** Kraken's status (+ status-prop) back to the payment's own state name. */
export function withdrawalState(row: { status: string; "status-prop"?: string }): string {
  if (row.status === "Failure") return row["status-prop"] === "canceled" ? "canceled" : "failed";
  return { Initial: "requested", Pending: "held", Settled: "sent", Success: "completed" }[row.status] ?? row.status;
}
export const cancellable = (state: string) => state === "requested" || state === "held";

export type WithdrawField = "asset" | "key" | "amount" | "password" | "form";
/** The withdrawal form's checks, before anything is sent. */
export function validateWithdrawal(
  form: { key: string; amount: string; password: string },
  asset: AssetInfo | undefined,
  minimum: string | undefined,
  availableText: string,
): Partial<Record<WithdrawField, string>> {
  const errors: Partial<Record<WithdrawField, string>> = {};
  if (!asset) errors.asset = "Choose an asset.";
  if (!form.key) errors.key = "Choose a withdrawal address.";
  const name = asset?.altname ?? "";
  const e = checkAmount(form.amount, asset?.decimals ?? 8, "amount");
  if (e) errors.amount = e;
  else {
    const amount = parseDec(form.amount.trim())!;
    const min = minimum ? parseDec(minimum) : null;
    const avail = parseDec(availableText.startsWith("-") ? "0" : availableText) ?? parseDec("0")!;
    if (min && cmp(amount, min) < 0) errors.amount = `The minimum withdrawal is ${minimum} ${name}.`;
    else if (cmp(amount, avail) > 0) errors.amount = `More than available (${availableText} ${name}).`;
  }
  if (!form.password) errors.password = "Enter your password to confirm the withdrawal.";
  return errors;
}

export function Funding({ assets, balances, bump }: { assets: Record<string, AssetInfo>; balances: Balances | null; bump: () => void }) {
  const list = useMemo(() => Object.values(assets).sort((a, b) => a.altname.localeCompare(b.altname)), [assets]);
  return (
    <div className="funding">
      <WithdrawForm list={list} assets={assets} balances={balances} bump={bump} />
      <Withdrawals assets={assets} bump={bump} />
      <DepositAddresses list={list} />
    </div>
  );
}

function WithdrawForm({
  list,
  assets,
  balances,
  bump,
}: {
  list: AssetInfo[];
  assets: Record<string, AssetInfo>;
  balances: Balances | null;
  bump: () => void;
}) {
  const [assetId, setAssetId] = useState("");
  const [key, setKey] = useState("");
  const [amount, setAmount] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Partial<Record<WithdrawField, string>>>({});
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);
  const keys = usePoll(() => privateCall<WithdrawKey[]>("WithdrawAddresses"), 10_000, []).data;
  const methods = usePoll(() => privateCall<Method[]>("WithdrawMethods"), 60_000, []).data;
  const asset = assets[assetId];
  useEffect(() => {
    if (!assetId && list.length) setAssetId((list.find((a) => a.altname === "USD") ?? list[0]).id);
  }, [assetId, list]);
  const assetKeys = (keys ?? []).filter((k) => asset && (k.asset === asset.altname || k.asset === asset.id));
  useEffect(() => {
    if (!assetKeys.some((k) => k.key === key)) setKey(assetKeys[0]?.key ?? "");
  }, [assetKeys, key]);
  const minimum = methods?.find((m) => asset && (m.asset === asset.id || m.asset === asset.altname))?.minimum;
  const avail = available(balances?.[assetId]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const errs = validateWithdrawal({ key, amount, password }, asset, minimum, avail);
    setErrors(errs);
    setStatus("");
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const r = await privateCall<{ refid: string }>("Withdraw", { asset: asset!.id, key, amount: amount.trim(), password });
      setStatus(`Requested ${r.refid}`);
      setAmount("");
      setPassword("");
      bump();
    } catch (err) {
      const msg = err instanceof ApiError ? err.message : String(err);
      setErrors(msg.includes("password") ? { password: msg } : msg.includes("amount") || msg.includes("funds") ? { amount: msg } : { form: msg });
    } finally {
      setBusy(false);
    }
  };
  const err = (f: WithdrawField) =>
    errors[f] ? (
      <span className="field-error" id={`w-${f}-error`} data-testid={`withdraw-${f}-error`}>
        {errors[f]}
      </span>
    ) : null;
  return (
    <form className="withdraw-form" onSubmit={submit} noValidate aria-label="Withdraw">
      <h3>Withdraw</h3>
      <label>
        Asset
        <select name="w-asset" value={assetId} onChange={(e) => (setAssetId(e.target.value), setErrors({}))}>
          {list.map((a) => (
            <option key={a.id} value={a.id}>
              {a.altname}
            </option>
          ))}
        </select>
      </label>
      <label>
        To
        <select name="w-key" value={key} onChange={(e) => setKey(e.target.value)} aria-invalid={!!errors.key}>
          {assetKeys.map((k) => (
            <option key={k.key} value={k.key}>
              {k.key} ({k.address})
            </option>
          ))}
        </select>
      </label>
      {err("key")}
      {keys && !assetKeys.length && (
        <p className="muted small">No withdrawal address for this asset yet: ask the operator to add one (withdraw keys).</p>
      )}
      <label>
        Amount
        <input name="w-amount" inputMode="decimal" autoComplete="off" value={amount} onChange={(e) => setAmount(e.target.value)} aria-invalid={!!errors.amount} />
      </label>
      <span className="muted small" data-testid="withdraw-available">
        Available {fmtAmount(avail, asset?.decimals ?? 8)} {asset?.altname}
        {minimum ? `, minimum ${minimum}` : ""}
      </span>
      {err("amount")}
      <label>
        Password
        <input name="w-password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} aria-invalid={!!errors.password} />
      </label>
      {err("password")}
      {err("form")}
      <button type="submit" className="primary" disabled={busy}>
        Withdraw
      </button>
      <span role="status" data-testid="withdraw-status">
        {status}
      </span>
    </form>
  );
}

function Withdrawals({ assets, bump }: { assets: Record<string, AssetInfo>; bump: () => void }) {
  const { data, error, refresh } = usePoll(() => privateCall<FundingRow[]>("WithdrawStatus"), 1000, []);
  const [rowError, setRowError] = useState<Record<string, string>>({});
  const cancel = async (row: FundingRow) => {
    try {
      await privateCall("WithdrawCancel", { asset: row.asset, refid: row.refid });
      setRowError({});
      refresh();
      bump();
    } catch (e) {
      setRowError({ [row.refid]: e instanceof Error ? e.message : String(e) });
    }
  };
  const rows = [...(data ?? [])].sort((a, b) => b.time - a.time);
  return (
    <div>
      <h3>Withdrawals</h3>
      {error && <p className="field-error">{error}</p>}
      <table className="compact" data-testid="withdrawals">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Asset</th>
            <th scope="col" className="num">
              Amount
            </th>
            <th scope="col">To</th>
            <th scope="col">Status</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => {
            const a = assets[r.asset];
            const state = withdrawalState(r);
            return (
              <tr key={r.refid} data-refid={r.refid} data-status={state}>
                <td>{fmtTime(r.time)}</td>
                <td>{a?.altname ?? r.asset}</td>
                <td className="num">{fmtAmount(r.amount, a?.decimals ?? 8)}</td>
                <td>{r.key ?? r.info}</td>
                <td className={`state-${state}`}>{state}</td>
                <td>
                  {cancellable(state) && (
                    <button type="button" className="ghost" onClick={() => cancel(r)}>
                      Cancel
                    </button>
                  )}
                  {rowError[r.refid] && <span className="field-error">{rowError[r.refid]}</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {data && !rows.length && <p className="muted small">No withdrawals yet.</p>}
    </div>
  );
}

function DepositAddresses({ list }: { list: AssetInfo[] }) {
  const [rows, setRows] = useState<Record<string, string>>({});
  useEffect(() => {
    let alive = true;
    for (const a of list) {
      privateCall<Method[]>("DepositMethods", { asset: a.id })
        .then((ms) => (ms[0] ? privateCall<{ address: string }[]>("DepositAddresses", { asset: a.id, method: ms[0].method }) : []))
        .then((addrs) => alive && setRows((r) => ({ ...r, [a.id]: addrs[0]?.address ?? "–" })))
        .catch((e) => alive && setRows((r) => ({ ...r, [a.id]: `unavailable: ${e instanceof Error ? e.message : e}` })));
    }
    return () => {
      alive = false;
    };
  }, [list]);
  return (
    <div>
      <h3>Deposit addresses</h3>
      <table className="compact" data-testid="deposit-addresses">
        <tbody>
          {list.map((a) => (
            <tr key={a.id} data-asset={a.altname}>
              <td>{a.altname}</td>
              <td className="mono">{rows[a.id] ?? "…"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
