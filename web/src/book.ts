// Order-book grouping by tick multiples, exact: prices become integer ticks (10^-pair_decimals) and
// volumes integer lots, both parsed from the decimal strings with BigInt (never float sums).
import { fromString, toFixed } from "./decimal";
import type { Level } from "./market";

export const GROUPS = [1, 10, 100, 1000] as const;

/** Integer units of 10^-decimals in ``text``; extra digits round down (``up``: round up). */
export function toUnits(text: string, decimals: number, up = false): bigint {
  const d = fromString(text);
  if (d.scale <= decimals) return d.units * 10n ** BigInt(decimals - d.scale);
  const div = 10n ** BigInt(d.scale - decimals);
  let q = d.units / div;
  const r = d.units % div;
  if (r !== 0n && (up ? d.units > 0n : d.units < 0n)) q += up ? 1n : -1n;
  return q;
}

/** ``units`` * 10^-decimals as text with exactly ``decimals`` digits. */
export function fromUnits(units: bigint, decimals: number): string {
  return toFixed({ units, scale: decimals }, decimals);
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/**
 * Aggregate one side into buckets of ``multiple`` ticks: bids grouped down (floor), asks grouped up
 * (ceil); volumes summed in integer lots. Order is kept (asks ascending, bids descending).
 */
export function groupLevels(
  levels: Level[],
  side: "ask" | "bid",
  multiple: number,
  pairDecimals: number,
  lotDecimals: number,
): Level[] {
  if (multiple <= 1) return levels;
  const m = BigInt(multiple);
  // volumes: at least lot_decimals, more if a string carries more digits (stays exact)
  const lotScale = Math.max(lotDecimals, ...levels.map((l) => fromString(l[1]).scale));
  const buckets = new Map<bigint, { lots: bigint; ts: number }>();
  const order: bigint[] = [];
  for (const [price, qty, ts] of levels) {
    const ticks = toUnits(price, pairDecimals, side === "ask");
    const key = side === "bid" ? floorDiv(ticks, m) * m : -floorDiv(-ticks, m) * m;
    const lots = toUnits(qty, lotScale);
    const b = buckets.get(key);
    if (b) {
      b.lots += lots;
      b.ts = Math.max(b.ts, ts);
    } else {
      buckets.set(key, { lots, ts });
      order.push(key);
    }
  }
  order.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0) * (side === "ask" ? 1 : -1));
  return order.map((k) => {
    const b = buckets.get(k)!;
    return [fromUnits(k, pairDecimals), fromUnits(b.lots, lotScale), b.ts];
  });
}

/** Depth-bar widths (percent of the largest volume over both sides), from integer lots. */
export function depthPercents(asks: Level[], bids: Level[], lotDecimals: number): Map<Level, number> {
  const all = [...asks, ...bids];
  const scale = Math.max(lotDecimals, ...all.map((l) => fromString(l[1]).scale));
  const lots = all.map((l) => toUnits(l[1], scale));
  const max = lots.reduce((a, b) => (b > a ? b : a), 0n);
  const out = new Map<Level, number>();
  all.forEach((l, i) => {
    // basis points by integer division, then a display percentage
    out.set(l, max > 0n && lots[i] > 0n ? Number((lots[i] * 10000n) / max) / 100 : 0);
  });
  return out;
}

/** Best ask minus best bid, exact, with ``pairDecimals`` digits; "" without both sides. */
export function spreadOf(asks: Level[], bids: Level[], pairDecimals: number): string {
  if (!asks.length || !bids.length) return "";
  return fromUnits(toUnits(asks[0][0], pairDecimals, true) - toUnits(bids[0][0], pairDecimals), pairDecimals);
}

/** Label of a grouping step: ``multiple`` ticks of 10^-pairDecimals, e.g. 10 x 0.1 -> "1". */
export function stepLabel(multiple: number, pairDecimals: number): string {
  const t = fromUnits(BigInt(multiple), pairDecimals);
  return t.includes(".") ? t.replace(/0+$/, "").replace(/\.$/, "") : t;
}
