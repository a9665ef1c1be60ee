"""Canonical bytes and hashes: what gets signed and hashed is always RFC 8785 JSON."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import rfc8785

from civicledger.errors import EncodingError

JsonValue = Any
"""A JSON value made of dict/list/str/int/bool/None only; floats are refused (money is integer)."""


_MAX_SAFE_INT = 2**53 - 1
_fast_dumps = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


def canonical_json(value: JsonValue) -> bytes:
    """RFC 8785 (JCS) bytes of ``value``; refuses floats so no amount is ever fractional.

    Most values we sign or store hold only ints within 2**53, strings and ASCII keys; for those
    ``json.dumps(sort_keys=True)`` produces exactly the RFC 8785 bytes (same escapes, and
    code-point order equals UTF-16 order for ASCII keys) at a quarter of the cost. Anything else
    goes through ``rfc8785``. ``tests/crypto/test_encoding.py`` checks the two agree.
    """
    try:
        if _is_simple(value):
            return _fast_dumps(value).encode("utf-8")
        _refuse_floats(value)
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise EncodingError(f"value cannot be canonicalised: {e}") from e


def _refuse_floats(value: JsonValue) -> None:
    if isinstance(value, float):
        raise EncodingError("floats are not allowed in signed or stored data")
    if isinstance(value, dict):
        for item in value.values():
            _refuse_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_floats(item)


def _is_simple(value: JsonValue) -> bool:
    """True if the fast encoder gives RFC 8785 bytes; raises EncodingError on a float.

    Iterative, with scalars checked inline: this runs for every receipt and state write.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is float:
            raise EncodingError("floats are not allowed in signed or stored data")
        else:
            return False  # subclasses and other types: let rfc8785 decide
    return True


def parse_json(data: bytes) -> JsonValue:
    """Parse JSON bytes, refusing floats, NaN and duplicate keys."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, val in pairs:
            if key in out:
                raise EncodingError(f"duplicate JSON key {key!r}")
            out[key] = val
        return out

    def no_float(text: str) -> float:
        raise EncodingError(f"floats are not allowed: {text}")

    def no_constant(text: str) -> Any:
        raise EncodingError(f"invalid JSON constant {text}")

    try:
        return json.loads(
            data,
            object_pairs_hook=no_duplicates,
            parse_float=no_float,
            parse_constant=no_constant,
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise EncodingError(f"not valid JSON: {e}") from e


def load_trusted_json(data: bytes) -> JsonValue:
    """Parse JSON this node wrote itself (canonical state values): the fast C parser, no guards."""
    return json.loads(data)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in JOSE."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Decode unpadded base64url strictly: one string per byte sequence, nothing ignored.

    The standard decoder skips characters outside the alphabet and ignores non-zero trailing
    bits, so several strings would decode to one signature; we accept only the canonical one.
    """
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, TypeError) as e:
        raise EncodingError(f"not base64url: {str(text)[:40]!r}") from e
    if b64url(raw) != text:
        raise EncodingError(f"not canonical unpadded base64url: {text[:40]!r}")
    return raw


def from_hex(text: str, *, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except (ValueError, TypeError) as e:
        raise EncodingError(f"not hex: {str(text)[:40]!r}") from e
    if size is not None and len(raw) != size:
        raise EncodingError(f"expected {size} bytes of hex, got {len(raw)}")
    return raw
