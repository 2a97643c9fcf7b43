import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { publicCall } from "../api";
import { depthPercents, groupLevels, GROUPS, spreadOf, stepLabel } from "../book";
import { changeClass, fmtAmount, tickerChange, fmtClock } from "../format";
import { usePoll } from "../hooks";
import type { Candle, Depth, Ticker, TradeRow } from "../market";
import type { PairInfo } from "../validate";
import { marketSocket, recordLag, v2Symbol, type MarketData } from "../ws";

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
            const ch = tickerChange(t);
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

export function Chart({ pair, theme, market }: { pair: PairInfo; theme: string; market?: MarketData | null }) {
  const box = useRef<HTMLDivElement>(null);
  const lastTime = useRef(0); // newest candle time on the chart (unix s)
  const loadedKey = useRef(""); // pair/interval/chart whose REST history is on the chart
  const liveRef = useRef(false);
  liveRef.current = !!market?.live;
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

  // live candles over /v2 for the chosen interval
  useEffect(() => {
    if (typeof WebSocket === "undefined") return;
    const s = marketSocket();
    s.ohlc(interval);
    return () => s.ohlc(0);
  }, [interval]);

  // REST OHLC: the history on load (pair, interval, chart), then polling only while the socket is down
  const { error } = usePoll(
    async () => {
      const key = `${pair.id}/${interval}/${ready}`;
      if (liveRef.current && loadedKey.current === key) return null;
      const r = await publicCall<Record<string, Candle[] | number>>("OHLC", { pair: pair.id, interval });
      const rows = (r[pair.id] as Candle[]) ?? [];
      if (!seriesRef.current) return rows.length;
      seriesRef.current.setData(
        rows.map((c) => ({ time: c[0], open: +c[1], high: +c[2], low: +c[3], close: +c[4] })),
      );
      lastTime.current = rows.length ? rows[rows.length - 1][0] : 0;
      loadedKey.current = key;
      return rows.length;
    },
    5000,
    [pair.id, interval, ready],
  );

  const candle = market?.live ? market.candle : null;
  useEffect(() => {
    const series = seriesRef.current;
    if (!candle || !series || !ready) return;
    if (candle.symbol !== v2Symbol(pair.wsname) || candle.interval !== interval) return;
    if (!loadedKey.current.startsWith(`${pair.id}/${interval}/`) || candle.time < lastTime.current) return;
    try {
      series.update({ time: candle.time, open: +candle.open, high: +candle.high, low: +candle.low, close: +candle.close });
      lastTime.current = candle.time;
    } catch {
      /* an out-of-order bar: the next REST load fixes the chart */
    }
  }, [candle, ready, pair.id, pair.wsname, interval]);

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
  const [group, setGroup] = useState<number>(1);
  const liveRef = useRef(false);
  liveRef.current = !!liveBook;
  const rest = usePoll(
    async () =>
      liveRef.current ? null : (await publicCall<Record<string, Depth>>("Depth", { pair: pair.id, count: group > 1 ? 100 : 12 }))[pair.id],
    1000,
    [pair.id, group],
  );
  const data = liveBook ?? rest.data;
  useLayoutEffect(() => recordLag(liveBook ? market : null), [liveBook, market]);
  const error = liveBook ? "" : rest.error;
  const rawAsks = data?.asks ?? [];
  const rawBids = data?.bids ?? [];
  const asks = groupLevels(rawAsks, "ask", group, pair.pair_decimals, pair.lot_decimals).slice(0, 12);
  const bids = groupLevels(rawBids, "bid", group, pair.pair_decimals, pair.lot_decimals).slice(0, 12);
  const depth = depthPercents(asks, bids, pair.lot_decimals);
  const row = (l: [string, string, number], side: "ask" | "bid") => (
    <tr key={`${side}${l[0]}`} className={side}>
      <td className="num">
        <button type="button" className="link price" onClick={() => onPrice(l[0])} aria-label={`Use price ${l[0]}`}>
          {fmtAmount(l[0], pair.pair_decimals)}
        </button>
      </td>
      <td className="num depth" style={{ ["--depth" as string]: `${depth.get(l) ?? 0}%` }}>
        {fmtAmount(l[1], pair.lot_decimals)}
      </td>
    </tr>
  );
  const spreadText = spreadOf(rawAsks, rawBids, pair.pair_decimals);
  const spread = spreadText ? fmtAmount(spreadText, pair.pair_decimals) : "–";
  return (
    <section className="panel book" aria-label="Order book" data-testid="book" data-source={liveBook ? "ws" : "rest"}>
      <div className="book-head">
        <h2>Order book</h2>
        <label className="small muted">
          Group{" "}
          <select
            aria-label="Group price levels"
            data-testid="book-group"
            value={group}
            onChange={(e) => setGroup(Number(e.target.value))}
          >
            {GROUPS.map((m) => (
              <option key={m} value={m}>
                {m}x ({stepLabel(m, pair.pair_decimals)})
              </option>
            ))}
          </select>
        </label>
      </div>
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
