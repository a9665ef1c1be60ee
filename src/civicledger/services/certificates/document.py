"""A certificate document, its Merkle leaf, its pseudonymous reference and its inclusion proof.

The document (type, issuer, times, the holder's fields, a random salt) never reaches the
ledger: the holder and the issuer keep it. The ledger keeps a batch's Merkle root, and for each
certificate it may later hold a status or verification entries under its *reference*, a hash of
the certificate id with the salt, so nobody who has not seen the document can enumerate them.

Definitions a second implementation must match:

- leaf data  = ``"civicledger/certificate/v1\\0" || RFC8785(document)``; leaf hash = RFC 9162
  ``SHA-256(0x00 || leaf data)``; the batch root is the RFC 9162 root over the leaf hashes in
  issue order (``crypto/merkle.py``).
- reference  = ``SHA-256("civicledger/certificate-ref/v1\\0" || certificate_id || "\\0" ||
  salt)`` in lowercase hex.
- QR payload = ``"civic-cert:" || base64url(RFC8785(bundle))`` with the proof's path as one
  base64url string (32 bytes per hash), at most ``MAX_QR_TEXT`` characters.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from civicledger.contracts.governance import CREDENTIAL_TYPE_PATTERN
from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, parse_json, sha256
from civicledger.crypto.merkle import HASH_SIZE, leaf_hash
from civicledger.errors import CivicError
from civicledger.ledger.genesis import AGENCY_ID_PATTERN

__all__ = [
    "BATCH_ID_PATTERN",
    "CERTIFICATE_ID_PATTERN",
    "MAX_FIELDS",
    "MAX_QR_TEXT",
    "MAX_TREE_SIZE",
    "QR_SCHEME",
    "REF_PATTERN",
    "Bundle",
    "CertificateDocument",
    "CertificateFormatError",
    "InclusionProof",
    "bundle_from_json",
    "bundle_from_qr",
    "bundle_to_qr",
    "certificate_leaf",
    "certificate_ref",
    "leaf_of_canonical",
]

QR_SCHEME = "civic-cert:"
MAX_QR_TEXT = 2_900
"""What a QR code of version 40 at error level L holds as bytes (2,953), with some margin."""
CERTIFICATE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{7,63}$"
BATCH_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,63}$"
REF_PATTERN = r"^[0-9a-f]{64}$"
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
MAX_FIELDS = 16
MAX_FIELD_CHARS = 200
MAX_TREE_SIZE = 1_000_000
MAX_PATH = 20
"""A tree of at most ``MAX_TREE_SIZE`` leaves has paths of at most 20 hashes."""
MAX_DATE_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: every time in a document is a printable date."""
_LEAF_DOMAIN = b"civicledger/certificate/v1\x00"
_REF_DOMAIN = b"civicledger/certificate-ref/v1\x00"


class CertificateFormatError(CivicError):
    """Bytes or text that are not a certificate bundle (``bad_certificate``)."""

    reason = "bad_certificate"


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class CertificateDocument(_Strict):
    """What the issuer certifies; the holder's copy. Personal data lives only here."""

    version: Literal[1] = 1
    certificate_id: str = Field(pattern=CERTIFICATE_ID_PATTERN)
    """Random (128 bits): also the issuer's key for its own register."""
    certificate_type: str = Field(pattern=CREDENTIAL_TYPE_PATTERN)
    """The governance credential type the issuer must hold the right for."""
    issuer: str = Field(pattern=AGENCY_ID_PATTERN)
    chain_id: str = Field(min_length=1, max_length=64)
    """The chain the batch is anchored on: a document of another city's chain does not verify."""
    issued_at_ms: int = Field(ge=0, le=MAX_DATE_MS)
    """The batch's issue time, the same for every document of the batch (the contract bounds it
    against the anchoring block's time)."""
    valid_until_ms: int | None = Field(default=None, ge=0, le=MAX_DATE_MS)
    """Expiry, checked by the verifier against its own clock; ``None``: never expires."""
    fields: dict[str, str] = Field(max_length=MAX_FIELDS)
    """The certified facts (name, birth date, address, degree...), shown on the PDF."""
    salt: str = Field(pattern=r"^[0-9a-f]{32}$")
    """128 random bits: the leaf and the reference cannot be guessed from the fields."""

    @field_validator("fields")
    @classmethod
    def _fields(cls, fields: dict[str, str]) -> dict[str, str]:
        for name, value in fields.items():
            if re.fullmatch(FIELD_NAME_PATTERN, name) is None:
                raise ValueError(f"{name[:40]!r} is not a field name")
            if not 1 <= len(value) <= MAX_FIELD_CHARS:
                raise ValueError(f"field {name!r} must have 1..{MAX_FIELD_CHARS} characters")
        return fields


def certificate_leaf(document: CertificateDocument) -> bytes:
    """The RFC 9162 leaf hash of a document (domain-separated)."""
    return leaf_of_canonical(canonical_json(document.model_dump()))


def leaf_of_canonical(data: bytes) -> bytes:
    """``certificate_leaf`` from the document's RFC 8785 bytes (an issuer has them already)."""
    return leaf_hash(_LEAF_DOMAIN + data)


def certificate_ref(certificate_id: str, salt: str) -> str:
    """The certificate's pseudonymous reference on the ledger (status, verification log)."""
    data = _REF_DOMAIN + certificate_id.encode("ascii") + b"\x00" + salt.encode("ascii")
    return sha256(data).hex()


def _path(value: list[str]) -> list[str]:
    for item in value:
        if re.fullmatch(r"^[0-9a-f]{64}$", item) is None:
            raise ValueError("a path element is not a 32-byte hex hash")
    return value


class InclusionProof(_Strict):
    """Where the document's leaf sits in its anchored batch."""

    batch_id: str = Field(pattern=BATCH_ID_PATTERN)
    index: int = Field(ge=0, lt=MAX_TREE_SIZE)
    size: int = Field(ge=1, le=MAX_TREE_SIZE)
    path: Annotated[list[str], Field(max_length=MAX_PATH)]
    """Hex hashes, leaf to root (RFC 9162 §2.1.3)."""

    @field_validator("path")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        return _path(value)

    def path_bytes(self) -> list[bytes]:
        return [bytes.fromhex(item) for item in self.path]


class Bundle(_Strict):
    """What a PDF embeds and its QR code carries: the document and its inclusion proof."""

    document: CertificateDocument
    proof: InclusionProof

    @property
    def ref(self) -> str:
        return certificate_ref(self.document.certificate_id, self.document.salt)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


def bundle_from_json(value: Any) -> Bundle:
    """A bundle from parsed JSON; ``CertificateFormatError`` if it is not one."""
    try:
        return Bundle.model_validate(value)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CertificateFormatError(f"not a certificate: {where}: {first['msg']}") from e


def bundle_to_qr(bundle: Bundle) -> str:
    """The compact QR text: the path packed as bytes; ``CertificateFormatError`` if too long."""
    value = bundle.to_json()
    value["proof"]["path"] = b64url(b"".join(bundle.proof.path_bytes()))
    text = QR_SCHEME + b64url(canonical_json(value))
    if len(text) > MAX_QR_TEXT:
        raise CertificateFormatError(
            f"the certificate's QR text has {len(text)} characters, over {MAX_QR_TEXT}",
            reason="qr_too_large",
        )
    return text


def bundle_from_qr(text: str) -> Bundle:
    """Parse a ``civic-cert:`` QR text (bounded, fail closed)."""
    text = text.strip()
    if len(text) > MAX_QR_TEXT or not text.startswith(QR_SCHEME):
        raise CertificateFormatError("not a civic-cert: QR text")
    try:
        value = parse_json(from_b64url(text[len(QR_SCHEME) :]))
        if not isinstance(value, dict) or not isinstance(value.get("proof"), dict):
            raise CertificateFormatError("not a certificate bundle")
        packed = from_b64url(str(value["proof"].get("path", "")))
    except CivicError as e:
        raise CertificateFormatError(f"not a certificate QR text: {e.message}") from e
    if len(packed) % HASH_SIZE:
        raise CertificateFormatError("the proof's path is not a list of 32-byte hashes")
    path = [packed[i : i + HASH_SIZE].hex() for i in range(0, len(packed), HASH_SIZE)]
    value["proof"] = {**value["proof"], "path": path}
    return bundle_from_json(value)
