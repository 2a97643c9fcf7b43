"""The embedded exchange's event-log relay with and without readers of engine topics.

By default the in-process bus has readers for ``payments`` only, so nothing would receive an
order, trade or ledger message: each batch's own transaction moves the relay's cursor (lag 0 at
every acknowledgement, no relay work). A reader that subscribes later receives every message of
the commands applied after it subscribed, in order, from the event log.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.payments.paykit import exchange_env, run
from tests.runtime.eventlog_kit import MID, PAIR

from abyssal.adapters.event_log_outbox import EVENTS_CURSOR
from abyssal.core.messages import Event, OrderType, PlaceOrder, Side
from abyssal.ports import BusMessage
from abyssal.runtime.event_messages import event_message
from abyssal.runtime.exchange import Exchange


def _cursor(exchange: Exchange) -> int:
    row = (
        exchange.store.conn()
        .execute("SELECT seq FROM projection_offsets WHERE name = ?", (EVENTS_CURSOR,))
        .fetchone()
    )
    return int(row[0])


def _order(account: int, side: Side) -> PlaceOrder:
    return PlaceOrder(ts_ns=time.time_ns(), account=account, pair=PAIR.index, side=side,
                      ordertype=OrderType.limit, volume_lots=10**5, price_ticks=MID)  # fmt: skip


def test_without_readers_each_batch_moves_the_cursor_and_a_later_reader_gets_what_follows(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with exchange_env(tmp_path) as env:
            ex = env.exchange
            buyer = await env.tenant("buyer", USD="100000")
            seller = await env.tenant("seller", XBT="10")
            assert ex.bus.audience() == frozenset({"payments"})
            for _ in range(5):
                await ex.execute(_order(seller.account, Side.sell))
                await ex.execute(_order(buyer.account, Side.buy))
                assert _cursor(ex) == ex.store.last_seq()  # in the acknowledged batch itself
            relay = ex.event_relay
            assert relay is not None and relay.published == 0
            hops: list[object] = []  # what the relay sends to a worker thread
            blocking = relay.blocking

            async def counted(fn: Any, *args: Any) -> Any:
                hops.append(fn)
                return await blocking(fn, *args)

            relay.blocking = counted
            polls = 0
            run_once = relay.run_once

            async def counted_poll() -> int:
                nonlocal polls
                polls += 1
                return await run_once()

            relay.run_once = counted_poll  # type: ignore[method-assign]
            await asyncio.sleep(1.0)
            assert hops == [], "nothing to claim: the polls stay on the event loop"
            # idle, the relay backs off (waits of 20, 40 ... 500 ms) instead of polling 50 times a second
            assert 2 <= polls <= 10, polls
            relay.idle_poll_max_s = 60.0  # from here on only the batches' wakes can deliver in time

            got: list[BusMessage] = []

            async def on_trade(m: BusMessage) -> None:
                got.append(m)

            ex.bus.subscribe(["trades", "orders"], "test-reader")
            reading = asyncio.create_task(ex.bus.run(["trades", "orders"], "test-reader", on_trade))
            first = ex.store.last_seq() + 1
            expected: list[BusMessage] = []
            for _ in range(5):
                for account, side in ((seller.account, Side.sell), (buyer.account, Side.buy)):
                    events: list[Event] = await ex.execute(_order(account, side))
                    seq = ex.store.last_seq()
                    messages = [event_message(seq, i, e) for i, e in enumerate(events)]
                    expected += [m for m in messages if m is not None]
            assert any(m.topic == "trades" for m in expected)
            for _ in range(300):
                if len(got) >= len(expected) and _cursor(ex) == ex.store.last_seq():
                    break
                await asyncio.sleep(0.01)
            assert got == expected  # none before ``first``, every one after, in order (woken, not polled)
            assert relay.claims.claim in hops
            assert all(int(m.event_id.split("-")[1]) >= first for m in got)
            assert _cursor(ex) == ex.store.last_seq()
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    run(scenario)
