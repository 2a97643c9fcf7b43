"""Public market data fan-out: conflated rounds of book, trade, ticker and ohlc frames.

The market data views change after every committed batch; the publisher only notes *what*
changed (levels touched, trades) and asks for a round. A round runs when the flusher has
written the previous one, so under load several batches fold into one round (smart batching):
each connection gets fewer, larger updates instead of a growing queue, and latency stays about
one round's writing time. A round builds each frame once and hands the list to ``ws_fanout``,
which writes one byte string per group of identical subscriptions.

The book that subscribers see is the publisher's own ``BookView`` per pair, brought up to the
market view's state at each round by re-applying every touched level. One ``apply_batch`` per
round then yields, for each subscribed depth, the rows that turn what a client had after the
last round into what it must have now (Kraken's window rule, ``marketdata/book_view.py``), so
conflating rounds never breaks a client's checksum. Snapshots come from the same view.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

from abyssal.core.instruments import Instruments
from abyssal.gateway import ws_market
from abyssal.gateway.ws_fanout import Fanout, Frames
from abyssal.gateway.ws_subscriptions import Registry, Subscription
from abyssal.gateway.ws_wire import Flusher, Out
from abyssal.marketdata.book_view import BOOK_DEPTHS, BookSide, BookView
from abyssal.marketdata.candles import INTERVALS_MIN
from abyssal.marketdata.trades_tape import TRADES_WS_SNAPSHOT, PublicTrade
from abyssal.runtime.market import BOOK_MIRROR_LEVELS, MarketData

PENDING_TRADES_MAX: Final = 10_000  # per pair and round; older ones are still on the REST tape


class RoundStats:
    """Counters a benchmark or a test can read (not exported on the wire)."""

    __slots__ = ("deliveries", "frames_built", "last_round_ns", "rounds")

    def __init__(self) -> None:
        self.rounds = 0
        self.frames_built = 0
        self.deliveries = 0
        self.last_round_ns = 0


class Publisher:
    def __init__(self, market: MarketData, registry: Registry, flusher: Flusher) -> None:
        self.market = market
        self.instruments: Instruments = market.instruments
        self.registry = registry
        self.flusher = flusher
        self.fanout = Fanout(registry, flusher)
        self._registry_version = -1  # as of the last round: joins since then may need their own frame
        self.views = [BookView(p.pair_decimals, p.lot_decimals) for p in self.instruments.pairs]
        self._touched: dict[int, dict[tuple[BookSide, int], None]] = {}
        self._trades: dict[int, list[PublicTrade]] = {}
        self._changed_ns: dict[int, int] = {}  # pair -> oldest change time in the pending round
        self._bbo: dict[int, tuple[object, object]] = {}
        self._round_wanted = False
        self.stats = RoundStats()

    def attach(self) -> None:
        """Copy the market view's books and follow its changes (called once, before serving)."""
        for pm, view in zip(self.market.pairs, self.views, strict=True):
            for side in ("ask", "bid"):
                for price, qty in pm.book.top(side, BOOK_MIRROR_LEVELS):
                    view.apply(side, price, qty)
            self._bbo[pm.pair.index] = (pm.book.best("bid"), pm.book.best("ask"))
        self.market.level_listeners.append(self.on_levels)
        self.market.trade_listeners.append(self.on_trades)

    # -- inputs (called by MarketData after each committed batch; never await) -----------------
    def on_levels(self, pair: int, changes: list[tuple[BookSide, int, int]]) -> None:
        touched = self._touched.setdefault(pair, {})
        for side, price, _ in changes:
            touched[(side, price)] = None
        self._changed_ns.setdefault(pair, time.time_ns())  # the oldest change a round carries
        self._want_round()

    def on_trades(self, pair: int, trades: list[PublicTrade]) -> None:
        pending = self._trades.setdefault(pair, [])
        pending.extend(trades)
        del pending[: max(0, len(pending) - PENDING_TRADES_MAX)]
        self._want_round()

    def _want_round(self) -> None:
        if not self._round_wanted:
            self._round_wanted = True
            self.flusher.when_idle(self._round)

    # -- a round ---------------------------------------------------------------------------------
    def _round(self) -> None:
        self._round_wanted = False
        now = time.time_ns()
        touched, self._touched = self._touched, {}
        trades, self._trades = self._trades, {}
        changed, self._changed_ns = self._changed_ns, {}
        frames: Frames = []
        instead: dict[Subscription, Out | None] = {}
        for pair in sorted(touched.keys() | trades.keys()):
            if pair in touched:
                self._publish_book(pair, touched[pair], changed.get(pair, now), frames)
            pair_trades = trades.get(pair)
            if pair_trades:
                self._publish_trades(pair, pair_trades, now, frames, instead)
            self._publish_bbo(pair, now, frames)
        self._registry_version = self.registry.version
        fanout = self.fanout
        deliveries = fanout.deliver_each(frames, instead) if instead else fanout.send(frames)
        self.stats.frames_built += len(frames)
        self.stats.deliveries += deliveries
        self.stats.rounds += 1
        self.stats.last_round_ns = now

    def _publish_book(
        self, pair: int, touched: dict[tuple[BookSide, int], None], time_ns: int, frames: Frames
    ) -> None:
        source = self.market.pairs[pair].book
        view = self.views[pair]
        changes = [(side, price, source.qty(side, price)) for side, price in touched]
        depths = [d for d in BOOK_DEPTHS if self.registry.has(("book", pair, d))]
        if not depths:  # nobody to tell: keep the view current for the next snapshot, no checksum
            for side, price, qty in changes:
                view.apply(side, price, qty)
            return
        updates = view.apply_batch(changes, depths)
        pm = self.market.pairs[pair]
        for depth in depths:
            update = updates[depth]
            if update.empty:
                continue  # Kraken sends nothing when a window did not change
            frame = ws_market.book_frame(
                pm.pair, "update", update.asks, update.bids, update.checksum, time_ns
            )
            frames.append((("book", pair, depth), Out(frame)))

    def _publish_trades(
        self,
        pair: int,
        trades: list[PublicTrade],
        now: int,
        frames: Frames,
        instead: dict[Subscription, Out | None],
    ) -> None:
        pm = self.market.pairs[pair]
        trade_key = ("trade", pair)
        if self.registry.has(trade_key):
            frames.append((trade_key, Out(ws_market.trade_frame(pm.pair, "update", trades))))
            if self.registry.version != self._registry_version:  # someone joined since the last round
                first_id = trades[0].trade_id
                for sub in self.registry.members(trade_key):
                    if sub.after_trade_id >= first_id:  # its snapshot already had some of these
                        fresh = [t for t in trades if t.trade_id > sub.after_trade_id]
                        instead[sub] = Out(ws_market.trade_frame(pm.pair, "update", fresh)) if fresh else None
        if self.registry.has(("ticker", pair, "trades")):
            frames.append((("ticker", pair, "trades"), Out(ws_market.ticker_frame(pm, "update", now))))
        for interval in INTERVALS_MIN:
            ohlc_key = ("ohlc", pair, interval)
            if self.registry.has(ohlc_key):
                series = pm.candles[interval]
                since_s = series.start_of(trades[0].time_ns)
                candles = [c for c in series.view(since_s, now)[0] if c.start_s >= since_s]
                frames.append(
                    (ohlc_key, Out(ws_market.ohlc_frame(pm.pair, "update", candles, interval, now)))
                )

    def _publish_bbo(self, pair: int, now: int, frames: Frames) -> None:
        book = self.market.pairs[pair].book
        bbo = (book.best("bid"), book.best("ask"))
        if self._bbo.get(pair) == bbo:
            return
        self._bbo[pair] = bbo
        key = ("ticker", pair, "bbo")
        if self.registry.has(key):
            frames.append((key, Out(ws_market.ticker_frame(self.market.pairs[pair], "update", now))))

    # -- snapshots (called when a subscription starts) -------------------------------------------
    def book_snapshot(self, pair: int, depth: int) -> bytes:
        snap = self.views[pair].snapshot(depth)
        return ws_market.book_frame(
            self.instruments.pairs[pair], "snapshot", snap.asks, snap.bids, snap.checksum
        )

    def trade_snapshot(self, pair: int) -> tuple[bytes, int]:
        """The last 50 trades and the newest trade id (0 when the pair never traded)."""
        pm = self.market.pairs[pair]
        recent = pm.tape.recent(TRADES_WS_SNAPSHOT)
        newest = recent[-1].trade_id if recent else 0
        return ws_market.trade_frame(pm.pair, "snapshot", recent), newest

    def newest_trade_id(self, pair: int) -> int:
        recent = self.market.pairs[pair].tape.recent(1)
        return recent[-1].trade_id if recent else 0

    def ticker_snapshot(self, pair: int) -> bytes:
        return ws_market.ticker_frame(self.market.pairs[pair], "snapshot", time.time_ns())

    def ohlc_snapshot(self, pair: int, interval: int) -> bytes:
        return ws_market.ohlc_snapshot(self.market.pairs[pair], interval, time.time_ns())

    def instrument_frame(self, modes: Sequence[int], kind: str) -> bytes:
        return ws_market.instrument_frame(self.instruments, modes, kind)
