import { marketSocket, v2Symbol, type MarketData } from "./ws";
import type { PairInfo } from "./validate";
import { useEffect, useRef, useState } from "react";

/** Run ``fn`` now and every ``ms`` while mounted (and while the tab is visible); ``deps`` restart it. */
export function usePoll<T>(fn: () => Promise<T>, ms: number, deps: unknown[]): {
  data: T | null;
  error: string;
  refresh: () => void;
} {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      if (document.visibilityState !== "hidden") {
        try {
          const v = await fnRef.current();
          if (alive) {
            setData(v);
            setError("");
          }
        } catch (e) {
          if (alive) setError(e instanceof Error ? e.message : String(e));
        }
      }
      if (alive) timer = setTimeout(run, ms);
    };
    void run();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick, ms]);
  return { data, error, refresh: () => setTick((t) => t + 1) };
}


/** Live market data from the shared WebSocket for ``pair`` (ticker for every pair in ``pairs``). */
export function useMarket(pair: PairInfo | undefined, pairs: PairInfo[]): MarketData | null {
  const [data, setData] = useState<MarketData | null>(null);
  const symbols = pairs.map((p) => v2Symbol(p.wsname)).join(",");
  useEffect(() => {
    if (typeof WebSocket === "undefined") return;
    const s = marketSocket();
    if (symbols) s.tickersFor(symbols.split(","));
  }, [symbols]);
  useEffect(() => {
    if (typeof WebSocket === "undefined") return;
    const s = marketSocket();
    if (pair) s.select(v2Symbol(pair.wsname), pair.pair_decimals, pair.lot_decimals);
    return s.subscribe(setData);
  }, [pair?.wsname, pair?.pair_decimals, pair?.lot_decimals]);
  return data;
}
