"""The projector's direct hold and release updates equal the balances its postings would give."""

from __future__ import annotations

import random

from abyssal.config import load_config
from abyssal.core.engine import Engine
from abyssal.core.messages import (
    Deposit,
    Event,
    Fill,
    OrderAccepted,
    OrderClosed,
    OrderType,
    PlaceOrder,
    Side,
)
from abyssal.core.postings import HELD, lines_for
from abyssal.runtime.projector import Projector, Rows

INSTRUMENTS = load_config(None).instruments


def events_of_a_busy_book(n: int, seed: int) -> list[list[Event]]:
    engine = Engine(INSTRUMENTS)
    out = [
        engine.apply(Deposit(ts_ns=1, account=a, asset=i, amount_minor=10**15, ref=f"d{a}{i}"))
        for a in (1, 2)
        for i in range(len(INSTRUMENTS.assets))
    ]
    r = random.Random(seed)
    pairs = [p for p in INSTRUMENTS.pairs if p.id in ("XXBTZUSD", "XETHZUSD")]
    for k in range(n):
        pair = r.choice(pairs)
        side = r.choice((Side.buy, Side.sell))
        mid = 300_000 if pair.id == "XXBTZUSD" else 20_000
        out.append(
            engine.apply(
                PlaceOrder(
                    ts_ns=10 + k,
                    account=1 if side == Side.buy else 2,
                    pair=pair.index,
                    side=side,
                    ordertype=r.choice((OrderType.limit, OrderType.limit, OrderType.market)),
                    volume_lots=r.randint(10**5, 10**7),
                    price_ticks=mid + r.randint(-50, 50),
                    tif=r.choice((0, 0, 1)),  # GTC, or IOC (closed with a release at once)
                )
            )
        )
    return out


def test_hold_and_release_deltas_match_their_postings() -> None:
    projector = Projector(INSTRUMENTS, {})
    seen = {OrderAccepted: 0, OrderClosed: 0, Fill: 0}
    for seq, events in enumerate(events_of_a_busy_book(3_000, seed=11), start=1):
        for index, event in enumerate(events):
            expected = {k: list(v) for k, v in projector.balances.items()}
            for line in lines_for(event, INSTRUMENTS):
                bal = expected.setdefault((line.account, line.asset), [0, 0])
                bal[0] += line.amount_minor
                if line.bucket == HELD:
                    bal[1] += line.amount_minor
            rows = Rows()
            projector.project(seq, [event], rows)
            assert projector.balances == expected, (seq, index, event)
            if isinstance(event, Fill):  # entries: the lines' net per account and asset, the balance after
                net: dict[tuple[int, int], int] = {}
                for line in lines_for(event, INSTRUMENTS):
                    net[line.account, line.asset] = net.get((line.account, line.asset), 0) + line.amount_minor
                entries = {(e[3], e[4]): e for e in rows.ledger}
                assert len(entries) == len(rows.ledger), rows.ledger  # one entry per account and asset
                assert {k: e[9] - e[10] for k, e in entries.items()} == {k: v for k, v in net.items() if v}
                assert all(e[11] == projector.balances[k][0] for k, e in entries.items())
                assert [e[2] for e in rows.ledger] == list(range(len(rows.ledger)))
            if type(event) in seen:
                seen[type(event)] += 1
    assert seen[OrderAccepted] > 1_000 and seen[OrderClosed] > 500 and seen[Fill] > 500, seen
