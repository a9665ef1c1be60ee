"""Jinja2 filters for ledger values: shortened hashes and keys, block times, JSON.

All return plain strings, so autoescaping still applies to whatever they are given.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FILTERS",
    "TESTS",
    "has_date",
    "iso_time",
    "pretty_json",
    "short_did",
    "short_hash",
    "utc_time",
]

_HASH_SHOWN = 12
_DID_HEAD = len("did:key:z6Mk") + 4
_DID_TAIL = 6


def short_hash(value: str) -> str:
    """The first hex digits of a hash, enough to tell blocks apart at a glance."""
    return value if len(value) <= _HASH_SHOWN else value[:_HASH_SHOWN] + "…"


def short_did(value: str) -> str:
    """``did:key:z6MkAbCd…xyz123``: the start and the end of a key, as people compare them."""
    if len(value) <= _DID_HEAD + _DID_TAIL + 1:
        return value
    return f"{value[:_DID_HEAD]}…{value[-_DID_TAIL:]}"


_LAST_DATE_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: later times (``expires_at`` may be 2**53 - 1, "never") have no date."""


def has_date(ms: int) -> bool:
    """Whether ``ms`` is a time Python and browsers can show as a date."""
    return 0 <= ms <= _LAST_DATE_MS


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def utc_time(ms: int) -> str:
    """Block time as UTC text; the browser rewrites it in the reader's zone and language."""
    return _moment(ms).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(ms: int) -> str:
    """Block time for ``<time datetime=...>``, to the millisecond."""
    return _moment(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pretty_json(value: Any) -> str:
    """Indented JSON with sorted keys and characters as they are (the page is UTF-8)."""
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


TESTS: Mapping[str, Callable[[int], bool]] = {"dated": has_date}
"""Jinja2 tests: ``{% if ms is dated %}``."""

FILTERS: Mapping[str, Callable[..., str]] = {
    "short_hash": short_hash,
    "short_did": short_did,
    "utc_time": utc_time,
    "iso_time": iso_time,
    "pretty_json": pretty_json,
}
