"""Snapshots: a consistent copy of a node's ledger database, and repairing a node from one.

A snapshot is trusted only after two checks: ``civic verify`` replays it from genesis (every
header, receipt, state row and log node), and its head header is final, i.e. a quorum of genesis
producers attested exactly that header hash (read from the attest stream, never from the peer
that sent the snapshot).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from civicledger.contracts.registry import ContractRegistry
from civicledger.errors import LedgerError, NodeError
from civicledger.ledger.block import SignedBlockHeader
from civicledger.node.chain import DB_NAME, Chain
from civicledger.node.cluster.attest import AttestationBook
from civicledger.node.verify import verify_chain

SNAPSHOT_PATH = "/api/v1/cluster/snapshot"
MEDIA_TYPE = "application/vnd.sqlite3"
HEIGHT_HEADER = "X-Civic-Height"
HASH_HEADER = "X-Civic-Header-Hash"
SEQ_HEADER = "X-Civic-Stream-Seq"


class NotFinal(LedgerError):  # noqa: N818  (reads as the verdict: "not final")
    reason = "snapshot_not_final"


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    height: int
    header_hash: str
    stream_cut_seq: int
    stream_through: int


def _info(path: Path) -> SnapshotInfo:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT header FROM blocks ORDER BY height DESC LIMIT 1").fetchone()
        if row is None:
            raise LedgerError("the snapshot has no blocks")
        head = SignedBlockHeader.model_validate_json(bytes(row[0]))
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.Error as e:
        raise LedgerError(f"not a ledger snapshot: {e}") from e
    finally:
        conn.close()
    return SnapshotInfo(
        head.header.height,
        head.header.hash().hex(),
        int(bytes(meta.get("stream_cut_seq", b"0"))),
        int(bytes(meta.get("stream_through", b"0"))),
    )


def make_snapshot(chain: Chain, dest: Path) -> SnapshotInfo:
    """Copy ``chain``'s database to ``dest`` (SQLite online backup: one consistent state)."""
    source = sqlite3.connect(f"file:{chain.path}?mode=ro", uri=True)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return _info(dest)


def fetch_snapshot(base_url: str, dest: Path, timeout: float = 120.0) -> None:
    """Download a peer's snapshot to ``dest``."""
    url = base_url.rstrip("/") + SNAPSHOT_PATH
    try:
        with httpx.stream("GET", url, timeout=timeout) as response:
            if response.status_code != 200:
                raise NodeError(f"{url} answered {response.status_code}")
            with dest.open("wb") as out:
                for part in response.iter_bytes():
                    out.write(part)
    except httpx.HTTPError as e:
        raise NodeError(f"cannot fetch a snapshot from {url}: {e}") from e


def verify_snapshot(
    path: Path, book: AttestationBook, registry: ContractRegistry | None = None
) -> SnapshotInfo:
    """Replay the snapshot from genesis and check its head is final; raise LedgerError."""
    info = _info(path)
    if not book.is_final(info.height, info.header_hash):
        raise NotFinal(
            f"the snapshot's head (block {info.height}, {info.header_hash[:16]}…) is not "
            f"attested by a quorum of {book.quorum}"
        )
    with tempfile.TemporaryDirectory(prefix="civic-snapshot-") as scratch:
        copy = Path(scratch) / DB_NAME
        copy.write_bytes(path.read_bytes())
        report = verify_chain(Path(scratch), registry=registry)
    if report.height != info.height:
        raise LedgerError("the snapshot's head changed while it was verified")
    return info


def install_snapshot(data_dir: Path, snapshot: Path) -> None:
    """Replace the node's database with a verified snapshot (the node must not be running)."""
    target = Path(data_dir) / DB_NAME
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(target) + suffix)
    os.replace(snapshot, target)


__all__ = [
    "HASH_HEADER",
    "HEIGHT_HEADER",
    "MEDIA_TYPE",
    "SEQ_HEADER",
    "SNAPSHOT_PATH",
    "NotFinal",
    "SnapshotInfo",
    "fetch_snapshot",
    "install_snapshot",
    "make_snapshot",
    "verify_snapshot",
]
