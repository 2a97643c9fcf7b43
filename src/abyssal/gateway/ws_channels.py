"""``subscribe`` and ``unsubscribe``: channel parameters, one ack per symbol, then the snapshot.

The ack always precedes the snapshot: python-kraken-sdk's order book client drops its book
when it sees a ``subscribe`` ack for a symbol it already holds, so a snapshot sent first would
be thrown away and the next update would fail its checksum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from abyssal.core.instruments import Pair
from abyssal.gateway.auth import Permission
from abyssal.gateway.ws_codec import Json, Reply
from abyssal.gateway.ws_subscriptions import Subscription
from abyssal.gateway.ws_tokens import TokenError
from abyssal.marketdata.book_view import BOOK_DEPTHS
from abyssal.marketdata.candles import INTERVALS_MIN

if TYPE_CHECKING:
    from abyssal.gateway.ws_session import Session

METHODS: Final = frozenset({"subscribe", "unsubscribe", "ping"})
SYMBOLS_PER_REQUEST_MAX: Final = 50
SUBSCRIPTIONS_MAX: Final = 200  # (channel, symbol) pairs per connection, as Kraken's level3 limit
LEVEL3_DEPTHS: Final = (10, 100, 1000)
TICKER_TRIGGERS: Final = ("trades", "bbo")
FIELDS: Final[dict[str, frozenset[str]]] = {
    "book": frozenset({"channel", "symbol", "depth", "snapshot"}),
    "ticker": frozenset({"channel", "symbol", "event_trigger", "snapshot"}),
    "trade": frozenset({"channel", "symbol", "snapshot"}),
    "ohlc": frozenset({"channel", "symbol", "interval", "snapshot"}),
    "instrument": frozenset({"channel", "snapshot"}),
    "level3": frozenset({"channel", "symbol", "depth", "snapshot", "token"}),
    "executions": frozenset(
        {
            "channel",
            "token",
            "snap_orders",
            "snap_trades",
            "order_status",
            "ratecounter",
            "users",
            "rebased",
            "snapshot",
        }
    ),
    "balances": frozenset({"channel", "token", "snapshot", "users", "rebased"}),
    "heartbeat": frozenset({"channel"}),
    "status": frozenset({"channel"}),
}
SYMBOL_CHANNELS: Final = frozenset({"book", "ticker", "trade", "ohlc", "level3"})
PRIVATE_CHANNELS: Final = frozenset({"executions", "balances", "level3"})
NOT_SUBSCRIBED: Final = "Subscription Not Found"
TOO_MANY_SUBSCRIPTIONS: Final = "EGeneral:Too many subscriptions"


class ParamsError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _invalid(name: str) -> ParamsError:
    return ParamsError(f"EGeneral:Invalid arguments:{name}")


def _bool(params: Json, name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(name)
    return value


def _int_in(params: Json, name: str, allowed: tuple[int, ...], default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise _invalid(name)
    return value


def _symbols(params: Json) -> list[str]:
    value = params.get("symbol")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not 0 < len(value) <= SYMBOLS_PER_REQUEST_MAX:
        raise _invalid("symbol")
    if not all(isinstance(s, str) and 0 < len(s) <= 32 for s in value):
        raise _invalid("symbol")
    return list(dict.fromkeys(value))  # a symbol named twice is one subscription


def handle(session: Session, method: str, params: Json, reply: Reply) -> None:
    channel = params.get("channel")
    if not isinstance(channel, str) or channel not in FIELDS:
        session.send(reply.error("Subscription name invalid"))
        return
    for name in params:
        if name not in FIELDS[channel]:
            session.send(reply.error(f"Unsupported field: '{name[:64]}' for the given msg type: {method}"))
            return
    try:
        if method == "subscribe":
            _subscribe(session, channel, params, reply)
        else:
            _unsubscribe(session, channel, params, reply)
    except ParamsError as err:
        session.send(reply.error(err.text))
    except TokenError as err:
        session.send(reply.error(err.text))


def _pair(session: Session, symbol: str, reply: Reply) -> Pair | None:
    pair = session.service.instruments.pair(symbol)
    if pair is None or pair.symbol != symbol:  # v2 speaks BTC/USD only, not XBT/USD or XXBTZUSD
        session.send(reply.error(f"Currency pair not supported {symbol}", symbol=symbol))
        return None
    return pair


def _room(session: Session, channel: str, pair: int, reply: Reply, symbol: str | None) -> bool:
    if (channel, pair) in session.subs or session.subscription_count() < SUBSCRIPTIONS_MAX:
        return True
    session.send(reply.error(TOO_MANY_SUBSCRIPTIONS, symbol=symbol))
    return False


def _subscribe(session: Session, channel: str, params: Json, reply: Reply) -> None:
    snapshot_default = channel != "trade"  # Kraken: trade snapshots are opt-in
    snapshot = _bool(params, "snapshot", snapshot_default)
    base = Subscription(session.wire, channel, snapshot=snapshot)
    if channel == "book":
        base.depth = _int_in(params, "depth", BOOK_DEPTHS, 10)
    elif channel == "level3":
        base.depth = _int_in(params, "depth", LEVEL3_DEPTHS, 10)
    elif channel == "ohlc":
        base.interval = _int_in(params, "interval", INTERVALS_MIN, 1)
    elif channel == "ticker":
        trigger = params.get("event_trigger", "trades")
        if trigger not in TICKER_TRIGGERS:
            raise _invalid("event_trigger")
        base.trigger = str(trigger)
    if channel in PRIVATE_CHANNELS:
        needed = (
            Permission.QUERY_FUNDS
            if channel == "balances"
            else Permission.QUERY_OPEN | Permission.QUERY_CLOSED
        )
        base.token = str(params.get("token"))
        base.account = session.authorize(params.get("token"), needed).account
    if channel == "executions":
        base.snap_orders = _bool(params, "snap_orders", True)
        base.snap_trades = _bool(params, "snap_trades", False)
        base.order_status = _bool(params, "order_status", True)
        _bool(params, "ratecounter", False)
    if channel not in SYMBOL_CHANNELS:
        if _room(session, channel, -1, reply, None):
            session.service.start(session, base, _result(base, None, params, _max_rate(session)), reply)
        return
    for symbol in _symbols(params):
        pair = _pair(session, symbol, reply)
        if pair is None or not _room(session, channel, pair.index, reply, symbol):
            continue
        sub = Subscription(
            session.wire,
            channel,
            pair.index,
            base.depth,
            base.interval,
            base.trigger,
            snapshot,
            account=base.account,
            token=base.token,
        )
        session.service.start(session, sub, _result(sub, symbol, params, _max_rate(session)), reply)


def _max_rate(session: Session) -> int:
    """``maxratecount``: the threshold of the trading rate counter's configured tier."""
    return int(session.service.exchange.trading.tier.threshold)


def _result(sub: Subscription, symbol: str | None, params: Json, maxratecount: int) -> Json:
    """The effective options, echoed in the ack (python-kraken-sdk resubscribes with them)."""
    result: Json = {"channel": sub.channel}
    if sub.channel in ("book", "level3"):
        result["depth"] = sub.depth
    elif sub.channel == "ohlc":
        result["interval"] = sub.interval
    elif sub.channel == "ticker":
        result["event_trigger"] = sub.trigger
    elif sub.channel == "executions":
        result.update(snap_orders=sub.snap_orders, snap_trades=sub.snap_trades, order_status=sub.order_status)
        if params.get("ratecounter") is True:
            result["maxratecount"] = maxratecount
    if sub.channel not in ("heartbeat", "status", "executions"):
        result["snapshot"] = sub.snapshot
    if symbol is not None:
        result["symbol"] = symbol
    return result


def _unsubscribe(session: Session, channel: str, params: Json, reply: Reply) -> None:
    if channel not in SYMBOL_CHANNELS:
        sub = session.subs.get((channel, -1))
        if sub is None:
            session.send(reply.error(NOT_SUBSCRIBED))
            return
        session.drop(sub)
        session.send(reply.ok({"channel": channel}))
        return
    for symbol in _symbols(params):
        pair = _pair(session, symbol, reply)
        if pair is None:
            continue
        sub = session.subs.get((channel, pair.index))
        if sub is None:
            session.send(reply.error(NOT_SUBSCRIBED, symbol=symbol))
            continue
        session.drop(sub)
        result: Json = {"channel": channel}
        if channel in ("book", "level3"):
            result["depth"] = sub.depth
        elif channel == "ohlc":
            result["interval"] = sub.interval
        elif channel == "ticker":
            result["event_trigger"] = sub.trigger
        result["symbol"] = symbol
        session.send(reply.ok(result))
