"""Scanning a city's ledger for personal data: every value of every table and every file's bytes.

One scanner for every suite that promises "no personal data on the ledger", so each promise is
checked the same thorough way: the raw database files too (WAL, freed pages), and each secret in
the encodings it could hide in (UTF-8, JSON's ``\\uXXXX``, hex, UTF-16, and base64(url) runs, as
SD-JWT disclosures are).
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

from civicledger.city import CityDir

__all__ = ["every_value", "found", "ledger_blobs"]

_B64 = re.compile(rb"[A-Za-z0-9_\-+/]{16,}={0,2}")


def every_value(db_path: Path) -> Iterator[bytes]:
    """Each table's name and every non-null value of every row, as bytes."""
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables, f"no tables in {db_path}"
        for table in tables:
            yield table.encode()
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        yield value
                    elif value is not None:
                        yield str(value).encode()


def ledger_blobs(layout: CityDir) -> list[bytes]:
    """Every value of every table, plus every file of the data dir (db, -wal, -shm) as bytes."""
    databases = sorted(layout.data_path.rglob("*.db")) + sorted(layout.data_path.rglob("*.sqlite"))
    assert databases, f"no database under {layout.data_path}"
    values = [v for db in databases for v in every_value(db)]
    files = [p.read_bytes() for p in sorted(layout.data_path.rglob("*")) if p.is_file()]
    return values + files


def _decoded(blob: bytes) -> Iterator[bytes]:
    """``blob`` and whatever its base64(url) runs decode to (an SD-JWT hides claims that way)."""
    yield blob
    for run in _B64.findall(blob):
        text = run.rstrip(b"=").replace(b"+", b"-").replace(b"/", b"_")
        for shift in range(4):  # a run may start mid-token
            chunk = text[shift:]
            try:
                yield base64.urlsafe_b64decode(chunk + b"=" * (-len(chunk) % 4))
            except (binascii.Error, ValueError):
                continue


def _forms(secret: str) -> set[bytes]:
    return {
        secret.encode("utf-8"),
        secret.encode("unicode_escape"),  # \\uXXXX, as JSON with ensure_ascii writes Hangul
        secret.encode("utf-8").hex().encode(),
        secret.encode("utf-16-le"),
    }


def found(secrets: Iterable[str], blobs: Iterable[bytes]) -> list[str]:
    """The secrets that occur, in any of their encodings, in the blobs or their base64 runs."""
    haystack = b"\x00".join(part for blob in blobs for part in _decoded(blob))
    lowered = haystack.lower()
    return [s for s in secrets if any(f in haystack or f.lower() in lowered for f in _forms(s))]
