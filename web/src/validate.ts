// Order-form validation against AssetPairs precision and minimums and the available balance,
// before anything is sent: every message is tied to the field a person has to change.
import { add, cmp, decimalsOf, mul, mulPpm, parseDec, rescale, toFixed, type Dec } from "./decimal";

export interface PairInfo {
  id: string;
  altname: string;
  wsname: string;
  base: string;
  quote: string;
  pair_decimals: number;
  lot_decimals: number;
  cost_decimals: number;
  ordermin: string;
  costmin: string;
  fees: [number, number][];
  fees_maker: [number, number][];
}

export const ORDER_TYPES = [
  "limit",
  "market",
  "stop-loss",
  "take-profit",
  "stop-loss-limit",
  "take-profit-limit",
  "iceberg",
] as const;
export type OrderType = (typeof ORDER_TYPES)[number];
export type Side = "buy" | "sell";
export type TimeInForce = "GTC" | "IOC" | "GTD";

export interface OrderForm {
  side: Side;
  ordertype: OrderType;
  price: string; // limit price (limit, iceberg) or trigger price (stops)
  price2: string; // limit price of the *-limit types
  volume: string;
  displayvol: string; // iceberg only
  postOnly: boolean;
  tif: TimeInForce;
  expire: string; // GTD: seconds from now, as typed
}

export interface Funds {
  availableQuote: string; // balance - hold_trade of the quote asset
  availableBase: string;
  bestAsk?: string; // market orders are estimated at the touch
  bestBid?: string;
}

export type Field = "volume" | "price" | "price2" | "displayvol" | "expire" | "form";
export interface Checked {
  errors: Partial<Record<Field, string>>;
  params: Record<string, string> | null; // AddOrder parameters when there is no error
  cost: Dec | null;
  fee: Dec | null;
  feePct: string;
}

export const usesPrice = (t: OrderType) => t !== "market";
export const usesPrice2 = (t: OrderType) => t === "stop-loss-limit" || t === "take-profit-limit";
export const isLimitLike = (t: OrderType) => t === "limit" || t === "iceberg" || usesPrice2(t);
export const allowsPostOnly = (t: OrderType) => t === "limit";
export const allowsTimeInForce = (t: OrderType) => isLimitLike(t);
export const GTD_SECONDS_MIN = 5;
export const GTD_SECONDS_MAX = 30 * 24 * 3600;

/** Percent (a JSON number such as 0.26) to parts per million, exactly. */
export function percentToPpm(pct: number): bigint {
  const d = parseDec(String(pct));
  return d === null ? 0n : rescale(d, 4);
}

/** An amount field: a plain decimal with at most ``decimals`` digits; an error message or null. */
export function checkAmount(text: string, decimals: number, what: string): string | null {
  const t = text.trim();
  if (t === "") return `Enter the ${what}.`;
  if (!/^[0-9.]+$/.test(t)) return `The ${what} must be a number (digits and one point).`;
  const d = parseDec(t);
  if (d === null) return `The ${what} must be a number such as 1.5.`;
  if (decimalsOf(t) > decimals)
    return decimals === 0
      ? `The ${what} must be a whole number.`
      : `The ${what} has at most ${decimals} decimals.`;
  if (d.units === 0n) return `The ${what} must be more than 0.`;
  return null;
}

export function validateOrder(form: OrderForm, pair: PairInfo, funds: Funds): Checked {
  const errors: Partial<Record<Field, string>> = {};
  const t = form.ordertype;
  const volErr = checkAmount(form.volume, pair.lot_decimals, "amount");
  if (volErr) errors.volume = volErr;
  else if (cmp(parseDec(form.volume)!, parseDec(pair.ordermin)!) < 0)
    errors.volume = `The minimum amount is ${pair.ordermin} ${baseName(pair)}.`;
  if (usesPrice(t)) {
    const e = checkAmount(form.price, pair.pair_decimals, t.includes("-") ? "trigger price" : "price");
    if (e) errors.price = e;
  }
  if (usesPrice2(t)) {
    const e = checkAmount(form.price2, pair.pair_decimals, "limit price");
    if (e) errors.price2 = e;
  }
  if (t === "iceberg") {
    const e = checkAmount(form.displayvol, pair.lot_decimals, "visible amount");
    if (e) errors.displayvol = e;
    else if (!errors.volume) {
      const vis = parseDec(form.displayvol)!;
      const vol = parseDec(form.volume)!;
      if (cmp(vis, vol) > 0) errors.displayvol = "The visible amount cannot exceed the amount.";
      else if (cmp(mul(vis, { units: 15n, scale: 0 }), vol) < 0)
        errors.displayvol = "The visible amount must be at least 1/15 of the amount.";
    }
  }
  const tif = allowsTimeInForce(t) ? form.tif : "GTC";
  if (tif === "GTD") {
    const s = form.expire.trim();
    if (!/^\d+$/.test(s) || Number(s) < GTD_SECONDS_MIN || Number(s) > GTD_SECONDS_MAX)
      errors.expire = `Enter whole seconds from ${GTD_SECONDS_MIN} to ${GTD_SECONDS_MAX}.`;
  }
  const postOnly = allowsPostOnly(t) && form.postOnly;
  const feePpm = percentToPpm((postOnly ? pair.fees_maker : pair.fees)[0]?.[1] ?? 0);
  const feePct = toFixed({ units: feePpm, scale: 4 }, 2);
  let cost: Dec | null = null;
  let fee: Dec | null = null;
  const priceText =
    t === "market" ? (form.side === "buy" ? funds.bestAsk : funds.bestBid) : usesPrice2(t) ? form.price2 : form.price;
  const price = priceText ? parseDec(priceText) : null;
  if (!errors.volume && price !== null && !errors.price && !errors.price2) {
    cost = mul(parseDec(form.volume)!, price);
    fee = mulPpm(cost, feePpm);
    if (cmp(cost, parseDec(pair.costmin)!) < 0)
      errors.volume = `The order value must be at least ${pair.costmin} ${quoteName(pair)}.`;
  }
  if (!errors.volume) {
    if (form.side === "sell") {
      const avail = parseDec(funds.availableBase) ?? { units: 0n, scale: 0 };
      if (cmp(parseDec(form.volume)!, avail) > 0)
        errors.volume = `More than available: ${funds.availableBase} ${baseName(pair)}.`;
    } else if (cost !== null && fee !== null) {
      const avail = parseDec(funds.availableQuote) ?? { units: 0n, scale: 0 };
      if (cmp(add(cost, fee), avail) > 0)
        errors.volume = `More than available: cost and fee exceed ${funds.availableQuote} ${quoteName(pair)}.`;
    }
  }
  if (t === "market" && !price && !errors.volume) errors.volume = "No price in the book to estimate this order.";
  if (Object.keys(errors).length > 0) return { errors, params: null, cost, fee, feePct };
  const params: Record<string, string> = {
    pair: pair.id,
    type: form.side,
    ordertype: t,
    volume: form.volume.trim(),
  };
  if (usesPrice(t)) params.price = form.price.trim();
  if (usesPrice2(t)) params.price2 = form.price2.trim();
  if (t === "iceberg") params.displayvol = form.displayvol.trim();
  if (postOnly) params.oflags = "post";
  if (allowsTimeInForce(t) && tif !== "GTC") params.timeinforce = tif;
  if (tif === "GTD") params.expiretm = `+${form.expire.trim()}`;
  return { errors, params, cost, fee, feePct };
}

export function baseName(pair: PairInfo): string {
  return pair.wsname.split("/")[0] ?? pair.base;
}
export function quoteName(pair: PairInfo): string {
  return pair.wsname.split("/")[1] ?? pair.quote;
}

/** Which form field a Kraken error string concerns (for errors that come back from the server). */
export function fieldOfError(error: string): Field {
  if (/volume|minimum not met|Insufficient funds|Cost minimum/i.test(error)) return "volume";
  if (/displayvol/i.test(error)) return "displayvol";
  if (/price2/i.test(error)) return "price2";
  if (/price|Tick size/i.test(error)) return "price";
  if (/expire/i.test(error)) return "expire";
  return "form";
}
