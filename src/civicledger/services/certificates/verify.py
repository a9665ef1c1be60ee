"""Verify a certificate (its PDF, or its QR text): three verdicts, reported separately.

1. **integrity**: the document's leaf is in the batch its proof names, anchored on this chain by
   the document's issuer with the same type and issue time; for a PDF, also the file's bytes
   equal the re-rendering of the bundle it embeds (``pdf.py``), so altered visible text fails.
2. **authority**: the issuer held the governance right for the type at the batch's anchoring
   block time (``governance.may_issue`` at ``anchored_ms``), as Blockcerts checks the issuer key
   at issue time: a later revocation of the right does not undo earlier certificates.
3. **status**: ``valid``, ``revoked`` (with the issuer's reason code), ``superseded`` (by a
   reissue's reference) or ``expired`` (``valid_until_ms`` against the verifier's ``now_ms``:
   expiry is in the document, not on the ledger, so it needs no transaction).

Each verdict is ``pass``, ``fail`` (with a stable reason) or ``not_checked`` (when integrity
fails because the document is not anchored, nothing else about it can be trusted). Pure: the
ledger is read only through ``query`` and the time is passed in; it never raises for a bad
certificate (that is a report), only for a file that is no certificate at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from civicledger.crypto.merkle import verify_inclusion
from civicledger.errors import ProofError
from civicledger.services.certificates.contract import CONTRACT_NAME
from civicledger.services.certificates.document import Bundle, certificate_leaf
from civicledger.services.certificates.pdf import read_pdf, render_pdf

__all__ = ["Query", "Report", "Verdict", "verify_bundle", "verify_pdf"]

Query = Callable[[str, str, dict[str, Any]], Any]
"""``query(contract, method, args)`` at the ledger's head (``LedgerAccess.query``)."""
Outcome = Literal["pass", "fail", "not_checked"]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str | None = None
    """Stable code when the outcome is ``fail`` or ``not_checked``."""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == "pass"

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class Report:
    """What a verifier learns; ``bundle`` is the document checked (its fields are personal
    data: show them to the person who presented it, never log them)."""

    integrity: Verdict
    authority: Verdict
    status: Verdict
    bundle: Bundle
    source: Literal["pdf", "qr"]

    @property
    def ok(self) -> bool:
        return self.integrity.ok and self.authority.ok and self.status.ok

    @property
    def ref(self) -> str:
        return self.bundle.ref

    def to_json(self) -> dict[str, Any]:
        doc = self.bundle.document
        return {
            "ok": self.ok,
            "source": self.source,
            "integrity": self.integrity.to_json(),
            "authority": self.authority.to_json(),
            "status": self.status.to_json(),
            "ref": self.ref,
            "certificate": {
                "certificate_id": doc.certificate_id,
                "certificate_type": doc.certificate_type,
                "issuer": doc.issuer,
                "issued_at_ms": doc.issued_at_ms,
                "valid_until_ms": doc.valid_until_ms,
                "fields": dict(doc.fields),
                "batch_id": self.bundle.proof.batch_id,
            },
        }


_SKIPPED = Verdict("not_checked", "integrity_failed")


def _integrity(bundle: Bundle, query: Query, chain_id: str) -> tuple[Verdict, dict[str, Any]]:
    doc, proof = bundle.document, bundle.proof
    if doc.chain_id != chain_id:
        return Verdict("fail", "wrong_chain", {"chain_id": doc.chain_id}), {}
    batch = query(CONTRACT_NAME, "batch", {"issuer": doc.issuer, "batch_id": proof.batch_id})
    if not isinstance(batch, dict):
        return Verdict("fail", "unknown_batch", {"batch_id": proof.batch_id}), {}
    if (
        batch["certificate_type"] != doc.certificate_type
        or batch["issued_at_ms"] != doc.issued_at_ms
        or batch["size"] != proof.size
    ):
        return Verdict("fail", "batch_mismatch", {"batch_id": proof.batch_id}), {}
    try:
        verify_inclusion(
            certificate_leaf(doc),
            proof.index,
            proof.size,
            proof.path_bytes(),
            bytes.fromhex(batch["root"]),
        )
    except ProofError:
        return Verdict("fail", "not_in_batch", {"batch_id": proof.batch_id}), {}
    detail = {"batch_id": proof.batch_id, "root": batch["root"], "height": batch["height"]}
    return Verdict("pass", None, detail), batch


def _authority(bundle: Bundle, batch: dict[str, Any], query: Query) -> Verdict:
    doc = bundle.document
    args = {
        "agency": doc.issuer,
        "credential_type": doc.certificate_type,
        "at_time_ms": batch["anchored_ms"],
    }
    detail = {"issuer": doc.issuer, "at_time_ms": batch["anchored_ms"]}
    if query("governance", "may_issue", args) is not True:
        return Verdict("fail", "issuer_not_authorized", detail)
    return Verdict("pass", None, detail)


def _status(bundle: Bundle, query: Query, now_ms: int) -> Verdict:
    doc = bundle.document
    record = query(CONTRACT_NAME, "status", {"issuer": doc.issuer, "ref": bundle.ref})
    if isinstance(record, dict):
        detail = {
            "state": record["state"],
            "reason": record["reason"],
            "time_ms": record["time_ms"],
            "by": record["by"],
        }
        return Verdict("fail", str(record["state"]), detail)
    if doc.valid_until_ms is not None and now_ms >= doc.valid_until_ms:
        expired = {"state": "expired", "valid_until_ms": doc.valid_until_ms}
        return Verdict("fail", "expired", expired)
    return Verdict("pass", None, {"state": "valid", "valid_until_ms": doc.valid_until_ms})


def verify_bundle(
    bundle: Bundle,
    query: Query,
    *,
    chain_id: str,
    now_ms: int,
    source: Literal["pdf", "qr"] = "qr",
    pdf_altered: bool = False,
) -> Report:
    """Check a bundle (from a QR text, or a PDF's attachment) against the ledger."""
    integrity, batch = _integrity(bundle, query, chain_id)
    if not integrity.ok:
        return Report(integrity, _SKIPPED, _SKIPPED, bundle, source)
    if pdf_altered:
        integrity = Verdict("fail", "pdf_altered", integrity.detail)
    return Report(
        integrity, _authority(bundle, batch, query), _status(bundle, query, now_ms), bundle, source
    )


def verify_pdf(data: bytes, query: Query, *, chain_id: str, now_ms: int) -> Report:
    """Check a certificate PDF: raises ``PdfError``/``CertificateFormatError`` if the file embeds
    no certificate; otherwise a report (a genuine document in an altered file fails integrity
    with ``pdf_altered``, while its authority and status are still reported)."""
    bundle, font = read_pdf(data)
    altered = render_pdf(bundle, font) != data
    return verify_bundle(
        bundle, query, chain_id=chain_id, now_ms=now_ms, source="pdf", pdf_altered=altered
    )
