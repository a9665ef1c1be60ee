"""Attestations: every node signs the header of each block it commits; finality and divergence.

A height is **final** when ``quorum`` distinct genesis producers attested the same header hash.
An attestation whose header hash differs from this node's own header at that height is a
**divergence**, recorded and reported at once. If ``quorum`` OTHER producers agree on a hash
that is not ours, this node is the faulty one (``diverged``): it stops committing and refuses to
serve until repaired. Otherwise the dissenting peer is listed as faulty.

Invariants:
- the book stores at most one attestation per (height, node): the first in stream order; a
  second, different one from the same node at the same height is equivocation, reported;
- only attestations validly signed (purpose ``attest``) by a genesis producer for this chain are
  stored; everything else is ignored;
- the book lives in ``attest.sqlite`` next to the ledger, with the attest stream's last
  sequence read, so a restarted node resumes there; the ``diverged`` mark survives restarts.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url
from civicledger.crypto.keys import PrivateKey, PublicKey, signing_message
from civicledger.errors import CivicError, LedgerError
from civicledger.ledger.block import SignedBlockHeader

ATTEST_PURPOSE = "attest"
BOOK_NAME = "attest.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attestations (
    height INTEGER NOT NULL,
    node TEXT NOT NULL,
    header_hash TEXT NOT NULL,
    wire BLOB NOT NULL,
    PRIMARY KEY (height, node)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS book_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


class _Frozen(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Attestation(_Frozen):
    chain_id: str
    height: int = Field(ge=0)
    header_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    state_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    log_root: str = Field(pattern=r"^[0-9a-f]{64}$")
    node: str

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump())


class SignedAttestation(_Frozen):
    attestation: Attestation
    signature: str

    @classmethod
    def of(cls, signed: SignedBlockHeader, key: PrivateKey) -> SignedAttestation:
        header = signed.header
        attestation = Attestation(
            chain_id=header.chain_id,
            height=header.height,
            header_hash=header.hash().hex(),
            state_hash=header.state_hash,
            log_root=header.log_root,
            node=key.public.did,
        )
        message = signing_message(header.chain_id, ATTEST_PURPOSE, attestation.canonical_bytes())
        return cls(attestation=attestation, signature=b64url(key.sign(message)))

    def wire(self) -> bytes:
        return canonical_json(self.model_dump())

    def msg_id(self) -> str:
        return f"att-{self.attestation.height}-{self.attestation.node}"

    def verify(self, chain_id: str, producers: frozenset[str]) -> None:
        """Raise LedgerError unless a genesis producer signed this for ``chain_id``."""
        att = self.attestation
        if att.chain_id != chain_id:
            raise LedgerError(f"attestation for chain {att.chain_id!r}")
        if att.node not in producers:
            raise LedgerError(f"attestation by {att.node}, not a genesis producer")
        try:
            PublicKey.from_did(att.node).verify(
                signing_message(chain_id, ATTEST_PURPOSE, att.canonical_bytes()),
                from_b64url(self.signature),
            )
        except CivicError as e:
            raise LedgerError(f"attestation signature: {e}") from e


def decode_attestation(data: bytes) -> SignedAttestation | None:
    try:
        return SignedAttestation.model_validate_json(data)
    except ValidationError:
        return None


@dataclass(frozen=True, slots=True)
class Fault:
    node: str
    height: int
    reason: str
    """``header_mismatch`` (attested a header other than ours) or ``equivocation``."""


@dataclass(frozen=True, slots=True)
class Verdict:
    final: bool
    agreeing: frozenset[str]
    dissenting: dict[str, str]
    """node → the header hash it attested, where it differs from ours."""
    diverged: bool
    """A quorum of other nodes agrees on a hash that is not ours."""


class AttestationBook:
    """The attestations this node has read, in ``attest.sqlite``; one writer thread."""

    def __init__(self, path: Path, chain_id: str, producers: frozenset[str], quorum: int) -> None:
        self.chain_id = chain_id
        self.producers = producers
        self.quorum = quorum
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        self._conn.close()

    # -- position and marks -------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM book_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO book_meta(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def last_seq(self) -> int:
        return int(self._meta("attest_seq") or 0)

    @property
    def diverged_at(self) -> int | None:
        value = self._meta("diverged_at")
        return None if value is None else int(value)

    def mark_diverged(self, height: int | None) -> None:
        if height is None:
            self._conn.execute("DELETE FROM book_meta WHERE key = 'diverged_at'")
        else:
            self._set_meta("diverged_at", str(height))

    # -- adding ---------------------------------------------------------------------------------

    def add(self, seq: int, data: bytes) -> tuple[SignedAttestation | None, Fault | None]:
        """Store the attestation at stream ``seq``; returns it (None if ignored) and any
        equivocation it shows."""
        if seq <= self.last_seq:
            return None, None
        signed = decode_attestation(data)
        fault: Fault | None = None
        stored: SignedAttestation | None = None
        if signed is not None:
            try:
                signed.verify(self.chain_id, self.producers)
            except LedgerError:
                signed = None
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if signed is not None:
                att = signed.attestation
                row = self._conn.execute(
                    "SELECT header_hash FROM attestations WHERE height = ? AND node = ?",
                    (att.height, att.node),
                ).fetchone()
                if row is None:
                    self._conn.execute(
                        "INSERT INTO attestations(height, node, header_hash, wire)"
                        " VALUES (?, ?, ?, ?)",
                        (att.height, att.node, att.header_hash, signed.wire()),
                    )
                    stored = signed
                elif row[0] != att.header_hash:
                    fault = Fault(att.node, att.height, "equivocation")
            self._set_meta("attest_seq", str(seq))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return stored, fault

    # -- reading --------------------------------------------------------------------------------

    def at(self, height: int) -> list[SignedAttestation]:
        rows = self._conn.execute(
            "SELECT wire FROM attestations WHERE height = ? ORDER BY node", (height,)
        ).fetchall()
        return [SignedAttestation.model_validate_json(bytes(r[0])) for r in rows]

    def latest_by_node(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT node, max(height) FROM attestations GROUP BY node")
        return {str(node): int(height) for node, height in rows}

    def verdict(self, height: int, own_hash: str, own_node: str) -> Verdict:
        hashes = {a.attestation.node: a.attestation.header_hash for a in self.at(height)}
        agreeing = frozenset(n for n, h in hashes.items() if h == own_hash)
        dissenting = {n: h for n, h in hashes.items() if h != own_hash}
        counts: dict[str, int] = {}
        for node, value in dissenting.items():
            if node != own_node:
                counts[value] = counts.get(value, 0) + 1
        diverged = any(count >= self.quorum for count in counts.values())
        return Verdict(len(agreeing) >= self.quorum, agreeing, dissenting, diverged)

    def is_final(self, height: int, header_hash: str) -> bool:
        """A quorum of distinct genesis producers attested exactly this header at ``height``."""
        nodes = {
            a.attestation.node for a in self.at(height) if a.attestation.header_hash == header_hash
        }
        return len(nodes) >= self.quorum


__all__ = [
    "ATTEST_PURPOSE",
    "BOOK_NAME",
    "Attestation",
    "AttestationBook",
    "Fault",
    "SignedAttestation",
    "Verdict",
    "decode_attestation",
]
