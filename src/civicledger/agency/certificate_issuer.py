"""An agency's certificate office: issue documents in Merkle batches, keep them, render PDFs,
revoke and reissue.

Everything personal stays in the agency's register in the city directory, never on the ledger::

    <city>/certificates/<agency>/register.sqlite   (SQLite, WAL, 0600 in a 0700 directory)
        batches(batch_id, certificate_type, size, root, issued_at_ms, anchored, height)
        documents(certificate_id, batch_id, idx, ref, document, path, state, detail)
            one row per issued document: its canonical JSON, its inclusion path (32 bytes per
            hash), and what the agency did with it since (valid, revoked, superseded)

A batch is written with ``anchored = 0`` first, then anchored in one transaction
(``certificates.anchor_batch``), then marked; a refused anchor removes the batch again, and one
whose outcome is unknown (a timeout) stays until ``anchor_pending`` finishes it, so the register
never hands out a document whose root is not on the ledger (``bundle`` refuses unanchored ones
with ``not_anchored``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from civicledger.agency.ledger import AgencyLedger, TxFailed
from civicledger.crypto.encoding import canonical_json, parse_json
from civicledger.crypto.merkle import HASH_SIZE, inclusion_proof, node_hash
from civicledger.errors import CivicError, TxRejected
from civicledger.services.certificates.contract import CONTRACT_NAME, REASON_PATTERN
from civicledger.services.certificates.document import (
    BATCH_ID_PATTERN,
    MAX_TREE_SIZE,
    Bundle,
    CertificateDocument,
    InclusionProof,
    bundle_to_qr,
    certificate_ref,
    leaf_of_canonical,
)
from civicledger.services.certificates.pdf import FontMode, render_pdf

__all__ = [
    "CERTIFICATES_DIR",
    "CertificateIssuer",
    "CertificateIssuerError",
    "IssuedBatch",
    "merkle_paths",
]

CERTIFICATES_DIR = "certificates"
REGISTER_DB = "register.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    certificate_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    root TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    anchored INTEGER NOT NULL DEFAULT 0,
    height INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS documents (
    certificate_id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES batches(batch_id),
    idx INTEGER NOT NULL,
    ref TEXT NOT NULL UNIQUE,
    document TEXT NOT NULL,
    path BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'valid',
    detail TEXT
);
CREATE INDEX IF NOT EXISTS documents_batch ON documents(batch_id, idx);
"""


class CertificateIssuerError(CivicError):
    """Reasons: ``unknown_certificate``, ``not_anchored``, ``bad_batch``, ``already_revoked``,
    ``already_superseded``, ``bad_issuer_state``."""

    reason = "certificate_issuer"


@dataclass(frozen=True)
class IssuedBatch:
    batch_id: str
    certificate_type: str
    root: str
    size: int
    issued_at_ms: int
    height: int
    certificate_ids: tuple[str, ...]


def merkle_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The RFC 9162 root of ``leaves`` and every leaf's inclusion path, in O(n) hashes: every
    subtree hash is computed once (memoised) and ``merkle.inclusion_proof`` picks the path."""
    size = len(leaves)
    memo: dict[tuple[int, int], bytes] = {}

    def subtree(start: int, end: int) -> bytes:
        if end - start == 1:
            return leaves[start]
        found = memo.get((start, end))
        if found is None:
            split = 1 << ((end - start - 1).bit_length() - 1)
            found = node_hash(subtree(start, start + split), subtree(start + split, end))
            memo[(start, end)] = found
        return found

    root = subtree(0, size)
    return root, [inclusion_proof(i, size, subtree) for i in range(size)]


def _register_dir(ledger: AgencyLedger, agency: str) -> Path:
    return ledger.city.root / CERTIFICATES_DIR / agency


class CertificateIssuer:
    """One agency's certificate office (signs with the keystore key named like the agency)."""

    def __init__(self, ledger: AgencyLedger, agency: str, *, font: FontMode | None = None) -> None:
        self.ledger = ledger
        self.agency = agency
        self.font = font
        self.directory = _register_dir(ledger, agency)

    @contextlib.contextmanager
    def _store(self) -> Iterator[sqlite3.Connection]:
        path = self.directory / REGISTER_DB
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                os.close(os.open(path, flags, 0o600))
            conn = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise CertificateIssuerError(
                f"cannot open {path}: {e}", reason="bad_issuer_state"
            ) from e
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            yield conn
        except sqlite3.Error as e:
            raise CertificateIssuerError(f"{path}: {e}", reason="bad_issuer_state") from e
        finally:
            conn.close()

    # -- issuing --

    def issue(
        self,
        certificate_type: str,
        holders: Sequence[Mapping[str, str]],
        *,
        valid_until_ms: int | None = None,
        batch_id: str | None = None,
        issued_at_ms: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> IssuedBatch:
        """Issue one document per entry of ``holders`` (its fields) and anchor them in one
        transaction; the documents are kept here, never sent to the ledger."""
        if not 1 <= len(holders) <= MAX_TREE_SIZE:
            raise CertificateIssuerError(
                f"a batch holds 1..{MAX_TREE_SIZE} documents", reason="bad_batch"
            )
        batch_id = batch_id or f"b-{secrets.token_hex(8)}"
        if re.fullmatch(BATCH_ID_PATTERN, batch_id) is None:
            raise CertificateIssuerError(f"{batch_id[:70]!r} is not a batch id", reason="bad_batch")
        issued = int(time.time() * 1000) if issued_at_ms is None else issued_at_ms
        chain_id = self.ledger.city.genesis().chain_id
        documents = [
            CertificateDocument(
                certificate_id=secrets.token_hex(16),
                certificate_type=certificate_type,
                issuer=self.agency,
                chain_id=chain_id,
                issued_at_ms=issued,
                valid_until_ms=valid_until_ms,
                fields=dict(fields),
                salt=secrets.token_hex(16),
            )
            for fields in holders
        ]
        canonical = [canonical_json(d.model_dump()) for d in documents]
        root, paths = merkle_paths([leaf_of_canonical(c) for c in canonical])
        # Refuse before anything is stored: every holder's PDF must carry a QR code. The QR
        # text grows with the document and the path: the longest document with the deepest
        # path (hashes all have one size) is the worst case.
        longest = max(range(len(documents)), key=lambda i: len(canonical[i]))
        depth = max(len(path) for path in paths)
        proof = InclusionProof(
            batch_id=batch_id, index=longest, size=len(documents), path=[root.hex()] * depth
        )
        bundle_to_qr(Bundle(document=documents[longest], proof=proof))
        rows = [
            (
                d.certificate_id,
                batch_id,
                i,
                certificate_ref(d.certificate_id, d.salt),
                canonical[i].decode("utf-8"),
                b"".join(paths[i]),
            )
            for i, d in enumerate(documents)
        ]
        with self._store() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO batches(batch_id, certificate_type, size, root, issued_at_ms,"
                    " metadata) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        batch_id,
                        certificate_type,
                        len(documents),
                        root.hex(),
                        issued,
                        canonical_json(dict(metadata or {})).decode("utf-8"),
                    ),
                )
                conn.executemany(
                    "INSERT INTO documents(certificate_id, batch_id, idx, ref, document, path)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError as e:
                conn.execute("ROLLBACK")
                raise CertificateIssuerError(
                    f"batch {batch_id!r} exists in the register", reason="batch_exists"
                ) from e
            conn.execute("COMMIT")
        args = {
            "batch_id": batch_id,
            "root": root.hex(),
            "size": len(documents),
            "certificate_type": certificate_type,
            "issued_at_ms": issued,
            "metadata": dict(metadata or {}),
        }
        record = self._anchor(args)
        return IssuedBatch(
            batch_id,
            certificate_type,
            root.hex(),
            len(documents),
            issued,
            int(record["height"]),
            tuple(d.certificate_id for d in documents),
        )

    def _anchor(self, args: dict[str, Any]) -> dict[str, Any]:
        """Send ``anchor_batch`` and mark the batch; a refusal (the transaction surely did not
        commit) removes it from the register, any other error (a timeout: it may have) keeps
        it unanchored for ``anchor_pending``."""
        batch_id = args["batch_id"]
        try:
            record: dict[str, Any] = self.ledger.send(
                self.agency, CONTRACT_NAME, "anchor_batch", args
            )
        except (TxFailed, TxRejected):
            self._forget(batch_id)
            raise
        self._mark_anchored(batch_id, int(record["height"]))
        return record

    def _mark_anchored(self, batch_id: str, height: int) -> None:
        with self._store() as conn:
            conn.execute(
                "UPDATE batches SET anchored = 1, height = ? WHERE batch_id = ?",
                (height, batch_id),
            )

    def anchor_pending(self) -> list[str]:
        """Finish batches whose anchoring had an unknown outcome: mark those the ledger has
        (with the same root), anchor the others. Returns the batch ids now anchored."""
        with self._store() as conn:
            rows = conn.execute(
                "SELECT batch_id, certificate_type, size, root, issued_at_ms, metadata"
                " FROM batches WHERE anchored = 0 ORDER BY batch_id"
            ).fetchall()
        done = []
        for batch_id, certificate_type, size, root, issued_at_ms, metadata in rows:
            found = self.ledger.query(
                CONTRACT_NAME, "batch", {"issuer": self.agency, "batch_id": batch_id}
            )
            if isinstance(found, dict):
                if found["root"] != root:
                    raise CertificateIssuerError(
                        f"the ledger's batch {batch_id!r} has another root than the register's",
                        reason="bad_issuer_state",
                    )
                self._mark_anchored(batch_id, int(found["height"]))
            else:
                args = {
                    "batch_id": batch_id,
                    "root": root,
                    "size": size,
                    "certificate_type": certificate_type,
                    "issued_at_ms": issued_at_ms,
                    "metadata": parse_json(metadata.encode("utf-8")),
                }
                self._anchor(args)
            done.append(batch_id)
        return done

    def _forget(self, batch_id: str) -> None:
        with self._store() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM documents WHERE batch_id = ?", (batch_id,))
            conn.execute("DELETE FROM batches WHERE batch_id = ?", (batch_id,))
            conn.execute("COMMIT")

    # -- reading the register --

    def _row(self, certificate_id: str) -> tuple[Any, ...]:
        with self._store() as conn:
            row = conn.execute(
                "SELECT d.document, d.batch_id, d.idx, b.size, d.path, b.anchored, d.ref,"
                " d.state, d.detail FROM documents d JOIN batches b USING (batch_id)"
                " WHERE d.certificate_id = ?",
                (certificate_id,),
            ).fetchone()
        if row is None:
            raise CertificateIssuerError(
                f"{self.agency} issued no certificate {certificate_id[:70]!r}",
                reason="unknown_certificate",
            )
        return tuple(row)

    def bundle(self, certificate_id: str) -> Bundle:
        """The document with its inclusion proof (what the PDF embeds and the QR carries)."""
        document, batch_id, idx, size, path, anchored, *_ = self._row(certificate_id)
        if not anchored:
            raise CertificateIssuerError(
                f"batch {batch_id!r} is not anchored yet", reason="not_anchored"
            )
        hashes = [path[i : i + HASH_SIZE].hex() for i in range(0, len(path), HASH_SIZE)]
        return Bundle(
            document=CertificateDocument.model_validate(parse_json(document.encode("utf-8"))),
            proof=InclusionProof(batch_id=batch_id, index=idx, size=size, path=hashes),
        )

    def pdf(self, certificate_id: str) -> bytes:
        return render_pdf(self.bundle(certificate_id), self.font)

    def certificates(self, batch_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """A batch's certificates (id, index, state, the holder's name field), issue order."""
        with self._store() as conn:
            rows = conn.execute(
                "SELECT certificate_id, idx, state, document FROM documents WHERE batch_id = ?"
                " ORDER BY idx LIMIT ?",
                (batch_id, limit),
            ).fetchall()
        out = []
        for certificate_id, idx, state, document in rows:
            fields = parse_json(document.encode("utf-8"))
            name = fields["fields"].get("name") if isinstance(fields, dict) else None
            out.append(
                {"certificate_id": certificate_id, "index": idx, "state": state, "name": name}
            )
        return out

    # -- taking back --

    def revoke(self, certificate_id: str, reason: str) -> dict[str, Any]:
        """Revoke on the ledger (by reference), then mark the register."""
        if re.fullmatch(REASON_PATTERN, reason) is None:
            raise CertificateIssuerError(
                f"{reason[:50]!r} is not a reason code", reason="bad_reason"
            )
        bundle = self.bundle(certificate_id)
        args = {"batch_id": bundle.proof.batch_id, "ref": bundle.ref, "reason": reason}
        record: dict[str, Any] = self.ledger.send(self.agency, CONTRACT_NAME, "revoke", args)
        self._mark(certificate_id, "revoked", reason)
        return record

    def reissue(
        self,
        certificate_id: str,
        changes: Mapping[str, str] | None = None,
        *,
        valid_until_ms: int | None = None,
        issued_at_ms: int | None = None,
    ) -> IssuedBatch:
        """Issue a corrected copy (a batch of one) and mark the old one superseded by it."""
        old = self.bundle(certificate_id)
        fields = {**old.document.fields, **dict(changes or {})}
        until = old.document.valid_until_ms if valid_until_ms is None else valid_until_ms
        batch = self.issue(
            old.document.certificate_type, [fields], valid_until_ms=until, issued_at_ms=issued_at_ms
        )
        new = self.bundle(batch.certificate_ids[0])
        args = {
            "batch_id": old.proof.batch_id,
            "ref": old.ref,
            "new_batch_id": new.proof.batch_id,
            "new_ref": new.ref,
        }
        self.ledger.send(self.agency, CONTRACT_NAME, "supersede", args)
        self._mark(certificate_id, "superseded", new.document.certificate_id)
        return batch

    def _mark(self, certificate_id: str, state: str, detail: str) -> None:
        with self._store() as conn:
            conn.execute(
                "UPDATE documents SET state = ?, detail = ? WHERE certificate_id = ?",
                (state, detail, certificate_id),
            )
