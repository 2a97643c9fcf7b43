import { describe, expect, it } from "vitest";
import { checkAmount, fieldOfError, percentToPpm, validateOrder, type Funds, type OrderForm, type PairInfo } from "../src/validate";

const XBTUSD: PairInfo = {
  id: "XXBTZUSD",
  altname: "XBTUSD",
  wsname: "XBT/USD",
  base: "XXBT",
  quote: "ZUSD",
  pair_decimals: 1,
  lot_decimals: 8,
  cost_decimals: 5,
  ordermin: "0.0001",
  costmin: "0.5",
  fees: [[0, 0.26]],
  fees_maker: [[0, 0.16]],
};
const FUNDS: Funds = { availableQuote: "1000.0000", availableBase: "0.5000000000", bestAsk: "30001.0", bestBid: "30000.0" };
const form = (over: Partial<OrderForm>): OrderForm => ({
  side: "buy",
  ordertype: "limit",
  price: "30000",
  price2: "",
  volume: "0.01",
  displayvol: "",
  postOnly: false,
  tif: "GTC",
  expire: "3600",
  ...over,
});

describe("checkAmount", () => {
  it.each([
    ["", "Enter the amount."],
    ["abc", "The amount must be a number (digits and one point)."],
    ["1.2.3", "The amount must be a number such as 1.5."],
    ["0.123456789", "The amount has at most 8 decimals."],
    ["0", "The amount must be more than 0."],
    ["0.5", null],
  ])("%j -> %j", (text, want) => {
    expect(checkAmount(text, 8, "amount")).toBe(want);
  });
  it("says whole number for 0 decimals", () => {
    expect(checkAmount("1.5", 0, "amount")).toBe("The amount must be a whole number.");
  });
});

describe("validateOrder", () => {
  it("builds AddOrder parameters for a valid limit buy with cost and fee", () => {
    const r = validateOrder(form({}), XBTUSD, FUNDS);
    expect(r.errors).toEqual({});
    expect(r.params).toEqual({ pair: "XXBTZUSD", type: "buy", ordertype: "limit", volume: "0.01", price: "30000" });
    expect(r.cost && r.fee).toBeTruthy();
    expect(r.feePct).toBe("0.26");
  });
  it.each<[Partial<OrderForm>, string, RegExp]>([
    [{ volume: "lots" }, "volume", /must be a number/],
    [{ volume: "0.000000001" }, "volume", /at most 8 decimals/],
    [{ volume: "0.00005" }, "volume", /minimum amount is 0.0001/],
    [{ price: "30000.55" }, "price", /at most 1 decimals/],
    [{ price: "x" }, "price", /must be a number/],
    [{ price: "1", volume: "0.1" }, "volume", /at least 0.5 USD/],
    [{ volume: "1" }, "volume", /More than available/],
    [{ side: "sell", volume: "0.6" }, "volume", /More than available: 0.5000000000 XBT/],
    [{ ordertype: "stop-loss-limit", price2: "" }, "price2", /Enter the limit price/],
    [{ ordertype: "iceberg", volume: "0.15", displayvol: "0.001" }, "displayvol", /1\/15/],
    [{ tif: "GTD", expire: "2" }, "expire", /whole seconds/],
  ])("refuses %j on %s", (over, field, pattern) => {
    const r = validateOrder(form(over), XBTUSD, FUNDS);
    expect(r.params).toBeNull();
    expect((r.errors as Record<string, string>)[field]).toMatch(pattern);
  });
  it("estimates a market buy at the best ask and sends no price", () => {
    const r = validateOrder(form({ ordertype: "market", price: "" }), XBTUSD, FUNDS);
    expect(r.params).toEqual({ pair: "XXBTZUSD", type: "buy", ordertype: "market", volume: "0.01" });
  });
  it("uses the maker fee, post flag, IOC and GTD where they apply", () => {
    expect(validateOrder(form({ postOnly: true }), XBTUSD, FUNDS).params?.oflags).toBe("post");
    expect(validateOrder(form({ postOnly: true }), XBTUSD, FUNDS).feePct).toBe("0.16");
    expect(validateOrder(form({ tif: "IOC" }), XBTUSD, FUNDS).params?.timeinforce).toBe("IOC");
    const gtd = validateOrder(form({ tif: "GTD", expire: "60" }), XBTUSD, FUNDS).params;
    expect(gtd?.expiretm).toBe("+60");
    expect(validateOrder(form({ ordertype: "market", postOnly: true }), XBTUSD, FUNDS).params?.oflags).toBeUndefined();
  });
  it("sends a stop-limit with trigger and limit", () => {
    const r = validateOrder(form({ ordertype: "stop-loss-limit", price: "29000", price2: "28900" }), XBTUSD, FUNDS);
    expect(r.params).toMatchObject({ ordertype: "stop-loss-limit", price: "29000", price2: "28900" });
  });
});

describe("helpers", () => {
  it("converts fee percent to ppm exactly", () => {
    expect(percentToPpm(0.26)).toBe(2600n);
    expect(percentToPpm(0)).toBe(0n);
  });
  it.each([
    ["EOrder:Insufficient funds", "volume"],
    ["EGeneral:Invalid arguments:volume", "volume"],
    ["EOrder:Invalid price:XXBTZUSD price can only be specified up to 1 decimals.", "price"],
    ["EService:Busy", "form"],
  ])("maps %s to %s", (error, field) => {
    expect(fieldOfError(error)).toBe(field);
  });
});
