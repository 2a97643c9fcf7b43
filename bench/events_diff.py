"""Compiled vs pure: the same random command streams must give byte-identical events and state.

    python bench/events_diff.py                          # build/mypyc/lib vs its own .py files
    python bench/events_diff.py --lib DIR --seeds 1-8 --commands 20000

The compiled build (``python build_mypyc.py``) holds a copy of the sources beside its .so files;
this runs each seed's stream once through that build and once through a pure copy of the very
same .py files (each in a fresh process), and compares SHA-256 digests of every encoded event
batch plus the final balances and books. The streams mix every command type: all order types
and flags, cancels by number / cl_ord_id / userref, amends, edits, cancel-all, dead man's
switches, withdrawals, mode changes and ticks over four pairs and five accounts. A command that
raises (or runs for 5 s) is recorded as a fault and ends that stream: both builds must agree.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAIRS = (0, 1, 2, 5)  # XBTUSD, ETHUSD, ETHXBT, XBTEUR in the default config
MID_TICKS = {0: 100_000, 1: 300_000, 2: 50_000, 5: 90_000}
LOTS = {0: 10_000, 1: 1_000_000, 2: 1_000_000, 5: 10_000}
ACCOUNTS = (1, 2, 3, 4, 5)
COMMAND_SECONDS_MAX = 5


class _Fault(Exception):
    pass


def _hang(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError(f"command ran {COMMAND_SECONDS_MAX} s")


def run_stream(seed: int, n_commands: int) -> str:
    """Apply one seed's stream to a fresh engine; the digest of all events and the final state."""
    from abyssal.config import load_config
    from abyssal.core import messages as m
    from abyssal.core.engine import Engine

    rng = random.Random(seed)
    ins = load_config(None).instruments
    eng = Engine(ins)
    digest = hashlib.sha256()
    ts = 1_700_000_000 * 10**9
    live: list[int] = []
    signal.signal(signal.SIGALRM, _hang)

    def emit(cmd: Any) -> None:
        signal.alarm(COMMAND_SECONDS_MAX)
        try:
            data = m.events_encoder.encode(eng.apply(cmd))
        except Exception as ex:  # a fault: both builds must raise the same, at the same command
            data = f"FAULT {type(ex).__name__}: {ex}".encode()
            digest.update(data)
            raise _Fault from None
        finally:
            signal.alarm(0)
        digest.update(len(data).to_bytes(4, "little") + data)

    def pick() -> Any:
        nonlocal live
        if not live or rng.random() < 0.02:
            live = list(eng.s.orders)
        for _ in range(5):
            o = eng.s.orders.get(rng.choice(live)) if live else None
            if o is not None:
                return o
        return None

    def place(i: int, acct: int, pair: int) -> Any:
        t = rng.choices(range(9), weights=[8, 40, 5, 4, 4, 4, 4, 3, 3])[0]
        side = rng.randint(0, 1)
        vol = LOTS[pair] * rng.randint(1, 60) if rng.random() > 0.03 else rng.randint(0, LOTS[pair])
        kind, price, pct = int(m.PriceKind.abs), MID_TICKS[pair] + rng.randint(-30, 30), -1
        if t in (7, 8):
            kind, price = int(m.PriceKind.plus), rng.randint(0, 50)
            pct = rng.randint(0, 2_000_000) if rng.random() < 0.3 else -1
        elif t >= 3 and rng.random() < 0.3:
            kind = int(rng.choice([m.PriceKind.plus, m.PriceKind.minus, m.PriceKind.hash]))
            price = rng.randint(0, 40)
            pct = rng.randint(0, 1_000_000) if rng.random() < 0.3 else -1
        kind2, price2 = int(m.PriceKind.abs), MID_TICKS[pair] + rng.randint(-40, 40)
        if t == 8 or (t in (5, 6) and rng.random() < 0.3):
            kind2, price2 = int(rng.choice([m.PriceKind.plus, m.PriceKind.minus])), rng.randint(0, 30)
        flags = 0
        for flag in (m.FLAG_POST, m.FLAG_FCIB, m.FLAG_FCIQ, m.FLAG_NOMPP, m.FLAG_VIQC):
            if rng.random() < 0.06:
                flags |= flag
        if t == 0 and side == 0 and rng.random() < 0.2:
            flags |= m.FLAG_VIQC
            vol = rng.randint(1, 10**9)
        tif = rng.choices([0, 1, 2], weights=[80, 12, 8])[0]
        return m.PlaceOrder(
            ts_ns=ts, account=acct, pair=pair, side=side, ordertype=t, volume_lots=vol,
            price_kind=kind, price_ticks=price, price_pct_ppm=pct,
            price2_kind=kind2, price2_ticks=price2, price2_pct_ppm=-1,
            display_lots=rng.randint(1, 60) * LOTS[pair] // 10 if t == 2 else 0, flags=flags, tif=tif,
            start_ns=ts + rng.randint(1, 10**10) if rng.random() < 0.03 else 0,
            expire_ns=ts + rng.randint(-5, 10**10) if tif == 2 else 0,
            userref=rng.randint(0, 3), cl_ord_id=f"c{i}" if rng.random() < 0.1 else "",
            stp=rng.randint(0, 2), validate=rng.random() < 0.03,
            price_text=str(price), price2_text=str(price2),
        )  # fmt: skip

    def step(i: int) -> None:
        nonlocal ts
        ts += rng.choice([1, 1000, 10**6, 10**9, 3600 * 10**9]) if rng.random() < 0.3 else 1000
        r = rng.random()
        acct = rng.choice(ACCOUNTS)
        pair = rng.choice(PAIRS)
        if r < 0.55:
            cmd = place(i, acct, pair)
            emit(m.PlaceBatch(ts_ns=ts, orders=[cmd, cmd]) if rng.random() < 0.04 else cmd)
        elif r < 0.75:
            nos = [rng.randint(1, max(1, eng.s.next_order_no)) for _ in range(rng.randint(1, 3))]
            o = pick() if rng.random() < 0.8 else None
            if o is not None:
                acct, nos = o.account, [o.order_no]
            emit(m.CancelOrders(
                ts_ns=ts, account=acct, order_nos=nos,
                cl_ord_ids=[f"c{rng.randint(0, i + 1)}"] if rng.random() < 0.1 else [],
                userrefs=[rng.randint(0, 3)] if rng.random() < 0.05 else [],
            ))  # fmt: skip
        elif r < 0.85 and (o := pick()) is not None:
            emit(m.AmendOrder(
                ts_ns=ts, account=o.account, order_no=o.order_no,
                order_qty_lots=o.volume_lots + rng.randint(-3, 3) * LOTS[o.pair] if rng.random() < .6 else -1,
                display_lots=rng.randint(1, 20) * 1000 if rng.random() < 0.2 else -1,
                limit_price_ticks=MID_TICKS[o.pair] + rng.randint(-30, 30) if rng.random() < 0.6 else -1,
                trigger_price_ticks=MID_TICKS[o.pair] + rng.randint(-30, 30) if rng.random() < 0.3 else -1,
                post_only=rng.random() < 0.2,
            ))  # fmt: skip
        elif r < 0.90 and (o := pick()) is not None:
            emit(m.EditOrder(
                ts_ns=ts, account=o.account, order_no=o.order_no,
                volume_lots=o.volume_lots + rng.randint(-3, 3) * LOTS[o.pair] if rng.random() < 0.6 else -1,
                price_ticks=MID_TICKS[o.pair] + rng.randint(-30, 30) if rng.random() < 0.6 else -1,
                post_only=rng.choice([-1, 0, 1]), validate=rng.random() < 0.1,
            ))  # fmt: skip
        elif r < 0.93:
            emit(m.CancelAll(ts_ns=ts, account=acct))
        elif r < 0.95:
            timeout_s = rng.choice([0, 1, 5, 60])
            emit(m.CancelAllAfter(ts_ns=ts, account=acct, key_no=rng.randint(0, 2), timeout_s=timeout_s))
        elif r < 0.965:
            asset = rng.randrange(len(ins.assets))
            amount = rng.choice([1, 10**6, 10**15])
            emit(m.Withdraw(ts_ns=ts, account=acct, asset=asset, amount_minor=amount, ref="w"))
        elif r < 0.975:
            mode = rng.choices([0, 1, 2, 3, 4], weights=[70, 5, 5, 5, 2])[0]
            emit(m.SetMode(ts_ns=ts, pair=rng.choice([-1, 0, 1, 9]), mode=mode))
        else:
            emit(m.Tick(ts_ns=ts))

    ended = "complete"
    try:
        for acct in ACCOUNTS:
            for asset in range(len(ins.assets)):
                ts += 1000
                amount = rng.choice([10**8, 10**10, 10**12, 10**14])
                emit(m.Deposit(ts_ns=ts, account=acct, asset=asset, amount_minor=amount, ref="d"))
        for i in range(n_commands):
            step(i)
    except _Fault:
        ended = "fault"
    s = eng.s
    accounts = sorted(s.accounts.items())
    state: list[object] = [(n, a.total, a.held, a.vol30, sorted(a.open)) for n, a in accounts]
    state += [(b.bids.depth(1_000), b.asks.depth(1_000)) for b in s.books]
    state.append((s.last_price, s.trade_no, s.next_order_no, s.amend_no))
    digest.update(repr(state).encode())
    return f"{digest.hexdigest()} {ended}"


def child(lib: Path, seed: int, n_commands: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(lib)}
    cmd = [sys.executable, __file__, "--emit", str(seed), "--commands", str(n_commands)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def which_build(lib: Path) -> str:
    code = "import abyssal.core.engine as e; print('compiled' if e.__file__.endswith('.so') else 'pure')"
    env = {**os.environ, "PYTHONPATH": str(lib)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return done.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", type=Path, default=ROOT / "build" / "mypyc" / "lib")
    ap.add_argument("--seeds", default="1-6", help="a range, e.g. 1-8")
    ap.add_argument("--commands", type=int, default=20_000)
    ap.add_argument("--emit", type=int, help=argparse.SUPPRESS)  # child mode: print one digest
    args = ap.parse_args()
    if args.emit is not None:
        print(run_stream(args.emit, args.commands))
        return 0
    if which_build(args.lib) != "compiled":
        print(f"events_diff: no compiled build in {args.lib} (run build_mypyc.py); nothing to compare")
        return 0
    first, _, last = args.seeds.partition("-")
    seeds = range(int(first), int(last or first) + 1)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        twin = Path(tmp)  # the same .py files, without the .so beside them
        skip = shutil.ignore_patterns("*.so", "__pycache__")
        shutil.copytree(args.lib / "abyssal", twin / "abyssal", ignore=skip)
        for seed in seeds:
            compiled, pure = child(args.lib, seed, args.commands), child(twin, seed, args.commands)
            same = compiled == pure
            failures += not same
            verdict = "same" if same else "DIFFERENT"
            print(f"seed {seed}: {verdict}  compiled {compiled[:16]}  pure {pure[:16]}  ({pure[65:]})")
    ok = len(seeds) - failures
    print(f"events_diff: {ok}/{len(seeds)} streams identical ({args.commands} commands each)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
