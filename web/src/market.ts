// Market data shapes from Kraken's public REST (docs: kraken-api.md section 3).
import type { PairInfo } from "./validate";

export interface AssetInfo {
  id: string;
  altname: string;
  decimals: number;
  display_decimals: number;
}
export interface Ticker {
  a: [string, string, string];
  b: [string, string, string];
  c: [string, string];
  v: [string, string];
  o: string;
  h: [string, string];
  l: [string, string];
  pct?: string; // WS v2 ticker: rolling 24 h change_pct (REST has none: today's open ``o`` instead)
}
export type Level = [string, string, number];
export interface Depth {
  asks: Level[];
  bids: Level[];
}
export type TradeRow = [string, string, number, "b" | "s", "m" | "l", string, number];
export type Candle = [number, string, string, string, string, string, string, number];

export function withIds<T>(result: Record<string, T>): (T & { id: string })[] {
  return Object.entries(result).map(([id, v]) => ({ ...v, id }));
}

export type Pairs = PairInfo[];
