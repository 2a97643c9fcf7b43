import { describe, expect, it } from "vitest";
import { cmp, decimalsOf, mul, parseDec, toFixed } from "../src/decimal";
import { depthPct, fmtAmount, fmtChange, fmtTime, toCsv } from "../src/format";

describe("decimal", () => {
  it.each([
    ["0.1", 1n, 1],
    ["12", 12n, 0],
    ["3.140", 3140n, 3],
  ])("parses %s", (text, units, scale) => {
    expect(parseDec(text)).toEqual({ units, scale });
  });
  it.each(["", "abc", "1.2.3", "-1", "1e5", ".5", "1,5"])("refuses %j", (text) => {
    expect(parseDec(text)).toBeNull();
  });
  it("multiplies exactly where floats do not", () => {
    expect(toFixed(mul(parseDec("0.1")!, parseDec("0.2")!), 2)).toBe("0.02");
    expect(toFixed(mul(parseDec("30000.1")!, parseDec("0.00000003")!), 10)).toBe("0.0009000030");
  });
  it("compares across scales", () => {
    expect(cmp(parseDec("1.50")!, parseDec("1.5")!)).toBe(0);
    expect(cmp(parseDec("0.0001")!, parseDec("0.00009")!)).toBe(1);
  });
  it("rounds half up for display", () => {
    expect(toFixed(parseDec("1.005")!, 2)).toBe("1.01");
    expect(toFixed(parseDec("1.004")!, 2)).toBe("1.00");
    expect(decimalsOf("1.500")).toBe(3);
  });
});

describe("format", () => {
  it.each([
    ["30000.5", 1, "30,000.5"],
    ["30000", 2, "30,000.00"],
    ["-24.5000", 2, "-24.50"],
    ["0.00010000", 8, "0.00010000"],
    ["1234567.891", 0, "1,234,568"],
  ])("fmtAmount(%s, %i) = %s", (text, d, want) => {
    expect(fmtAmount(text, d)).toBe(want);
  });
  it("shows a dash for nothing", () => {
    expect(fmtAmount(undefined, 2)).toBe("–");
  });
  it.each([
    ["100", "105", "+5.00%"],
    ["100", "97.5", "-2.50%"],
    ["100", "100", "0.00%"],
    ["0", "1", "–"],
    [undefined, "1", "–"],
  ])("fmtChange(%s, %s) = %s", (o, l, want) => {
    expect(fmtChange(o, l)).toBe(want);
  });
  it("formats UTC times", () => {
    expect(fmtTime(1688669448.5)).toBe("2023-07-06 18:50:48");
    expect(fmtTime(0)).toBe("–");
  });
  it("clamps depth bars", () => {
    expect(depthPct("5", 10)).toBe(50);
    expect(depthPct("20", 10)).toBe(100);
    expect(depthPct("1", 0)).toBe(0);
  });
  it("writes CSV with quoting and no formula injection", () => {
    const csv = toCsv(["a", "b"], [["x,y", '"q"'], ["=SUM(A1)", "-24.5"], ["-cmd", null]]);
    expect(csv).toBe('a,b\r\n"x,y","""q"""\r\n\'=SUM(A1),-24.5\r\n\'-cmd,\r\n');
  });
});
