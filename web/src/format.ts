// Display helpers: prices and amounts at their precision, percentages, times, CSV.
import { fromString, toFixed, parseSigned } from "./decimal";

/** A Kraken decimal string shown with exactly ``decimals`` digits after the point. */
export function fmtAmount(text: string | undefined, decimals: number): string {
  if (text === undefined || text === "") return "–";
  const d = parseSigned(text);
  if (d === null) return text;
  const fixed = toFixed(d, decimals);
  const [whole, frac] = fixed.split(".");
  const neg = whole.startsWith("-");
  const grouped = (neg ? whole.slice(1) : whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "-" : "") + grouped + (frac !== undefined ? `.${frac}` : "");
}

/** Percentage change from ``open`` to ``last`` with a sign and two decimals; "–" without an open. */
export function fmtChange(open: string | undefined, last: string | undefined): string {
  if (!open || !last) return "–";
  const o = Number(open);
  const l = Number(last);
  if (!Number.isFinite(o) || !Number.isFinite(l) || o === 0) return "–";
  const pct = ((l - o) / o) * 100; // a display ratio, not money: a float is fine here
  const rounded = Math.round(pct * 100) / 100;
  return `${rounded > 0 ? "+" : ""}${rounded.toFixed(2)}%`;
}

/** A signed percentage text ("7.17", "-0.02") shown with a sign and two decimals (exact). */
export function fmtPct(pct: string | undefined): string {
  const d = pct === undefined ? null : parseSigned(pct);
  if (d === null) return "–";
  const t = toFixed(d, 2);
  return `${d.units > 0n && /[1-9]/.test(t) ? "+" : ""}${t}%`;
}

/** True when ``text`` is a positive decimal (a price or volume that exists). */
export function positive(text: string | undefined): boolean {
  const d = text === undefined ? null : parseSigned(text);
  return d !== null && d.units > 0n;
}

/** The 24 h change of a ticker: WS v2's rolling ``change_pct`` when present, else REST's today open;
 * "–" with no trades in the window. */
export function tickerChange(t: { pct?: string; o: string; c: [string, string]; v: [string, string] } | undefined): string {
  if (!t || !positive(t.v[1]) || !positive(t.c[0])) return "–";
  return t.pct !== undefined ? fmtPct(t.pct) : fmtChange(t.o, t.c[0]);
}

export function changeClass(change: string): string {
  return change.startsWith("+") ? "up" : change.startsWith("-") ? "down" : "";
}

/** Unix seconds (float or int) to "YYYY-MM-DD HH:MM:SS" in UTC. */
export function fmtTime(unixSeconds: number): string {
  if (!Number.isFinite(unixSeconds) || unixSeconds <= 0) return "–";
  return new Date(unixSeconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

/** Time of day only, for the tape. */
export function fmtClock(unixSeconds: number): string {
  return fmtTime(unixSeconds).slice(11);
}

/** Depth-bar width in percent of the largest level, clamped to [0, 100]. */
export function depthPct(volume: string, maxVolume: number): number {
  const v = Number(volume);
  if (!(maxVolume > 0) || !Number.isFinite(v)) return 0;
  return Math.max(0, Math.min(100, (v / maxVolume) * 100));
}

function csvCell(value: unknown): string {
  const s = value === null || value === undefined ? "" : String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV with a header row; a leading = + - @ is kept as text by a quote (CSV injection). */
export function toCsv(header: string[], rows: unknown[][]): string {
  const safe = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /^[=+@]/.test(s) || (/^-/.test(s) && !/^-\d/.test(s)) ? `'${s}` : s;
  };
  return [header, ...rows].map((r) => r.map((v) => csvCell(safe(v))).join(",")).join("\r\n") + "\r\n";
}

export { fromString };
