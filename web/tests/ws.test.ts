import { describe, expect, it } from "vitest";
import { applySide, bookChecksum, crc32, parseFrame, toTicker } from "../src/ws";

describe("book checksum", () => {
  it("matches the documented vector", () => {
    const asks = applySide([], [{ price: "30000.5", qty: "0.20000000" }, { price: "30001.0", qty: "0.4" }], true, 25);
    const bids = applySide([], [{ price: "29999.5", qty: "0.2" }, { price: "30000.0", qty: "0.10000000" }], false, 25);
    expect(bookChecksum(asks, bids, 1, 8)).toBe(2252862770);
  });
  it("crc32 of a known string", () => {
    expect(crc32("123456789")).toBe(0xcbf43926);
  });
  it("applies deletes and keeps depth", () => {
    let s = applySide([], [{ price: "1", qty: "1" }, { price: "2", qty: "1" }, { price: "3", qty: "1" }], true, 2);
    expect(s.map((l) => l[0])).toEqual(["1", "2"]);
    s = applySide(s, [{ price: "1.0", qty: "0" }], true, 2);
    expect(s.map((l) => l[0])).toEqual(["2"]);
  });
});

describe("frames", () => {
  it("keeps decimal text of numbers", () => {
    const m = parseFrame('{"channel":"book","data":[{"bids":[{"price":66788.0,"qty":3.21000000}],"checksum":12}]}');
    expect(m.data[0].bids[0]).toEqual({ price: "66788.0", qty: "3.21000000" });
    expect(m.data[0].checksum).toBe(12);
  });
  it("ticker to the REST shape", () => {
    const t = toTicker({ last: "110.0", change: "10.0", volume: "2.5", high: "111.0", low: "99.0", bid: "1", ask: "2", bid_qty: "1", ask_qty: "1" });
    expect(t.o).toBe("100.0");
    expect(t.c[0]).toBe("110.0");
  });
});

import { v2Symbol } from "../src/ws";
describe("symbols", () => {
  it("XBT is BTC on v2", () => expect(v2Symbol("XBT/USD")).toBe("BTC/USD"));
});

import { fixed } from "../src/ws";
describe("fixed", () => {
  it("pads and rounds exactly", () => {
    expect(fixed("4.0", 8)).toBe("4.00000000");
    expect(fixed("30000", 1)).toBe("30000.0");
    expect(fixed("7", 0)).toBe("7");
    expect(fixed("1.25", 1)).toBe(fixed("1.25", 1));
  });
});

import { fmtPct, tickerChange } from "../src/format";
describe("24h change", () => {
  it("keeps change_pct text from the frame", () => {
    const m = parseFrame('{"channel":"ticker","data":[{"symbol":"BTC/USD","last":110.0,"change":10.0,"change_pct":-0.20}]}');
    expect(m.data[0].change_pct).toBe("-0.20");
  });
  it("formats the rolling pct exactly", () => {
    expect(fmtPct("7.17")).toBe("+7.17%");
    expect(fmtPct("-0.02")).toBe("-0.02%");
    expect(fmtPct("0.00")).toBe("0.00%");
    expect(fmtPct(undefined)).toBe("–");
  });
  it("prefers WS change_pct, falls back to the REST open, dashes without trades", () => {
    const ws = toTicker({ last: "110.0", change: "10.0", change_pct: "10.00", volume: "2.5", high: "111.0", low: "99.0", bid: "1", ask: "2", bid_qty: "1", ask_qty: "1" });
    expect(tickerChange(ws)).toBe("+10.00%");
    const rest = { o: "100.0", c: ["105.0", "1"] as [string, string], v: ["1", "1"] as [string, string] };
    expect(tickerChange(rest)).toBe("+5.00%");
    const none = toTicker({ last: "0.0", change: "0.0", change_pct: "0.00", volume: "0.00000000", high: "0.0", low: "0.0", bid: "0", ask: "0", bid_qty: "0", ask_qty: "0" });
    expect(tickerChange(none)).toBe("–");
  });
});

import { beginSeconds } from "../src/ws";
describe("ohlc", () => {
  it("interval_begin with nanoseconds to unix seconds", () => {
    expect(beginSeconds("2024-05-17T11:12:00.000000000Z")).toBe(Date.UTC(2024, 4, 17, 11, 12) / 1000);
  });
});
