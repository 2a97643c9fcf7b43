"""Kraken-style identifiers (``OQCLML-BW3P3-BUCMWZ``) as a keyed bijection of sequence numbers.

The engine numbers orders and trades 1, 2, 3, ...; this module turns a number into an id
that looks like Kraken's and back again without any lookup table, so ids are deterministic
under replay and a malformed id is recognised without touching storage.
"""

from __future__ import annotations

from typing import Final

ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_INDEX: Final = {c: i for i, c in enumerate(ALPHABET)}
# every pair of symbols, indexed by the 10 bits they stand for: an id is 8 lookups, not 16 steps
_PAIRS: Final = tuple(a + b for a in ALPHABET for b in ALPHABET)
_BITS: Final = 80
_MASK: Final = (1 << _BITS) - 1
_HALF: Final = _BITS // 2
_HALF_MASK: Final = (1 << _HALF) - 1
_M1: Final = 0x9E3779B97F4A7C15F39D  # odd multipliers: invertible modulo 2**80
_M2: Final = 0xC2B2AE3D27D4EB4F1657
_M1_INV: Final = pow(_M1, -1, 1 << _BITS)
_M2_INV: Final = pow(_M2, -1, 1 << _BITS)
_KEYS: Final = {"O": 0x5A17C0FFEE, "T": 0x7EADE5EED5, "L": 0x1ED6E10001, "A": 0xA3E2D00017}


def _mix(n: int, key: int) -> int:
    x = ((n ^ key) * _M1) & _MASK
    x ^= x >> _HALF
    return (x * _M2) & _MASK


def _unmix(x: int, key: int) -> int:
    x = (x * _M2_INV) & _MASK
    x ^= x >> _HALF
    return ((x * _M1_INV) & _MASK) ^ key


def encode(prefix: str, number: int) -> str:
    """``encode("O", 1)`` -> ``"OXXXXX-XXXXX-XXXXXX"`` (prefix + 16 symbols in 6-5-6 groups).

    The 80 mixed bits, most significant first, 5 bits a symbol. They are read as two 40-bit
    halves, which are machine-size ints where the 80-bit number is not.
    """
    assert 0 < number < (1 << 64), "ids encode positive 64-bit numbers"
    x = _mix(number, _KEYS[prefix])
    high = x >> _HALF
    low = x & _HALF_MASK
    pairs = _PAIRS
    s = "".join(
        (
            prefix,
            pairs[high >> 30], pairs[(high >> 20) & 1023], pairs[(high >> 10) & 1023], pairs[high & 1023],
            pairs[low >> 30], pairs[(low >> 20) & 1023], pairs[(low >> 10) & 1023], pairs[low & 1023],
        )
    )  # fmt: skip
    return f"{s[:6]}-{s[6:11]}-{s[11:]}"


def decode(prefix: str, text: str) -> int | None:
    """The number behind an id of this kind, or None when the text is not one."""
    if len(text) != 19 or text[0] != prefix or text[6] != "-" or text[12] != "-":
        return None
    body = text[1:6] + text[7:12] + text[13:]
    x = 0
    for c in body:
        v = _INDEX.get(c)
        if v is None:
            return None
        x = (x << 5) | v
    n = _unmix(x, _KEYS[prefix])
    if not 0 < n < (1 << 64):
        return None
    return n


def order_id(order_no: int) -> str:
    return encode("O", order_no)


def trade_id(pair_index: int, trade_no: int) -> str:
    """Trade txids are unique across pairs: the pair index is folded into the number."""
    return encode("T", (trade_no << 8) | pair_index)


def ledger_id(entry_no: int) -> str:
    return encode("L", entry_no)


def amend_id(amend_no: int) -> str:
    return encode("A", amend_no).replace("A", "T", 1)


# Amend ids beside the engine's amend numbers (which count from 1, far below these bits), one of
# each per order: the order as entered (OrderAmends' "original" entry), and the answer to an amend
# that cancelled the order's rest (no amend is recorded for it)
ORIGINAL_AMEND_BIT = 1 << 63
CANCELLING_AMEND_BIT = 1 << 62
