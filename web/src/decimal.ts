// Exact decimal arithmetic on strings via BigInt: money never goes through binary floats here.

export interface Dec {
  units: bigint; // value * 10^scale
  scale: number;
}

const DECIMAL_TEXT = /^\d+(\.\d+)?$/;

/** Parse a plain non-negative decimal ("12", "0.5", "3.140"); null for anything else. */
export function parseDec(text: string): Dec | null {
  const t = text.trim();
  if (!DECIMAL_TEXT.test(t)) return null;
  const [whole, frac = ""] = t.split(".");
  return { units: BigInt(whole + frac), scale: frac.length };
}

/** Parse a signed decimal as Kraken sends it ("-24.5000"); null for anything else. */
export function parseSigned(text: string): Dec | null {
  const t = text.trim();
  if (t.startsWith("-")) {
    const d = parseDec(t.slice(1));
    return d && { units: -d.units, scale: d.scale };
  }
  return parseDec(t);
}

/** Number of digits after the decimal point as typed ("1.50" has 2). */
export function decimalsOf(text: string): number {
  const i = text.trim().indexOf(".");
  return i < 0 ? 0 : text.trim().length - i - 1;
}

export function rescale(d: Dec, scale: number): bigint {
  if (scale >= d.scale) return d.units * 10n ** BigInt(scale - d.scale);
  return d.units / 10n ** BigInt(d.scale - scale); // truncates toward zero
}

export function cmp(a: Dec, b: Dec): number {
  const s = Math.max(a.scale, b.scale);
  const x = rescale(a, s);
  const y = rescale(b, s);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function mul(a: Dec, b: Dec): Dec {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

export function add(a: Dec, b: Dec): Dec {
  const s = Math.max(a.scale, b.scale);
  return { units: rescale(a, s) + rescale(b, s), scale: s };
}

export function sub(a: Dec, b: Dec): Dec {
  return add(a, { units: -b.units, scale: b.scale });
}

/** a * ppm / 1e6 (fees), exact. */
export function mulPpm(a: Dec, ppm: bigint): Dec {
  return { units: a.units * ppm, scale: a.scale + 6 };
}

/** Text with exactly ``scale`` decimals, rounding half up away from zero (for display only). */
export function toFixed(d: Dec, scale: number): string {
  let units: bigint;
  if (scale >= d.scale) units = d.units * 10n ** BigInt(scale - d.scale);
  else {
    const div = 10n ** BigInt(d.scale - scale);
    const neg = d.units < 0n;
    const abs = neg ? -d.units : d.units;
    let q = abs / div;
    if ((abs % div) * 2n >= div) q += 1n;
    units = neg ? -q : q;
  }
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  return (neg ? "-" : "") + digits;
}

export function fromString(text: string): Dec {
  return parseSigned(text) ?? { units: 0n, scale: 0 };
}

export const ZERO: Dec = { units: 0n, scale: 0 };
