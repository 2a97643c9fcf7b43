import { describe, expect, it } from "vitest";
import { depthPercents, groupLevels, spreadOf, stepLabel, toUnits } from "../src/book";
import type { Level } from "../src/market";

const L = (p: string, q: string): Level => [p, q, 0];

describe("toUnits", () => {
  it("parses decimal strings to integer ticks exactly", () => {
    expect(toUnits("30000.5", 1)).toBe(300005n);
    expect(toUnits("30000", 1)).toBe(300000n);
    expect(toUnits("0.10000000", 8)).toBe(10000000n);
    expect(toUnits("1.25", 1)).toBe(12n);
    expect(toUnits("1.25", 1, true)).toBe(13n);
    expect(toUnits("1.20", 1, true)).toBe(12n);
  });
});

describe("groupLevels", () => {
  const bids = [L("100.9", "0.1"), L("100.1", "0.2"), L("99.9", "0.3"), L("99.0", "1")];
  const asks = [L("101.0", "0.1"), L("101.1", "0.2"), L("101.9", "0.3"), L("102.1", "0.00000001")];
  it("1x is the identity", () => {
    expect(groupLevels(bids, "bid", 1, 1, 8)).toBe(bids);
  });
  it("groups bids down and sums volumes exactly", () => {
    const g = groupLevels(bids, "bid", 10, 1, 8);
    expect(g.map((l) => [l[0], l[1]])).toEqual([
      ["100.0", "0.30000000"], // 0.1 + 0.2 (no 0.30000000000000004)
      ["99.0", "1.30000000"],
    ]);
  });
  it("groups asks up", () => {
    const g = groupLevels(asks, "ask", 10, 1, 8);
    expect(g.map((l) => [l[0], l[1]])).toEqual([
      ["101.0", "0.10000000"],
      ["102.0", "0.50000000"],
      ["103.0", "0.00000001"],
    ]);
  });
  it("larger multiples and integer prices", () => {
    expect(groupLevels(bids, "bid", 1000, 1, 8).map((l) => [l[0], l[1]])).toEqual([
      ["100.0", "0.30000000"],
      ["0.0", "1.30000000"],
    ]);
    expect(groupLevels([L("1234", "2"), L("1299", "3")], "bid", 100, 0, 0).map((l) => l[0])).toEqual(["1200"]);
    expect(groupLevels([L("1201", "2"), L("1200", "3")], "ask", 100, 0, 0).map((l) => [l[0], l[1]])).toEqual([
      ["1200", "3"],
      ["1300", "2"],
    ]);
  });
  it("keeps extra lot digits exact", () => {
    const g = groupLevels([L("10.01", "0.123456789"), L("10.02", "0.000000001")], "bid", 10, 2, 8);
    expect(g[0][1]).toBe("0.123456790");
  });
});

describe("depth and spread", () => {
  it("depth bars from integer lots over both sides", () => {
    const a = [L("2", "0.5")];
    const b = [L("1", "2"), L("0.9", "0")];
    const d = depthPercents(a, b, 8);
    expect(d.get(a[0])).toBe(25);
    expect(d.get(b[0])).toBe(100);
    expect(d.get(b[1])).toBe(0);
  });
  it("exact spread", () => {
    expect(spreadOf([L("0.3", "1")], [L("0.1", "1")], 1)).toBe("0.2");
    expect(spreadOf([], [L("0.1", "1")], 1)).toBe("");
  });
  it("step labels", () => {
    expect(stepLabel(1, 1)).toBe("0.1");
    expect(stepLabel(10, 1)).toBe("1");
    expect(stepLabel(1000, 2)).toBe("10");
    expect(stepLabel(100, 0)).toBe("100");
  });
});
