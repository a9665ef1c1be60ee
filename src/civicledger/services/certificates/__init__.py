"""Anti-forgery certificates (증명서 발급 / 위·변조): Merkle-batched documents, verified offline.

An agency issues documents (residence, graduation, licence certificates...) off the ledger and
anchors each batch's Merkle root in one ``certificates.anchor_batch`` transaction; each holder
gets a PDF embedding the document and its inclusion proof, with a QR code of both. Anyone can
verify a PDF or a QR text (``verify.py``): integrity, the issuer's authority at issue time and
the status (valid, revoked, superseded, expired), reported separately. See docs/certificates.md.

Invariants: no document, field or certificate id reaches the ledger (only roots, sizes, types,
agency ids and salted references); a batch record never changes; a status is final.
"""

from civicledger.services.certificates.contract import CONTRACT_NAME, Certificates

__all__ = ["CONTRACT_NAME", "Certificates"]
