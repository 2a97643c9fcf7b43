import { useEffect, useState, type FormEvent } from "react";
import { ApiError, privateCall } from "../api";
import { toFixed } from "../decimal";
import { fmtAmount } from "../format";
import {
  allowsPostOnly,
  allowsTimeInForce,
  baseName,
  fieldOfError,
  ORDER_TYPES,
  quoteName,
  usesPrice,
  usesPrice2,
  validateOrder,
  type Field,
  type Funds,
  type OrderForm as Form,
  type OrderType,
  type PairInfo,
} from "../validate";

const LABELS: Record<OrderType, string> = {
  limit: "Limit",
  market: "Market",
  "stop-loss": "Stop loss",
  "take-profit": "Take profit",
  "stop-loss-limit": "Stop limit",
  "take-profit-limit": "Take profit limit",
  iceberg: "Iceberg",
};

const EMPTY: Form = {
  side: "buy",
  ordertype: "limit",
  price: "",
  price2: "",
  volume: "",
  displayvol: "",
  postOnly: false,
  tif: "GTC",
  expire: "3600",
};

export function OrderForm({
  pair,
  funds,
  pickedPrice,
  onPlaced,
}: {
  pair: PairInfo;
  funds: Funds;
  pickedPrice: string;
  onPlaced: () => void;
}) {
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Partial<Record<Field, string>>>({});
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState("");

  useEffect(() => {
    if (pickedPrice) setForm((f) => ({ ...f, price: pickedPrice }));
  }, [pickedPrice]);
  useEffect(() => {
    setForm((f) => ({ ...EMPTY, side: f.side, ordertype: f.ordertype }));
    setErrors({});
    setTouched(false);
  }, [pair.id]);

  const checked = validateOrder(form, pair, funds);
  const set = <K extends keyof Form>(k: K, v: Form[K]) => {
    setForm((f) => ({ ...f, [k]: v }));
    setDone("");
  };
  const shown: Partial<Record<Field, string>> = touched ? { ...checked.errors, ...errors } : errors;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    setErrors({});
    setDone("");
    if (!checked.params) return; // nothing is sent while a field is wrong
    setBusy(true);
    try {
      const r = await privateCall<{ txid: string[]; descr: { order: string } }>("AddOrder", checked.params);
      setDone(`Placed ${r.txid[0]}: ${r.descr.order}`);
      setForm((f) => ({ ...f, volume: "", displayvol: "" }));
      setTouched(false);
      onPlaced();
    } catch (err) {
      const msg = err instanceof ApiError ? err.message : String(err);
      setErrors({ [fieldOfError(msg)]: msg });
    } finally {
      setBusy(false);
    }
  };

  const t = form.ordertype;
  const base = baseName(pair);
  const quote = quoteName(pair);
  const input = (name: Field & keyof Form, label: string, unit: string) => (
    <>
      <label>
        {label}
        <span className="with-unit">
          <input
            name={name}
            inputMode="decimal"
            autoComplete="off"
            value={form[name] as string}
            onChange={(e) => set(name, e.target.value)}
            onBlur={() => form[name] && setTouched(true)}
            aria-invalid={!!shown[name]}
            aria-describedby={`${name}-error`}
          />
          <span className="unit">{unit}</span>
        </span>
      </label>
      <p id={`${name}-error`} className="field-error" role="alert" data-testid={`${name}-error`}>
        {shown[name]}
      </p>
    </>
  );

  return (
    <section className="panel order-form" aria-label="Place an order">
      <form onSubmit={submit} noValidate>
        <div className="tabs side" role="group" aria-label="Side">
          {(["buy", "sell"] as const).map((s) => (
            <button key={s} type="button" className={s} aria-pressed={form.side === s} onClick={() => set("side", s)}>
              {s === "buy" ? `Buy ${base}` : `Sell ${base}`}
            </button>
          ))}
        </div>
        <label>
          Order type
          <select name="ordertype" value={t} onChange={(e) => set("ordertype", e.target.value as OrderType)}>
            {ORDER_TYPES.map((o) => (
              <option key={o} value={o}>
                {LABELS[o]}
              </option>
            ))}
          </select>
        </label>
        {usesPrice(t) && input("price", t.includes("-") ? "Trigger price" : "Limit price", quote)}
        {usesPrice2(t) && input("price2", "Limit price", quote)}
        {input("volume", "Amount", base)}
        {t === "iceberg" && input("displayvol", "Visible amount", base)}
        <div className="row">
          {allowsPostOnly(t) && (
            <label className="check">
              <input type="checkbox" checked={form.postOnly} onChange={(e) => set("postOnly", e.target.checked)} />
              Post only
            </label>
          )}
          {allowsTimeInForce(t) && (
            <label>
              Time in force
              <select name="tif" value={form.tif} onChange={(e) => set("tif", e.target.value as Form["tif"])}>
                <option value="GTC">Good till cancelled</option>
                <option value="IOC">Immediate or cancel</option>
                <option value="GTD">Good till time</option>
              </select>
            </label>
          )}
        </div>
        {allowsTimeInForce(t) && form.tif === "GTD" && input("expire", "Expires in", "seconds")}
        <dl className="summary">
          <dt>Available</dt>
          <dd data-testid="available">
            {form.side === "buy"
              ? `${fmtAmount(funds.availableQuote, pair.cost_decimals)} ${quote}`
              : `${fmtAmount(funds.availableBase, pair.lot_decimals)} ${base}`}
          </dd>
          <dt>{t === "market" ? "Estimated cost" : "Cost"}</dt>
          <dd data-testid="cost">{checked.cost ? `${toFixed(checked.cost, pair.cost_decimals)} ${quote}` : "–"}</dd>
          <dt>Fee ({checked.feePct}%)</dt>
          <dd data-testid="fee">{checked.fee ? `${toFixed(checked.fee, pair.cost_decimals)} ${quote}` : "–"}</dd>
        </dl>
        <p className="field-error" role="alert" data-testid="form-error">
          {shown.form}
        </p>
        <button type="submit" className={`primary ${form.side}`} disabled={busy}>
          {form.side === "buy" ? "Buy" : "Sell"} {base}
        </button>
        <p className="ok small" role="status" data-testid="order-status">
          {done}
        </p>
      </form>
    </section>
  );
}
