"""Market data views fed by committed batches: L2 book mirror, trade tape, candles, ticker, spread.

Runs on the event loop after each batch commits, so what it shows is always durable.
The L2 mirror follows the engine's top ``BOOK_MIRROR_LEVELS`` per side; WebSocket book
updates come from comparing that mirror with the engine's levels at the prices a batch touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from abyssal.adapters.sqlite import SqliteStore
from abyssal.core.book import BookSide as EngineSide
from abyssal.core.engine import Engine
from abyssal.core.instruments import Asset, Instruments, Pair
from abyssal.core.messages import (
    Command,
    Event,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderClosed,
    OrderStarted,
    OrderTriggered,
)
from abyssal.marketdata.book_view import BookSide as BookSideName
from abyssal.marketdata.book_view import BookView
from abyssal.marketdata.candles import Candles
from abyssal.marketdata.ticker import Ticker
from abyssal.marketdata.trades_tape import PublicTrade, SpreadTape, TakerSide, TradesTape

BOOK_MIRROR_LEVELS = 1000  # the deepest WebSocket book subscription
TRADES_LOADED_MAX = 50_000  # per pair, read back on start for candles and the ticker

TradeListener = Callable[[int, list[PublicTrade]], None]
# (pair index, [(side, price_ticks, qty_lots)]): every level of the mirror that changed in a
# batch, qty 0 for levels that left it; WebSocket publishers conflate these (gateway/ws_publisher)
LevelListener = Callable[[int, list[tuple[BookSideName, int, int]]], None]


class PairMarket:
    __slots__ = ("book", "candles", "pair", "spread", "tape", "ticker")

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.book = BookView(pair.pair_decimals, pair.lot_decimals)
        self.tape = TradesTape()
        self.candles = Candles()
        self.ticker = Ticker()
        self.spread = SpreadTape()

    def record(self, trade: PublicTrade) -> None:
        self.tape.record(trade)
        self.candles.add_trade(trade.time_ns, trade.price_ticks, trade.volume_lots)
        self.ticker.record_trade(trade.time_ns, trade.price_ticks, trade.volume_lots)


class MarketData:
    def __init__(self, instruments: Instruments) -> None:
        self.instruments = instruments
        self.pairs = [PairMarket(p) for p in instruments.pairs]
        self.engine: Engine | None = None
        self.trade_listeners: list[TradeListener] = []
        self.level_listeners: list[LevelListener] = []

    def load(self, store: SqliteStore) -> None:
        """Read recent public trades back (blocking; before serving)."""
        for pm in self.pairs:
            rows: list[tuple[int, int, int, int, int, int]] = (
                store.conn()
                .execute(
                    "SELECT trade_no, ts_ns, price_ticks, volume_lots, taker_side, taker_market FROM trades "
                    "WHERE pair = ? ORDER BY trade_no DESC LIMIT ?",
                    (pm.pair.index, TRADES_LOADED_MAX),
                )
                .fetchall()
            )
            for no, ts, price, vol, side, market in reversed(rows):
                pm.record(PublicTrade(int(no), int(ts), int(price), int(vol), "b" if side == 0 else "s",
                                      "m" if market else "l"))  # fmt: skip

    def attach(self, engine: Engine) -> None:
        """Mirror the engine's books as they are now (after recovery)."""
        self.engine = engine
        for pm in self.pairs:
            self._sync_book(pm, time.time_ns())

    def on_batch(self, results: list[tuple[int, Command, list[Event]]]) -> None:
        touched: dict[int, set[int] | None] = {}  # pair -> prices whose levels may have changed
        trades: dict[int, list[PublicTrade]] = {}
        for _, _, events in results:
            for e in events:
                pair = getattr(e, "pair", -1)
                if pair < 0:
                    if isinstance(e, OrderTriggered | OrderStarted):
                        self._touch_order(touched, e.order_no)
                    continue
                prices = touched.setdefault(pair, set())
                if isinstance(e, Fill):
                    taker: TakerSide = "b" if e.taker_side == 0 else "s"
                    t = PublicTrade(e.trade_no, e.ts_ns, e.price_ticks, e.volume_lots, taker,
                                    "m" if e.taker_market else "l")  # fmt: skip
                    self.pairs[e.pair].record(t)
                    trades.setdefault(e.pair, []).append(t)
                if prices is None:
                    continue
                if isinstance(e, OrderAmended):  # the level it left is not in the event
                    touched[pair] = None
                elif isinstance(e, OrderAccepted | Fill):
                    prices.add(e.price_ticks)
                elif isinstance(e, OrderClosed):
                    prices.add(e.limit_ticks)
        now = time.time_ns()
        for index in sorted(touched):
            pm = self.pairs[index]
            self._sync_book(pm, now, touched[index])
        for index, batch in trades.items():
            for trade_listener in self.trade_listeners:
                trade_listener(index, batch)

    def _touch_order(self, touched: dict[int, set[int] | None], order_no: int) -> None:
        """The level of an order that a trigger or its start time put in the book. Those events
        carry no pair, so the engine's order tells it. The engine may be a batch ahead (it applies
        the next batch while this one commits): an order already closed there has its close event
        in that batch, which touches the level in its turn."""
        assert self.engine is not None
        order = self.engine.s.orders.get(order_no)
        if order is None or not order.resting:
            return
        prices = touched.setdefault(order.pair, set())
        if prices is not None:
            prices.add(order.limit_ticks)

    def _sync_book(self, pm: PairMarket, now_ns: int, prices: set[int] | None = None) -> None:
        """Bring the mirror to the engine's top levels; ``prices`` limits the work to those levels.

        The mirror serves Depth, Spread and the level listeners (the WebSocket publisher keeps its
        own view with window rows and checksums, ADR 0004), so it only takes the changed levels:
        no update rows and no checksum per batch.

        Looking only at touched prices is exact while neither the engine's side nor the mirror
        fills the whole window (no level can enter or leave it untouched); otherwise, and when
        ``prices`` is None, the whole window is compared.
        """
        assert self.engine is not None
        book = self.engine.s.books[pm.pair.index]
        changes: list[tuple[BookSideName, int, int]] = []
        sides: tuple[tuple[BookSideName, EngineSide], ...] = (("bid", book.bids), ("ask", book.asks))
        for side_name, side in sides:
            window_full = (
                len(side.prices) >= BOOK_MIRROR_LEVELS or pm.book.level_count(side_name) >= BOOK_MIRROR_LEVELS
            )
            if prices is not None and not window_full:
                for price in sorted(prices):
                    level = side.levels.get(price)
                    qty = level.visible_lots if level is not None else 0
                    if pm.book.qty(side_name, price) != qty:
                        changes.append((side_name, price, qty))
                continue
            new = dict(side.depth(BOOK_MIRROR_LEVELS))
            old = dict(pm.book.top(side_name, BOOK_MIRROR_LEVELS))
            for price in old:
                if price not in new:
                    changes.append((side_name, price, 0))
            for price, qty in new.items():
                if old.get(price) != qty:
                    changes.append((side_name, price, qty))
        if not changes:
            return
        for side_name, price, qty in changes:
            pm.book.apply(side_name, price, qty, now_ns)
        # levels pushed out of the engine's top BOOK_MIRROR_LEVELS are removed by the diff above
        assert pm.book.level_count("bid") <= BOOK_MIRROR_LEVELS
        assert pm.book.level_count("ask") <= BOOK_MIRROR_LEVELS
        for level_listener in self.level_listeners:
            level_listener(pm.pair.index, changes)
        bid, ask = pm.book.best("bid"), pm.book.best("ask")
        pm.spread.record(now_ns, bid[0] if bid else None, ask[0] if ask else None)

    def last_price(self, pair: Pair) -> int:
        assert self.engine is not None
        return int(self.engine.s.last_price[pair.index])

    def value_in(self, asset: Asset, amount: Decimal, target: Asset) -> Decimal:
        """Value an amount in another asset through the last trade of a direct pair (0 when none)."""
        if asset.index == target.index:
            return amount
        for p in self.instruments.pairs:
            last = self.last_price(p)
            if not last:
                continue
            price = Decimal(last).scaleb(-p.pair_decimals)
            if p.base.index == asset.index and p.quote.index == target.index:
                return amount * price
            if p.quote.index == asset.index and p.base.index == target.index:
                return amount / price
        return Decimal(0)
