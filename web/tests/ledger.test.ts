import { describe, expect, it } from "vitest";
import { ledgerParams } from "../src/components/Account";

describe("ledgerParams", () => {
  it("sends only the filters that narrow the result", () => {
    expect(ledgerParams("all", "all", 0)).toEqual({ ofs: "0" });
    expect(ledgerParams("ZUSD", "all", 50)).toEqual({ ofs: "50", asset: "ZUSD" });
    expect(ledgerParams("XXBT", "trade", 100)).toEqual({ ofs: "100", asset: "XXBT", type: "trade" });
  });
});
