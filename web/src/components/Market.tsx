import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { publicCall } from "../api";
import { changeClass, depthPct, fmtAmount, fmtChange, fmtClock } from "../format";
import { usePoll } from "../hooks";
import type { Candle, Depth, Ticker, TradeRow } from "../market";
import type { PairInfo } from "../validate";
import { recordLag, type MarketData } from "../ws";

export function PairList({
  pairs,
  tickers,
  selected,
  onSelect,
}: {
  pairs: PairInfo[];
  tickers: Record<string, Ticker> | null;
  selected: string;
  onSelect: (id: string) => void;
}) {
  return (
    <section className="panel pairs" aria-label="Pairs">
      <label className="sr-only" htmlFor="pair-select">
        Pair
      </label>
      <select id="pair-select" className="pair-select" value={selected} onChange={(e) => onSelect(e.target.value)}>
        {pairs.map((p) => (
          <option key={p.id} value={p.id}>
            {p.wsname}
          </option>
        ))}
      </select>
      <table className="compact">
        <thead>
          <tr>
            <th scope="col">Pair</th>
            <th scope="col" className="num">
              Last
            </th>
            <th scope="col" className="num">
              24h
            </th>
          </tr>
        </thead>
        <tbody>
          {pairs.map((p) => {
            const t = tickers?.[p.id];
            const ch = fmtChange(t?.o, t?.c[0]);
            return (
              <tr key={p.id} className={p.id === selected ? "selected" : ""}>
                <td>
                  <button type="button" className="link" onClick={() => onSelect(p.id)} aria-pressed={p.id === selected}>
                    {p.wsname}
                  </button>
                </td>
                <td className="num">{t && Number(t.c[0]) > 0 ? fmtAmount(t.c[0], p.pair_decimals) : "–"}</td>
                <td className={`num ${changeClass(ch)}`} data-testid={`change-${p.altname}`}>
                  {ch}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

const INTERVALS: [number, string][] = [
  [1, "1m"],
  [5, "5m"],
  [15, "15m"],
  [60, "1h"],
  [240, "4h"],
  [1440, "1d"],
];

export function Chart({ pair, theme }: { pair: PairInfo; theme: string }) {
  const box = useRef<HTMLDivElement>(null);
  const chartRef = useRef<any>(null);
  const seriesRef = useRef<any>(null);
  const [interval, setInterval_] = useState(1);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    let disposed = false;
    // loaded on demand: the chart library is the largest dependency and is not needed to log in
    void import("lightweight-charts").then(({ createChart, CandlestickSeries }) => {
      if (disposed || !box.current) return;
      const dark = theme !== "light";
      const chart = createChart(box.current, {
        autoSize: true,
        layout: { background: { color: "transparent" }, textColor: dark ? "#c9d1d9" : "#1f2328" },
        grid: {
          vertLines: { color: dark ? "#21262d" : "#eaeef2" },
          horzLines: { color: dark ? "#21262d" : "#eaeef2" },
        },
        timeScale: { timeVisible: true, secondsVisible: false },
        localization: { priceFormatter: (p: number) => p.toFixed(pair.pair_decimals) },
      });
      seriesRef.current = chart.addSeries(CandlestickSeries, {
        upColor: "#2ea043",
        downColor: "#f85149",
        borderVisible: false,
        wickUpColor: "#2ea043",
        wickDownColor: "#f85149",
        priceFormat: { type: "price", precision: pair.pair_decimals, minMove: 10 ** -pair.pair_decimals },
      });
      chartRef.current = chart;
      setReady(true);
    });
    return () => {
      disposed = true;
      chartRef.current?.remove();
      chartRef.current = null;
      seriesRef.current = null;
      setReady(false);
    };
  }, [pair.id, pair.pair_decimals, theme]);

  const { error } = usePoll(
    async () => {
      const r = await publicCall<Record<string, Candle[] | number>>("OHLC", { pair: pair.id, interval });
      const rows = (r[pair.id] as Candle[]) ?? [];
      seriesRef.current?.setData(
        rows.map((c) => ({ time: c[0], open: +c[1], high: +c[2], low: +c[3], close: +c[4] })),
      );
      return rows.length;
    },
    5000,
    [pair.id, interval, ready],
  );

  return (
    <section className="panel chart" aria-label="Price chart">
      <div className="toolbar" role="group" aria-label="Candle interval">
        {INTERVALS.map(([m, label]) => (
          <button key={m} type="button" className="chip" aria-pressed={m === interval} onClick={() => setInterval_(m)}>
            {label}
          </button>
        ))}
        {error && <span className="field-error">{error}</span>}
      </div>
      <div className="chart-box" ref={box} data-testid="chart" />
    </section>
  );
}

export function Book({ pair, onPrice, market }: { pair: PairInfo; onPrice: (price: string) => void; market: MarketData | null }) {
  const liveBook = market?.live ? market.book : null;
  const liveRef = useRef(false);
  liveRef.current = !!liveBook;
  const rest = usePoll(
    async () =>
      liveRef.current ? null : (await publicCall<Record<string, Depth>>("Depth", { pair: pair.id, count: 12 }))[pair.id],
    1000,
    [pair.id],
  );
  const data = liveBook ?? rest.data;
  useLayoutEffect(() => recordLag(liveBook ? market : null), [liveBook, market]);
  const error = liveBook ? "" : rest.error;
  const asks = (data?.asks ?? []).slice(0, 12);
  const bids = (data?.bids ?? []).slice(0, 12);
  const max = Math.max(0, ...asks.map((l) => +l[1]), ...bids.map((l) => +l[1]));
  const row = (l: [string, string, number], side: "ask" | "bid") => (
    <tr key={`${side}${l[0]}`} className={side}>
      <td className="num">
        <button type="button" className="link price" onClick={() => onPrice(l[0])} aria-label={`Use price ${l[0]}`}>
          {fmtAmount(l[0], pair.pair_decimals)}
        </button>
      </td>
      <td className="num depth" style={{ ["--depth" as string]: `${depthPct(l[1], max)}%` }}>
        {fmtAmount(l[1], pair.lot_decimals)}
      </td>
    </tr>
  );
  const spread =
    asks.length && bids.length ? fmtAmount(String(+asks[0][0] - +bids[0][0]), pair.pair_decimals) : "–";
  return (
    <section className="panel book" aria-label="Order book" data-testid="book" data-source={liveBook ? "ws" : "rest"}>
      <h2>Order book</h2>
      {error && <p className="field-error">{error}</p>}
      <table className="compact">
        <thead>
          <tr>
            <th scope="col" className="num">
              Price
            </th>
            <th scope="col" className="num">
              Amount
            </th>
          </tr>
        </thead>
        <tbody>{[...asks].reverse().map((l) => row(l, "ask"))}</tbody>
        <tbody>
          <tr className="spread">
            <td colSpan={2}>Spread {spread}</td>
          </tr>
        </tbody>
        <tbody>{bids.map((l) => row(l, "bid"))}</tbody>
      </table>
      {!asks.length && !bids.length && <p className="muted small">No orders yet.</p>}
    </section>
  );
}

export function Tape({ pair, market }: { pair: PairInfo; market: MarketData | null }) {
  const live = !!market?.live;
  const liveRef = useRef(false);
  liveRef.current = live;
  const rest = usePoll(
    async () =>
      liveRef.current ? null : (await publicCall<Record<string, TradeRow[]>>("Trades", { pair: pair.id, count: 40 }))[pair.id] ?? [],
    1500,
    [pair.id],
  );
  const data = live ? market!.trades : rest.data;
  const error = live ? "" : rest.error;
  const rows = [...(data ?? [])].reverse();
  return (
    <section className="panel tape" aria-label="Trades" data-testid="tape" data-source={live ? "ws" : "rest"}>
      <h2>Trades</h2>
      {error && <p className="field-error">{error}</p>}
      <table className="compact">
        <thead>
          <tr>
            <th scope="col" className="num">
              Price
            </th>
            <th scope="col" className="num">
              Amount
            </th>
            <th scope="col" className="num">
              Time
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((t) => (
            <tr key={t[6]}>
              <td className={`num ${t[3] === "b" ? "up" : "down"}`}>{fmtAmount(t[0], pair.pair_decimals)}</td>
              <td className="num">{fmtAmount(t[1], pair.lot_decimals)}</td>
              <td className="num muted">{fmtClock(t[2])}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!rows.length && <p className="muted small">No trades yet.</p>}
    </section>
  );
}
