"""A key's HMAC keyed once (``ApiKey.mac``) verifies exactly as its raw secret does, every time."""

from __future__ import annotations

import base64

from tests.gateway.test_auth import FORM_BODY, FORM_NONCE, FORM_PATH, FORM_SIGN, SECRET

from abyssal.gateway import auth
from abyssal.gateway.auth import Permission, decode_secret, generate_key_pair, verify
from abyssal.gateway.keys import ApiKey


def test_a_keyed_state_signs_as_its_secret_and_never_for_another() -> None:
    published = ApiKey(1, "k", 1, decode_secret(SECRET), Permission.ALL, 0, None)
    for _ in range(3):  # each request copies the keyed state; nothing is consumed
        assert verify(published.mac, FORM_PATH, FORM_NONCE, FORM_BODY, FORM_SIGN)
    keys = [
        ApiKey(n, f"k{n}", n, decode_secret(generate_key_pair()[1]), Permission.ALL, 0, None)
        for n in range(6)
    ]
    for i, key in enumerate(keys):
        signed = base64.b64encode(auth._signature(key.secret, FORM_PATH, FORM_NONCE, FORM_BODY)).decode()
        assert auth._signature(key.mac, FORM_PATH, FORM_NONCE, FORM_BODY) == base64.b64decode(signed)
        assert verify(key.mac, FORM_PATH, FORM_NONCE, FORM_BODY, signed)
        assert not verify(keys[i - 1].mac, FORM_PATH, FORM_NONCE, FORM_BODY, signed)
        assert not verify(key.mac, FORM_PATH, FORM_NONCE + "1", FORM_BODY, signed)
    assert keys[0] == ApiKey(0, "k0", 0, keys[0].secret, Permission.ALL, 0, None)  # the state is not compared
