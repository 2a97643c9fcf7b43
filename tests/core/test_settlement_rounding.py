"""Every fill's amounts against a reference written from the rounding rules, on markets whose raw
cost unit is finer than, equal to or coarser than the quote's minor unit (``cost_shift`` > 0, 0, < 0).

The rules (docs/adr/0001): the buyer pays the cumulative ceiling of its order's raw cost; the
seller gets the floor of each fill; a fee out of the buyer's hold is the cumulative ceiling of
rate x cost; a fee out of the seller's proceeds is the ceiling of that fill's fee, capped at the
proceeds. The reference computes them with fractions, not with the engine's integer shortcuts.
"""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st
from tests.core.enginekit import ENGINE_PROFILE, Harness

from abyssal.core.instruments import PPM, Asset, FeeSchedule, FeeTier, Instruments, Pair
from abyssal.core.messages import Fill, PlaceOrder

TAKER_PPM, MAKER_PPM = 2_600, 1_600


def market(quote_decimals: int, pair_decimals: int, lot_decimals: int) -> Instruments:
    quote = Asset(0, "QQQ", "QQQ", "QQQ", quote_decimals, quote_decimals)
    base = Asset(1, "BBB", "BBB", "BBB", lot_decimals + 2, lot_decimals)
    pair = Pair(
        index=0, id="BBBQQQ", altname="BBBQQQ", wsname="BBB/QQQ", symbol="BBB/QQQ", base=base,
        quote=quote, pair_decimals=pair_decimals, lot_decimals=lot_decimals, cost_decimals=0,
        tick_ticks=1, ordermin_lots=1, costmin_raw=1,
        fees=FeeSchedule((FeeTier(0, TAKER_PPM, MAKER_PPM),)),
    )  # fmt: skip
    return Instruments(assets=(quote, base), pairs=(pair,), fee_volume_asset=quote)


def ceil(x: Fraction) -> int:
    return math.ceil(x)


@ENGINE_PROFILE
@given(
    decimals=st.sampled_from([(2, 1, 3), (4, 1, 8), (3, 0, 0), (6, 0, 0), (8, 2, 1)]),
    makers=st.lists(st.tuples(st.integers(1, 999), st.integers(1, 999)), min_size=1, max_size=4),
    taker_buys=st.booleans(),
)
def test_fill_amounts_follow_the_rounding_rules(
    decimals: tuple[int, int, int], makers: list[tuple[int, int]], taker_buys: bool
) -> None:
    qd, pd, ld = decimals
    ins = market(qd, pd, ld)
    pair = ins.pairs[0]
    to_minor = Fraction(10) ** (qd - pd - ld)  # quote minor units per raw cost unit
    h = Harness(ins, pair)
    for account in (1, 2):
        h.deposit(account, ins.assets[0], 10**18)
        h.deposit(account, ins.assets[1], 10**18)
    maker_side, taker_side = (1, 0) if taker_buys else (0, 1)
    for price, qty in makers:
        h.apply(PlaceOrder(h.ts_ns + 1, 2, 0, maker_side, 1, qty, price_ticks=price))
    worst = max(p for p, _ in makers) if taker_buys else min(p for p, _ in makers)
    total_qty = sum(q for _, q in makers)
    events = h.apply(PlaceOrder(h.ts_ns + 1, 1, 0, taker_side, 1, total_qty, price_ticks=worst))
    fills = [e for e in events if isinstance(e, Fill)]
    assert sum(f.volume_lots for f in fills) == total_qty
    cumulative: dict[int, tuple[int, int, int, int]] = {}  # buy order -> cost, fee_num, paid, fee paid
    for f in fills:
        raw = f.price_ticks * f.volume_lots
        buyer_ppm, seller_ppm = (TAKER_PPM, MAKER_PPM) if taker_buys else (MAKER_PPM, TAKER_PPM)
        buy_order = f.taker_order if taker_buys else f.maker_order
        cost, fee_num, paid, fee_paid = cumulative.get(buy_order, (0, 0, 0, 0))
        cost += raw
        fee_num += raw * buyer_ppm
        buyer_pays = ceil(cost * to_minor) - paid
        buyer_fee = ceil(ceil(Fraction(fee_num, PPM)) * to_minor) - fee_paid
        seller_gets = math.floor(raw * to_minor)
        seller_fee = min(ceil(ceil(Fraction(raw * seller_ppm, PPM)) * to_minor), seller_gets)
        cumulative[buy_order] = (cost, fee_num, paid + buyer_pays, fee_paid + buyer_fee)
        assert (f.buyer_pays_minor, f.seller_gets_minor) == (buyer_pays, seller_gets)
        assert f.rounding_minor == buyer_pays - seller_gets
        assert f.base_minor == f.volume_lots * 100
        taker_fee, maker_fee = (buyer_fee, seller_fee) if taker_buys else (seller_fee, buyer_fee)
        assert (f.taker_fee_minor, f.maker_fee_minor) == (taker_fee, maker_fee)
        assert (f.taker_fee_asset, f.maker_fee_asset) == (0, 0)
        assert (f.taker_fee_from_hold, f.maker_fee_from_hold) == (taker_buys, not taker_buys)
