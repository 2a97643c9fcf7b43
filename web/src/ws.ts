// Market data over the server's Kraken WebSocket v2 (/v2): book with checksum verification
// (resubscribe on mismatch), trades and ticker. Messages are applied to plain data as they arrive and
// React sees them at most once per animation frame; REST stays the fallback while the socket is down.
import { fromString, sub, toFixed } from "./decimal";
import type { Level, Ticker, TradeRow } from "./market";

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(text: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < text.length; i++) c = CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** ``text`` with exactly ``decimals`` digits after the point (exact: decimal text, never floats). */
export function fixed(text: string, decimals: number): string {
  // fast path (every wire value): plain digits with at most ``decimals`` fraction digits -> pad
  if (/^[0-9]+(\.[0-9]*)?$/.test(text)) {
    const dot = text.indexOf(".");
    const int = dot < 0 ? text : text.slice(0, dot);
    const frac = dot < 0 ? "" : text.slice(dot + 1);
    if (frac.length <= decimals) return decimals === 0 ? int : `${int}.${frac.padEnd(decimals, "0")}`;
  }
  return toFixed(fromString(text), decimals);
}

function part(text: string, decimals: number): string {
  return fixed(text, decimals).replace(".", "").replace(/^0+/, "");
}

/** Kraken's book checksum (kraken-api.md 6.3): top 10 asks ascending then top 10 bids descending. */
export function bookChecksum(asks: Level[], bids: Level[], priceDecimals: number, lotDecimals: number): number {
  let s = "";
  for (const l of asks.slice(0, 10)) s += part(l[0], priceDecimals) + part(l[1], lotDecimals);
  for (const l of bids.slice(0, 10)) s += part(l[0], priceDecimals) + part(l[1], lotDecimals);
  return crc32(s);
}

// WS v2 sends money as JSON numbers with exact trailing zeros: keep their text.
const NUMERIC = /"(price|qty|bid|bid_qty|ask|ask_qty|last|volume|vwap|low|high|change|change_pct|open|close)":(-?[0-9][0-9.eE+-]*)/g;
export function parseFrame(text: string): any {
  return JSON.parse(text.replace(NUMERIC, '"$1":"$2"'));
}

/** WS v2 names Bitcoin BTC where REST's wsname says XBT (kraken-api.md section 6). */
export function v2Symbol(wsname: string): string {
  return wsname.split("/").map((a) => (a === "XBT" ? "BTC" : a)).join("/");
}

export interface BookState {
  asks: Level[];
  bids: Level[];
}

/** Apply one book message's changes to a side; ``asc`` for asks. Keeps ``depth`` levels. */
export function applySide(levels: Level[], changes: { price: string; qty: string }[], asc: boolean, depth: number): Level[] {
  const m = new Map<string, Level>(levels.map((l) => [fixedKey(l[0]), l]));
  for (const c of changes) {
    const k = fixedKey(c.price);
    if (fromString(c.qty).units === 0n) m.delete(k);
    else m.set(k, [c.price, c.qty, 0]);
  }
  const out = [...m.values()].sort((a, b) => {
    const d = Number(a[0]) - Number(b[0]);
    return asc ? d : -d;
  });
  return out.slice(0, depth);
}
const fixedKey = (price: string) => String(Number(price));

export interface MarketData {
  live: boolean; // socket open and subscribed
  book: BookState | null;
  trades: TradeRow[]; // oldest first, like REST Trades
  tickers: Record<string, Ticker>; // by wsname
  mismatches: number; // checksum mismatches seen (each triggers a resubscribe)
  lastEventMs: number; // performance.now() of the newest applied message (for the bench)
  serverMs: number; // the newest applied book/trade message's server timestamp, epoch ms (0: none)
  messages: number; // data messages applied so far
  candle: LiveCandle | null; // newest ohlc update for the selected pair and interval
}

/** One ohlc channel candle: ``time`` is interval_begin in unix seconds; prices are decimal text. */
export interface LiveCandle {
  symbol: string;
  interval: number;
  time: number;
  open: string;
  high: string;
  low: string;
  close: string;
}

/** ``interval_begin`` (nanosecond RFC3339) to unix seconds. */
export function beginSeconds(text: string): number {
  return Math.floor(Date.parse(String(text).replace(/(\.\d{3})\d*/, "$1")) / 1000);
}

/** Set by bench/web_bench.py before the page loads; the page only records into it when present. */
export interface PerfProbe {
  lags: number[]; // ms from the server's timestamp of the newest message to the commit that shows it
  messages?: number; // socket data messages applied
  mismatches?: number; // checksum mismatches (each one resubscribed)
}
export function perfProbe(): PerfProbe | undefined {
  return (window as unknown as { __abyssalPerf?: PerfProbe }).__abyssalPerf;
}
export function recordLag(m: MarketData | null): void {
  const probe = perfProbe();
  if (probe && m && m.serverMs > 0) {
    probe.lags.push(performance.timeOrigin + performance.now() - m.serverMs);
    probe.messages = m.messages;
    probe.mismatches = m.mismatches;
  }
}

type Listener = (m: MarketData) => void;
const TRADES_KEPT = 40;
export const BOOK_DEPTH = 25;

export function toTicker(t: any): Ticker {
  const last = String(t.last);
  let open = last;
  try {
    const l = fromString(last);
    const d = sub(l, fromString(String(t.change)));
    open = toFixed(d, Math.max(l.scale, d.scale));
  } catch {
    /* keep last */
  }
  return {
    a: [String(t.ask), "0", String(t.ask_qty)],
    b: [String(t.bid), "0", String(t.bid_qty)],
    c: [last, "0"],
    v: [String(t.volume), String(t.volume)],
    o: open,
    h: [String(t.high), String(t.high)],
    l: [String(t.low), String(t.low)],
    pct: t.change_pct === undefined ? undefined : String(t.change_pct),
  };
}

/** One socket for the page: ticker for every pair, book and trades for the selected one. */
export class MarketSocket {
  private ws: WebSocket | null = null;
  private listeners = new Set<Listener>();
  private data: MarketData = {
    live: false,
    book: null,
    trades: [],
    tickers: {},
    mismatches: 0,
    lastEventMs: 0,
    serverMs: 0,
    messages: 0,
    candle: null,
  };
  private interval = 0; // ohlc interval in minutes (0: not wanted)
  private symbol = "";
  private decimals: [number, number] = [8, 8];
  private tickerSymbols: string[] = [];
  private frame = 0;
  private retryMs = 500;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private reqId = 1;

  constructor(private url: string) {}

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    fn(this.data);
    return () => this.listeners.delete(fn);
  }

  /** The selected pair (wsname) and its price and lot decimals. */
  select(symbol: string, priceDecimals: number, lotDecimals: number): void {
    if (symbol === this.symbol) return;
    const old = this.symbol;
    this.symbol = symbol;
    this.decimals = [priceDecimals, lotDecimals];
    this.data = { ...this.data, book: null, trades: [], candle: null };
    if (this.open()) {
      if (old) {
        this.send({ method: "unsubscribe", params: { channel: "book", symbol: [old], depth: BOOK_DEPTH } });
        this.send({ method: "unsubscribe", params: { channel: "trade", symbol: [old] } });
        if (this.interval) this.send({ method: "unsubscribe", params: { channel: "ohlc", symbol: [old], interval: this.interval } });
      }
      this.subscribePair();
    }
    this.schedule();
  }

  /** Live candles of ``minutes`` for the selected pair (0 to stop). */
  ohlc(minutes: number): void {
    if (minutes === this.interval) return;
    const old = this.interval;
    this.interval = minutes;
    this.data = { ...this.data, candle: null };
    if (this.open() && this.symbol) {
      if (old) this.send({ method: "unsubscribe", params: { channel: "ohlc", symbol: [this.symbol], interval: old } });
      if (minutes) this.send({ method: "subscribe", params: { channel: "ohlc", symbol: [this.symbol], interval: minutes, snapshot: false } });
    }
  }

  tickersFor(symbols: string[]): void {
    this.tickerSymbols = symbols;
    if (this.open() && symbols.length) this.send({ method: "subscribe", params: { channel: "ticker", symbol: symbols } });
  }

  start(): void {
    this.closed = false;
    this.connect();
  }

  stop(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }

  private open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  private send(msg: Record<string, unknown>): void {
    this.ws?.send(JSON.stringify({ ...msg, req_id: this.reqId++ }));
  }

  private subscribePair(): void {
    if (!this.symbol) return;
    this.send({ method: "subscribe", params: { channel: "book", symbol: [this.symbol], depth: BOOK_DEPTH } });
    this.send({ method: "subscribe", params: { channel: "trade", symbol: [this.symbol], snapshot: true } });
    if (this.interval)
      this.send({ method: "subscribe", params: { channel: "ohlc", symbol: [this.symbol], interval: this.interval, snapshot: false } });
  }

  private connect(): void {
    if (this.closed) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.retryMs = 500;
      if (this.tickerSymbols.length) this.tickersFor(this.tickerSymbols);
      this.subscribePair();
    };
    ws.onmessage = (ev) => this.onMessage(String(ev.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.data = { ...this.data, live: false, book: null };
      this.schedule();
      this.retry();
    };
    ws.onerror = () => ws.close();
  }

  private retry(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 10_000);
  }

  private onMessage(text: string): void {
    let msg: any;
    try {
      msg = parseFrame(text);
    } catch {
      return;
    }
    const ch = msg.channel;
    if (ch === "book") this.onBook(msg);
    else if (ch === "trade") this.onTrades(msg);
    else if (ch === "ohlc") this.onOhlc(msg);
    else if (ch === "ticker") {
      const tickers = { ...this.data.tickers };
      for (const t of msg.data ?? []) tickers[t.symbol] = toTicker(t);
      this.data = { ...this.data, tickers };
    } else return;
    const stamp = msg.data?.[msg.data.length - 1]?.timestamp;
    if ((ch === "book" || ch === "trade") && stamp) this.data.serverMs = Date.parse(stamp);
    this.data.lastEventMs = performance.now();
    this.data.messages += 1;
    this.schedule();
  }

  private onBook(msg: any): void {
    for (const d of msg.data ?? []) {
      if (d.symbol !== this.symbol) continue;
      let book: BookState;
      if (msg.type === "snapshot") {
        book = {
          asks: applySide([], d.asks ?? [], true, BOOK_DEPTH),
          bids: applySide([], d.bids ?? [], false, BOOK_DEPTH),
        };
      } else {
        if (!this.data.book) continue; // updates before the snapshot: wait for it
        book = {
          asks: applySide(this.data.book.asks, d.asks ?? [], true, BOOK_DEPTH),
          bids: applySide(this.data.book.bids, d.bids ?? [], false, BOOK_DEPTH),
        };
      }
      if (d.checksum !== undefined && bookChecksum(book.asks, book.bids, ...this.decimals) !== Number(d.checksum)) {
        this.resubscribeBook();
        return;
      }
      this.data = { ...this.data, book, live: true };
    }
  }

  /** A checksum mismatch: drop the book, unsubscribe, subscribe again for a fresh snapshot. */
  private resubscribeBook(): void {
    this.data = { ...this.data, book: null, mismatches: this.data.mismatches + 1 };
    this.send({ method: "unsubscribe", params: { channel: "book", symbol: [this.symbol], depth: BOOK_DEPTH } });
    this.send({ method: "subscribe", params: { channel: "book", symbol: [this.symbol], depth: BOOK_DEPTH } });
  }

  private onTrades(msg: any): void {
    const rows: TradeRow[] = [];
    for (const t of msg.data ?? []) {
      if (t.symbol !== this.symbol) continue;
      rows.push([
        String(t.price),
        String(t.qty),
        Date.parse(t.timestamp) / 1000,
        t.side === "buy" ? "b" : "s",
        t.ord_type === "market" ? "m" : "l",
        "",
        Number(t.trade_id),
      ]);
    }
    if (!rows.length) return;
    const trades = msg.type === "snapshot" ? rows : [...this.data.trades, ...rows];
    this.data = { ...this.data, trades: trades.slice(-TRADES_KEPT), live: true };
  }

  private onOhlc(msg: any): void {
    for (const d of msg.data ?? []) {
      if (d.symbol !== this.symbol || Number(d.interval) !== this.interval) continue;
      const time = beginSeconds(d.interval_begin);
      if (!Number.isFinite(time)) continue;
      const prev = this.data.candle;
      if (prev && prev.time > time) continue; // never move backwards
      this.data = {
        ...this.data,
        candle: { symbol: d.symbol, interval: this.interval, time, open: String(d.open), high: String(d.high), low: String(d.low), close: String(d.close) },
      };
    }
  }

  /** Listeners hear at most once per animation frame, however many messages arrived. */
  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const fn of this.listeners) fn(this.data);
    });
  }
}

let shared: MarketSocket | null = null;
export function marketSocket(): MarketSocket {
  if (!shared) {
    const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    shared = new MarketSocket(`${proto}//${window.location.host}/v2`);
    shared.start();
  }
  return shared;
}
