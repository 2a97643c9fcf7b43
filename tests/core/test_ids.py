"""Kraken-style ids: fixed values (ids already handed out must never change) and exact round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abyssal.core import ids

KNOWN = [
    (1, "OV3Y6C-CFGJ5-UUQMMT", "LNZDQ6-J6RHI-K6TJSD", "TC7YKX-RUGQC-5PONIS"),
    (2, "OBEXT5-HQNTG-PS3FG4", "LSKN4A-LLFOP-G6PFN4", "TPUNWZ-5FPJ3-5X2FZX"),
    (255, "O4H72I-WMWY4-DESGS7", "L23FTC-WQIUU-UFKGXB", "TA3BQG-ZPVY7-B5X5BF"),
    (10**6, "OB3OFL-I5AW7-L43LSA", "LCJO4Y-AZUT5-GKKYZD", "TCRICT-EV36S-SVUXBQ"),
    (2**32 + 7, "OALMMU-6DHVG-IWQP35", "LFUZOO-HDM4P-KNOVRG", "TTQKVB-CSJCD-K3NLUA"),
    (2**64 - 1, "OWMPVZ-SZY4B-VPSGZ4", "L36DFE-VTP7J-VIVJ5G", "T3XZK4-32SAU-EME7EP"),
]


@pytest.mark.parametrize(("number", "order", "ledger", "amend"), KNOWN)
def test_ids_handed_out_stay_the_same(number: int, order: str, ledger: str, amend: str) -> None:
    assert (ids.order_id(number), ids.ledger_id(number), ids.amend_id(number)) == (order, ledger, amend)
    assert ids.trade_id(3, 1) == "TI5C6Z-YWD54-UEQSHQ"


def _reference(prefix: str, number: int) -> str:
    """The definition: the 80 mixed bits as 16 base-32 symbols, most significant first."""
    x = ids._mix(number, ids._KEYS[prefix])
    body = "".join(ids.ALPHABET[(x >> (5 * (15 - i))) & 31] for i in range(16))
    s = prefix + body
    return f"{s[:6]}-{s[6:11]}-{s[11:]}"


@given(st.integers(1, 2**64 - 1), st.sampled_from("OTLA"))
def test_encode_follows_the_definition_and_decodes_back(number: int, prefix: str) -> None:
    text = ids.encode(prefix, number)
    assert text == _reference(prefix, number)
    assert ids.decode(prefix, text) == number
    assert ids.decode("O" if prefix != "O" else "T", text) is None


@pytest.mark.parametrize("text", ["", "OV3Y6C-CFGJ5-UUQMM", "OV3Y6C_CFGJ5-UUQMMT", "OV3Y6C-CFGJ5-UUQMM1"])
def test_malformed_ids_decode_to_none(text: str) -> None:
    assert ids.decode("O", text) is None
