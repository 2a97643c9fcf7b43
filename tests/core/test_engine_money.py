"""Money: holds before matching, settlement of each fill, fees, rounding in favour of the house,
fee tiers by 30-day volume, deposits and withdrawals. Exact amounts in minor units."""

from __future__ import annotations

import math
from fractions import Fraction

from tests.core.enginedsl import money_text, run
from tests.core.enginekit import (
    ETH,
    ETHXBT,
    FEE_ACCOUNT,
    USD,
    XBT,
    Harness,
    accepted,
    eth,
    lots,
    of_type,
    px,
    usd,
    xbt,
)

from abyssal.core.accounts import DAY_NS
from abyssal.core.messages import (
    Deposit,
    Fill,
    OrderAccepted,
    OrderClosed,
    PlaceOrder,
    Rejected,
    Tick,
    Withdraw,
)

PPM = 1_000_000
SCALE = 10**5  # XBTUSD raw cost units (1e-9 USD) per USD minor unit (1e-4 USD)
TAKER_PPM, MAKER_PPM = 4_000, 2_500  # tier 0


def funded(*accounts: int) -> Harness:
    h = Harness()
    for a in accounts:
        h.fund(a)
    return h


def ceil_minor(raw_times_ppm: int, ppm_scale: int = PPM) -> int:
    """An exact amount in raw units (times a ppm rate) rounded up to a USD minor unit."""
    return math.ceil(Fraction(raw_times_ppm, ppm_scale * SCALE))


# ------------------------------------------------------------------ holds
def test_holds_by_side_and_fee_currency() -> None:
    h = funded(1)
    run(
        h,
        """1 buy limit 1 @ 100.0            // quote + the highest fee rate: 100.4 USD
           1 sell limit 1 @ 200.0           // base only: the fee comes out of the proceeds
           1 sell limit 1 @ 201.0 fcib      // base + fee in base: 1.004 XBT
           1 buy limit 1 @ 99.0 fcib        // quote only: the fee comes out of the bought base""",
    )
    assert money_text(h, 1) == "USD 1000000/199.4 XBT 100/2.004"


def test_cancel_releases_the_whole_hold() -> None:
    h = funded(1)
    run(h, "1 buy limit 1 @ 100.0\n 1 sell limit 2 @ 101.0 fcib\n 1 cancel-all")
    assert money_text(h, 1) == "USD 1000000/0 XBT 100/0"
    releases = {c.order_no: c.released_minor for c in of_type(h.log, OrderClosed)}
    assert releases == {1: usd("100.4"), 2: xbt("2.008")}


def test_fill_moves_holds_to_the_counterparty_with_fees_to_the_house() -> None:
    h = funded(1, 2)
    events = run(h, "2 sell limit 1 @ 100.0\n 1 buy limit 1 @ 100.0")
    (fill,) = of_type(events, Fill)
    assert (fill.buyer_pays_minor, fill.seller_gets_minor, fill.rounding_minor) == (usd("100"), usd("100"), 0)
    assert (fill.taker_fee_minor, fill.maker_fee_minor) == (usd("0.4"), usd("0.25"))
    assert (fill.taker_fee_from_hold, fill.maker_fee_from_hold) == (True, False)
    assert money_text(h, 1) == "USD 999899.6/0 XBT 101/0"
    assert money_text(h, 2) == "USD 1000099.75/0 XBT 99/0"
    assert money_text(h, FEE_ACCOUNT) == "USD 0.65/0 XBT 0/0"


def test_price_improvement_is_released_when_the_order_closes() -> None:
    h = funded(1, 2)
    events = run(h, "2 sell limit 1 @ 100.0\n 1 buy limit 1 @ 101.0")
    holds = {a.order_no: a.hold_minor for a in of_type(events, OrderAccepted)}
    assert holds[2] == usd("101.404")
    released = {c.order_no: c.released_minor for c in of_type(events, OrderClosed)}
    assert released[2] == usd("101.404") - usd("100.4")
    assert money_text(h, 1) == "USD 999899.6/0 XBT 101/0"


def test_partial_fill_keeps_exactly_the_hold_for_the_rest() -> None:
    h = funded(1, 2)
    run(h, "1 buy limit 2 @ 100.0\n 2 sell limit 0.5 @ 100.0")
    # the maker fee on the filled half was 0.25 %, not the 0.40 % held for it: the 0.075 USD
    # difference stays held (released at close) on top of 150.6 for 1.5 XBT at 100.0 + 0.40 %
    assert money_text(h, 1) == "USD 999949.875/150.675 XBT 100.5/0"


def test_fcib_seller_pays_the_fee_in_base_from_its_hold() -> None:
    h = funded(1, 2)
    run(h, "2 sell limit 1 @ 100.0 fcib\n 1 buy limit 1 @ 100.0")
    assert money_text(h, 2) == "USD 1000100/0 XBT 98.9975/0"
    assert money_text(h, FEE_ACCOUNT) == "USD 0.4/0 XBT 0.0025/0"


def test_fcib_buyer_pays_the_fee_in_base_from_what_it_buys() -> None:
    h = funded(1, 2)
    run(h, "2 sell limit 1 @ 100.0\n 1 buy limit 1 @ 100.0 fcib")
    assert money_text(h, 1) == "USD 999900/0 XBT 100.996/0"
    assert money_text(h, FEE_ACCOUNT) == "USD 0.25/0 XBT 0.004/0"


def test_market_buy_holds_the_walk_within_the_band_and_releases_the_rest() -> None:
    h = funded(1, 2)
    events = run(
        h,
        """2 sell limit 1 @ 100.0
           2 sell limit 1 @ 100.5
           2 sell limit 1 @ 102.0           // outside the band: not held for
           1 buy market 3""",
    )
    hold = of_type(events, OrderAccepted)[-1].hold_minor
    assert hold == usd("200.5") + usd("0.802")
    assert money_text(h, 1) == "USD 999798.698/0 XBT 102/0"


def test_exact_funds_are_enough_and_one_minor_unit_less_is_not() -> None:
    h = Harness()
    h.deposit(5, USD, usd("100.4"))
    h.deposit(6, USD, usd("100.3999"))
    ok = run(h, "5 buy limit 1 @ 100.0")
    refused = run(h, "6 buy limit 1 @ 100.0")
    assert accepted(ok).hold_minor == usd("100.4")
    assert isinstance(refused[-1], Rejected)
    assert money_text(h, 5) == "USD 100.4/100.4 XBT 0/0"


def test_held_funds_cannot_be_withdrawn() -> None:
    h = Harness()
    h.deposit(1, USD, usd("1000"))
    run(h, "1 buy limit 1 @ 100.0")
    refused = h.apply(Withdraw(h.tick_ns(), 1, USD.index, usd("899.6001"), "w"))
    assert isinstance(refused[-1], Rejected)
    run(h, "1 withdraw USD 899.6")
    assert money_text(h, 1) == "USD 100.4/100.4 XBT 0/0"


# ------------------------------------------------------------------ rounding on dust
def test_dust_rounding_favours_the_house() -> None:
    """Buyer pays the ceiling of its order's cumulative cost, seller receives the floor of each
    fill, the difference goes to account 0; fees are rounded up."""
    h = funded(1, 2, 3, 4)
    events = run(
        h,
        """2 sell limit 0.00005001 @ 20000.3    // #1
           3 buy limit 0.00005 @ 20000.3        // #2 leaves 1 lot of #1
           1 buy limit 0.0001 @ 20000.3         // #3 takes the 1-lot dust, rests 9999 lots
           4 sell limit 0.00009999 @ 20000.3    // #4 fills #3's rest""",
    )
    fills = of_type(events, Fill)
    price = px("20000.3")
    assert [f.volume_lots for f in fills] == [5000, 1, 9999]
    assert [f.buyer_pays_minor for f in fills] == [10001, 3, 19998]  # 10000.15, 2.00003, cum 20000.3
    assert [f.seller_gets_minor for f in fills] == [10000, 2, 19998]
    assert [f.rounding_minor for f in fills] == [1, 1, 0]
    # order #3's total is the ceiling of its total cost, not the sum of per-fill ceilings
    assert fills[1].buyer_pays_minor + fills[2].buyer_pays_minor == math.ceil(Fraction(10_000 * price, SCALE))
    # #3's fee from its hold: cumulative, at taker then maker rate, rounded up once
    fee3 = ceil_minor(1 * price * TAKER_PPM + 9_999 * price * MAKER_PPM)
    assert fills[1].taker_fee_minor + fills[2].maker_fee_minor == fee3
    # sellers' fees come from proceeds, each fill rounded up
    assert fills[0].maker_fee_minor == ceil_minor(5_000 * price * MAKER_PPM)
    assert fills[1].maker_fee_minor == ceil_minor(1 * price * MAKER_PPM)
    assert fills[2].taker_fee_minor == ceil_minor(9_999 * price * TAKER_PPM)
    house = sum(f.rounding_minor + f.taker_fee_minor + f.maker_fee_minor for f in fills)
    assert h.balance(FEE_ACCOUNT, USD) == (house, 0)


def test_dust_fill_fee_never_exceeds_the_proceeds() -> None:
    h = funded(1, 2)
    events = run(h, "2 buy limit 0.00005001 @ 10000.1\n 1 sell limit 0.00005 @ 10000.1")
    events += run(h, "1 sell limit 0.00005 @ 10000.1")  # takes the 1-lot dust bid
    dust = of_type(events, Fill)[-1]
    assert dust.volume_lots == 1
    assert dust.seller_gets_minor == 1  # 1.00001 minor units, floored
    assert 0 <= dust.taker_fee_minor <= dust.seller_gets_minor


# ------------------------------------------------------------------ fee tiers
def _taker_fee(h: Harness, taker: int, maker: int, volume: str, price: str) -> int:
    run(h, f"{maker} sell limit {volume} @ {price}\n {taker} buy limit {volume} @ {price}")
    return of_type(h.log, Fill)[-1].taker_fee_minor


def test_fee_tier_follows_30_day_volume() -> None:
    h = funded(1, 2)
    assert _taker_fee(h, 1, 2, "1", "10000.0") == usd("40")  # 0.40 % at $0
    assert h.s.accounts[1].vol30 == usd("10000")
    assert _taker_fee(h, 1, 2, "1", "10000.0") == usd("35")  # 0.35 % from $10,000
    assert of_type(h.log, Fill)[-1].maker_fee_minor == usd("20")  # maker 0.20 %
    day = h.ts_ns // DAY_NS
    h.apply(Tick((day + 29) * DAY_NS))  # 29 days on: the first day is still in the window
    assert _taker_fee(h, 1, 2, "0.001", "10000.0") == usd("0.035")
    h.apply(Tick((day + 30) * DAY_NS))  # 30 days on: it has left the window
    assert h.s.accounts[1].volume_at(h.ts_ns) == usd("10")
    assert _taker_fee(h, 1, 2, "0.001", "10000.0") == usd("0.04")


def test_fee_volume_of_a_cross_pair_is_valued_through_the_usd_pair() -> None:
    h = funded(1, 2, 3, 4)
    h.deposit(3, ETH, eth("100"))
    run(h, "1 sell limit 0.001 @ 20000.0\n 2 buy limit 0.001 @ 20000.0")  # XBTUSD last: 20000
    h.apply(
        PlaceOrder(h.tick_ns(), 3, ETHXBT.index, 1, 1, lots("10", ETHXBT), price_ticks=px("0.05", ETHXBT))
    )
    h.apply(
        PlaceOrder(h.tick_ns(), 4, ETHXBT.index, 0, 1, lots("10", ETHXBT), price_ticks=px("0.05", ETHXBT))
    )
    # 0.5 XBT at 20,000 USD
    assert h.s.accounts[3].vol30 == usd("10000")
    assert h.s.accounts[4].vol30 == usd("10000")
    assert h.balance(4, ETH) == (eth("10"), 0)
    assert h.balance(4, XBT)[0] == xbt("100") - xbt("0.5") - xbt("0.002")  # 0.40 % taker fee in XBT


# ------------------------------------------------------------------ deposits and withdrawals
def test_deposits_and_withdrawals_move_totals() -> None:
    h = Harness()
    h.apply(Deposit(h.tick_ns(), 9, USD.index, usd("10"), "d1"))
    h.apply(Withdraw(h.tick_ns(), 9, USD.index, usd("4"), "w1"))
    assert h.balance(9, USD) == (usd("6"), 0)
    assert h.net_minor[USD.index] == usd("6")


def test_balances_add_up_after_a_busy_book() -> None:
    """Every fill's amounts are consistent and the house holds exactly fees + rounding."""
    h = funded(1, 2, 3)
    run(
        h,
        """1 sell iceberg 3 @ 100.3 display 0.2
           2 sell limit 0.33333333 @ 100.1
           3 buy market 1.5
           2 buy limit 0.77777777 @ 99.9
           1 sell market 0.5 fcib
           3 buy limit 1.23456789 @ 100.3 fcib""",
    )
    fills = of_type(h.log, Fill)
    assert len(fills) >= 8
    for f in fills:
        assert f.cost_raw == f.price_ticks * f.volume_lots
        assert f.seller_gets_minor == f.cost_raw // SCALE
        assert f.rounding_minor == f.buyer_pays_minor - f.seller_gets_minor
        assert f.base_minor == f.volume_lots * 100  # XBT minor units per lot
    house_usd = sum(f.rounding_minor for f in fills) + sum(
        fee
        for f in fills
        for fee, asset in ((f.taker_fee_minor, f.taker_fee_asset), (f.maker_fee_minor, f.maker_fee_asset))
        if asset == USD.index
    )
    assert h.balance(FEE_ACCOUNT, USD)[0] == house_usd
