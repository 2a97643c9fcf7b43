"""Request bodies and query strings to mappings: form (with nested ``a[b]`` keys) or JSON, strictly.

Body kind by media type (``application/json`` or ``application/x-www-form-urlencoded``, parameters
such as ``charset`` ignored), else JSON when the body starts with ``{``; bodies must be UTF-8. A
repeated key is refused, so a signed field can never be read two ways. Field readers: params.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl

from abyssal.gateway.params import INVALID_ARGUMENTS, ParamError, invalid

FIELDS_MAX = 512  # form fields per body or query string
KEY_DEPTH_MAX = 4  # segments in a nested form key: orders[0][close][price] has 4
QUERY_BYTES_MAX = 8_192

_FORM_MEDIA = "application/x-www-form-urlencoded"
_JSON_MEDIA = "application/json"
_NESTED_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]+\])+)")
_SEGMENT = re.compile(r"\[([^\[\]]+)\]")


def parse_body(body: bytes, content_type: str | None, *, body_bytes_max: int) -> dict[str, object]:
    """A private call's body as a mapping; anything malformed is ``EGeneral:Invalid arguments``."""
    assert body_bytes_max > 0, "the caller names the body limit"
    if len(body) > body_bytes_max:
        raise ParamError(INVALID_ARGUMENTS)
    if not body:
        return {}
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == _JSON_MEDIA or (media != _FORM_MEDIA and body.lstrip(b" \t\r\n")[:1] == b"{"):
        return _parse_json(body)
    return _parse_form(body)


def parse_query(query_string: bytes, *, query_bytes_max: int = QUERY_BYTES_MAX) -> dict[str, object]:
    """A public GET's query string (without ``?``), with the same rules as a form body."""
    if len(query_string) > query_bytes_max:
        raise ParamError(INVALID_ARGUMENTS)
    return _parse_form(query_string)


def _parse_json(body: bytes) -> dict[str, object]:
    try:
        text = body.decode("utf-8")
        value = json.loads(text, object_pairs_hook=_unique_object, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ParamError(INVALID_ARGUMENTS) from None
    if not isinstance(value, dict):
        raise ParamError(INVALID_ARGUMENTS)
    return value


def _unique_object(pairs: Iterable[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise invalid(key)
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"JSON constant {name} is not accepted")


def _parse_form(raw: bytes) -> dict[str, object]:
    try:
        text = raw.decode("utf-8")
        pairs = _plain_pairs(text)
        if pairs is None:
            pairs = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=FIELDS_MAX)
    except ValueError:  # bad UTF-8, raw or percent-encoded, or too many fields
        raise ParamError(INVALID_ARGUMENTS) from None
    if not any("[" in key for key, _ in pairs):  # the usual flat body: no nesting to resolve
        return _unique_object(pairs)
    root: dict[str, object] = {}
    for key, value in pairs:
        _insert(root, _key_path(key), value)
    return {key: _listify(value) for key, value in root.items()}


def _plain_pairs(text: str) -> list[tuple[str, str]] | None:
    """``parse_qsl``'s answer for a body with nothing to unescape (``%`` or ``+``); else None."""
    if "%" in text or "+" in text:
        return None
    if text.count("&") >= FIELDS_MAX:  # parse_qsl's count: separators + 1, empty fields included
        raise ValueError("too many fields")
    return [(key, value) for key, _, value in (p.partition("=") for p in text.split("&") if p)]


def _key_path(key: str) -> list[str]:
    match = _NESTED_KEY.fullmatch(key)
    if match is None:
        return [key]  # plain key, or brackets we do not understand: kept literally
    path = [match[1], *_SEGMENT.findall(match[2])]
    if len(path) > KEY_DEPTH_MAX:
        raise invalid(match[1])
    return path


def _insert(root: dict[str, object], path: list[str], value: str) -> None:
    node = root
    for segment in path[:-1]:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):  # "close=x" and "close[price]=1" in one body
            raise invalid(path[0])
        node = child
    if path[-1] in node:  # repeated key, or a leaf where a nested key already lives
        raise invalid(path[0])
    node[path[-1]] = value


def _listify(value: object) -> object:
    if not isinstance(value, dict):
        return value
    items = {key: _listify(child) for key, child in value.items()}
    if items.keys() == {str(i) for i in range(len(items))}:
        return [items[str(i)] for i in range(len(items))]
    return items
