"""A one-line-per-command language for engine scenario tables, on the XBTUSD market.

    2 sell limit 1 @ 100.0                   account 2 sells 1 XBT at 100.0 USD
    1 buy market 0.5 nompp                   flags: post fcib fciq nompp viqc ioc validate
    1 buy iceberg 3 @ 100.0 display 1        an iceberg showing 1 at a time
    1 sell stop-loss 1 @ 95.0                trigger price; relative prices: +5.0 -5.0 #5.0 +2%
    1 sell stop-loss-limit 1 @ 95.0 limit 94.5
    1 buy limit 1 @ 99.0 gtd=5 start=2 cl=a ref=7 stp=oldest   (times in seconds after T0)
    1 cancel #3 cl=a ref=7 | 1 cancel-all | 1 dms 10
    1 amend #3 qty=0.5 price=99.0 trigger=95.0 display=0.1 post   (prices may be relative: -1.0 +2%)
    1 edit #3 qty=2 price=98.0 post=1 ref=9 validate
    1 deposit USD 100 | 1 withdraw XBT 1
    tick 5                                   time moves to T0 + 5 s
    mode XBTUSD cancel_only | mode system online

Every command runs at the next nanosecond unless a ``tick`` moved time further.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.core.enginekit import (
    INSTRUMENTS,
    SECOND_NS,
    T0_NS,
    USD,
    XBT,
    XBTUSD,
    Harness,
    lots,
    of_type,
    px,
)

from abyssal.core.instruments import Pair
from abyssal.core.messages import (
    FLAG_FCIB,
    FLAG_FCIQ,
    FLAG_NOMPP,
    FLAG_POST,
    FLAG_VIQC,
    ORDER_TYPE_BY_NAME,
    AmendOrder,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    CloseReason,
    Command,
    Deposit,
    EditOrder,
    Event,
    Fill,
    Mode,
    OrderClosed,
    OrderStatus,
    PlaceOrder,
    PriceKind,
    Reject,
    Rejected,
    SetMode,
    Side,
    Stp,
    Tick,
    TimeInForce,
    Withdraw,
)

FLAGS = {"post": FLAG_POST, "fcib": FLAG_FCIB, "fciq": FLAG_FCIQ, "nompp": FLAG_NOMPP, "viqc": FLAG_VIQC}
KINDS = {"+": PriceKind.plus, "-": PriceKind.minus, "#": PriceKind.hash}
STPS = {"newest": Stp.cancel_newest, "oldest": Stp.cancel_oldest, "both": Stp.cancel_both}


def seconds_ns(text: str) -> int:
    return T0_NS + int(Decimal(text) * SECOND_NS)


def price_spec(text: str, pair: Pair = XBTUSD) -> tuple[int, int, int]:
    """(kind, ticks, pct_ppm) of a price as Kraken writes it: 100.0, +5.0, -2%, #1.5."""
    kind = KINDS.get(text[0], PriceKind.abs)
    body = text[1:] if kind != PriceKind.abs else text
    if body.endswith("%"):
        return int(kind), 0, int(Decimal(body[:-1]) * 1_000_000)  # millionths of a percent
    return int(kind), px(body, pair), -1


def _kv(words: list[str]) -> tuple[dict[str, str], set[str]]:
    pairs = dict(w.split("=", 1) for w in words if "=" in w)
    return pairs, {w for w in words if "=" not in w}


def _order_no(word: str) -> int:
    assert word.startswith("#"), word
    return int(word[1:])


def parse(line: str, ts_ns: int) -> Command:
    words = line.split()
    if words[0] == "tick":
        return Tick(seconds_ns(words[1]) if len(words) > 1 else ts_ns)
    if words[0] == "mode":
        pair = -1 if words[1] == "system" else INSTRUMENTS.pairs.index(_pair(words[1]))
        return SetMode(ts_ns, pair, int(Mode[words[2]]))
    account, verb, rest = int(words[0]), words[1], words[2:]
    if verb in ("buy", "sell"):
        return _place(account, verb, rest, ts_ns)
    if verb == "cancel":
        kv, plain = _kv(rest)
        return CancelOrders(
            ts_ns,
            account,
            order_nos=sorted(_order_no(w) for w in plain),
            cl_ord_ids=[kv["cl"]] if "cl" in kv else [],
            userrefs=[int(kv["ref"])] if "ref" in kv else [],
        )
    if verb == "cancel-all":
        return CancelAll(ts_ns, account)
    if verb == "dms":
        return CancelAllAfter(ts_ns, account, 0, int(rest[0]))
    if verb == "amend":
        return _amend(account, rest, ts_ns)
    if verb == "edit":
        return _edit(account, rest, ts_ns)
    if verb in ("deposit", "withdraw"):
        asset = INSTRUMENTS.asset(rest[0])
        assert asset is not None
        amount = int(Decimal(rest[1]).scaleb(asset.decimals))
        kind = Deposit if verb == "deposit" else Withdraw
        return kind(ts_ns, account, asset.index, amount, "ref")
    raise AssertionError(f"cannot parse {line!r}")


def _pair(name: str) -> Pair:
    pair = INSTRUMENTS.pair(name)
    assert pair is not None, name
    return pair


def _place(account: int, verb: str, rest: list[str], ts_ns: int) -> PlaceOrder:
    ordertype = ORDER_TYPE_BY_NAME[rest[0]]
    kv, plain = _kv(rest[2:])
    pair = _pair(kv.get("pair", "XBTUSD"))
    flags = sum(FLAGS[w] for w in plain if w in FLAGS)
    viqc = bool(flags & FLAG_VIQC)
    volume = int(Decimal(rest[1]).scaleb(USD.decimals)) if viqc else lots(rest[1], pair)
    args: dict[str, Any] = {}
    words = rest[2:]
    for i, w in enumerate(words):
        if w == "@":
            kind, ticks, pct = price_spec(words[i + 1], pair)
            args.update(price_kind=kind, price_ticks=ticks, price_pct_ppm=pct)
        elif w == "limit":
            kind, ticks, pct = price_spec(words[i + 1], pair)
            args.update(price2_kind=kind, price2_ticks=ticks, price2_pct_ppm=pct)
        elif w == "display":
            args["display_lots"] = lots(words[i + 1], pair)
    if "ioc" in plain:
        args["tif"] = int(TimeInForce.ioc)
    if "gtd" in kv:
        args.update(tif=int(TimeInForce.gtd), expire_ns=seconds_ns(kv["gtd"]))
    if "start" in kv:
        args["start_ns"] = seconds_ns(kv["start"])
    if "stp" in kv:
        args["stp"] = int(STPS[kv["stp"]])
    return PlaceOrder(
        ts_ns=ts_ns,
        account=account,
        pair=pair.index,
        side=int(Side.buy if verb == "buy" else Side.sell),
        ordertype=int(ordertype),
        volume_lots=volume,
        flags=flags,
        userref=int(kv.get("ref", "0")),
        cl_ord_id=kv.get("cl", ""),
        validate="validate" in plain,
        **args,
    )


def _amend(account: int, rest: list[str], ts_ns: int) -> AmendOrder:
    kv, plain = _kv(rest)
    target = [w for w in plain if w.startswith("#")]
    prices: dict[str, int] = {}
    for word, name in (("price", "limit_price"), ("trigger", "trigger_price")):
        if word in kv:  # absolute, or relative as for placing: -2.0 +0.5% #1.0
            kind, ticks, pct = price_spec(kv[word])
            prices.update({f"{name}_ticks": ticks, f"{name}_kind": kind, f"{name}_pct_ppm": pct})
    return AmendOrder(
        ts_ns,
        account,
        order_no=_order_no(target[0]) if target else 0,
        cl_ord_id=kv.get("cl", ""),
        order_qty_lots=lots(kv["qty"]) if "qty" in kv else -1,
        display_lots=lots(kv["display"]) if "display" in kv else -1,
        post_only="post" in plain,
        **prices,
    )


def _edit(account: int, rest: list[str], ts_ns: int) -> EditOrder:
    kv, plain = _kv(rest)
    return EditOrder(
        ts_ns,
        account,
        _order_no(rest[0]),
        volume_lots=lots(kv["qty"]) if "qty" in kv else -1,
        display_lots=lots(kv["display"]) if "display" in kv else -1,
        price_ticks=px(kv["price"]) if "price" in kv else -1,
        post_only=int(kv.get("post", "-1")),
        userref=int(kv.get("ref", "-1")),
        validate="validate" in plain,
    )


# ------------------------------------------------------------------ running and reading back
def run(h: Harness, script: str) -> list[Event]:
    """Apply each line of a script; returns every event (the harness checks invariants)."""
    out: list[Event] = []
    for raw in script.strip().splitlines():
        line = raw.split("//")[0].strip()
        if not line:
            continue
        ts = h.ts_ns + 1
        command = parse(line, ts)
        out.extend(h.apply(command))
    return out


def _num(ticks: int, decimals: int) -> str:
    text = format(Decimal(ticks).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def book_text(h: Harness, pair: Pair = XBTUSD) -> tuple[list[str], list[str]]:
    """Bids and asks as "price x qty" from the touch outwards: (["99 x 1"], ["101 x 0.5"])."""
    bids, asks = h.book(pair)
    return (
        [f"{_num(p, pair.pair_decimals)} x {_num(q, pair.lot_decimals)}" for p, q in bids],
        [f"{_num(p, pair.pair_decimals)} x {_num(q, pair.lot_decimals)}" for p, q in asks],
    )


def trades_text(events: list[Event], pair: Pair = XBTUSD) -> list[str]:
    """Each fill as "qty @ price #maker<-#taker"."""
    return [
        f"{_num(f.volume_lots, pair.lot_decimals)} @ {_num(f.price_ticks, pair.pair_decimals)}"
        f" #{f.maker_order}<-#{f.taker_order}"
        for f in of_type(events, Fill)
    ]


def closes_text(events: list[Event]) -> dict[int, str]:
    """order_no -> "status:reason" (e.g. "canceled:post_only")."""
    return {
        c.order_no: f"{OrderStatus(c.status).name}:{CloseReason(c.reason).name}"
        for c in of_type(events, OrderClosed)
    }


def rejects_text(events: list[Event]) -> list[str]:
    return [Reject(r.reason).name for r in of_type(events, Rejected)]


def money_text(h: Harness, account: int) -> str:
    """ "USD total/held XBT total/held" of one account."""
    usd_t, usd_h = h.balance(account, USD)
    xbt_t, xbt_h = h.balance(account, XBT)
    return (
        f"USD {_num(usd_t, USD.decimals)}/{_num(usd_h, USD.decimals)} "
        f"XBT {_num(xbt_t, XBT.decimals)}/{_num(xbt_h, XBT.decimals)}"
    )


@dataclass
class Scenario:
    """Commands in; book, trades, closes, rejects and open orders out."""

    name: str
    script: str
    trades: list[str] = field(default_factory=list)
    bids: list[str] = field(default_factory=list)
    asks: list[str] = field(default_factory=list)
    closes: dict[int, str] = field(default_factory=dict)
    rejects: list[str] = field(default_factory=list)
    open: list[int] | None = None  # live order numbers (resting, pending or waiting), if checked
    funded: tuple[int, ...] = (1, 2, 3, 4)

    def play(self) -> tuple[Harness, list[Event]]:
        h = Harness()
        for account in self.funded:
            h.fund(account)
        return h, run(h, self.script)

    def check(self) -> None:
        h, events = self.play()
        got = trades_text(events)
        assert got == self.trades, f"trades: {got} != {self.trades}"
        book = book_text(h)
        assert book == (self.bids, self.asks), f"book: {book} != {(self.bids, self.asks)}"
        closes = closes_text(events)
        assert closes == self.closes, f"closes: {closes} != {self.closes}"
        rejects = rejects_text(events)
        assert rejects == self.rejects, f"rejects: {rejects} != {self.rejects}"
        if self.open is not None:
            assert sorted(h.s.orders) == self.open, f"open: {sorted(h.s.orders)} != {self.open}"


__all__ = [
    "Scenario",
    "book_text",
    "closes_text",
    "money_text",
    "parse",
    "price_spec",
    "rejects_text",
    "run",
    "seconds_ns",
    "trades_text",
]
