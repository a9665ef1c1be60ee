"""The certificate desk a running node offers over HTTP and in the portal: verify a PDF or a QR
text, read batches and a certificate's verification log, record a verification.

Verifying writes nothing: the public verify page and endpoint leave no trace on the ledger. An
agency that checks a certificate for a procedure (a desk token in the API, ``--record-as`` in
the CLI) records it with ``record``: its agency is *who*, the block time is *when*, and the
holder reads both by the certificate's reference (printed on the PDF).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from civicledger.agency.ledger import AgencyLedger
from civicledger.errors import CivicError
from civicledger.services.certificates.contract import CONTRACT_NAME
from civicledger.services.certificates.document import bundle_from_qr
from civicledger.services.certificates.verify import Report, verify_bundle, verify_pdf

__all__ = ["CertificateDesk", "CertificateDeskError"]


class CertificateDeskError(CivicError):
    """Reasons: ``unknown_batch`` (a read of a batch the ledger does not have),
    ``recorder_unavailable`` (this node does not hold the recording agency's key)."""

    reason = "certificate_desk"


class CertificateDesk:
    def __init__(self, ledger: AgencyLedger, chain_id: str) -> None:
        self.ledger = ledger
        self.chain_id = chain_id

    def _query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.query(contract, method, args)

    def verify_pdf(self, data: bytes, now_ms: int) -> Report:
        return verify_pdf(data, self._query, chain_id=self.chain_id, now_ms=now_ms)

    def verify_qr(self, text: str, now_ms: int) -> Report:
        bundle = bundle_from_qr(text)
        return verify_bundle(bundle, self._query, chain_id=self.chain_id, now_ms=now_ms)

    def batch(self, issuer: str, batch_id: str) -> Mapping[str, Any]:
        found = self._query(CONTRACT_NAME, "batch", {"issuer": issuer, "batch_id": batch_id})
        if not isinstance(found, Mapping):
            raise CertificateDeskError(
                f"{issuer} anchored no batch {batch_id!r}", reason="unknown_batch"
            )
        return found

    def batches(self, issuer: str, *, after: str = "", limit: int = 100) -> Any:
        return self._query(
            CONTRACT_NAME, "batches", {"issuer": issuer, "after": after, "limit": limit}
        )

    def log(self, ref: str, *, after: int = 0, limit: int = 100) -> Any:
        """Who verified the certificate and when: ``{"entries", "count", "next"}``."""
        return self._query(
            CONTRACT_NAME, "verifications", {"ref": ref, "after": after, "limit": limit}
        )

    def record(self, agency: str, ref: str, purpose: str) -> Any:
        """Record that ``agency`` verified the certificate, signed with its keystore key."""
        try:
            self.ledger.key(agency)
        except CivicError as e:
            raise CertificateDeskError(
                f"this node does not hold {agency}'s key", reason="recorder_unavailable"
            ) from e
        return self.ledger.send(
            agency, CONTRACT_NAME, "record_verification", {"ref": ref, "purpose": purpose}
        )
