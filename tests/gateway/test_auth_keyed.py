"""The keyed HMAC table (``auth._keyed``): one state per secret, never another's, bounded."""

from __future__ import annotations

import base64

import pytest
from tests.gateway.test_auth import FORM_BODY, FORM_NONCE, FORM_PATH, FORM_SIGN, SECRET

from abyssal.gateway import auth
from abyssal.gateway.auth import decode_secret, generate_key_pair, verify


def test_keyed_states_stay_per_secret_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyed HMAC table never lets one secret's state sign for another, and stays bounded."""
    monkeypatch.setattr(auth, "KEYED_HMAC_MAX", 8)
    monkeypatch.setattr(auth, "_keyed", {})
    secrets = [decode_secret(generate_key_pair()[1]) for _ in range(20)]
    for round_ in range(2):  # the second round finds some states kept and some cleared
        for i, secret in enumerate(secrets):
            signed = base64.b64encode(auth._signature(secret, FORM_PATH, FORM_NONCE, FORM_BODY)).decode()
            assert verify(secret, FORM_PATH, FORM_NONCE, FORM_BODY, signed), (round_, i)
            assert not verify(secrets[i - 1], FORM_PATH, FORM_NONCE, FORM_BODY, signed), (round_, i)
            assert len(auth._keyed) <= 8
    assert verify(decode_secret(SECRET), FORM_PATH, FORM_NONCE, FORM_BODY, FORM_SIGN)  # the published vector
