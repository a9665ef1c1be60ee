"""The credential types the city issues, as builders of their claims; nothing here touches a ledger.

    ResidentCard     SD-JWT VC, by an agency granted ``ResidentCard``; every claim disclosable.
    Qualification    Data Integrity VC (eddsa-jcs-2022), e.g. a licensed electrician.
    FamilyLoveCard   SD-JWT VC for families with three or more children, the youngest under 19.
    VisitorPass      Data Integrity VC for a time window, issued against a resident's card and
                     shown as a QR code (``to_qr_payload`` / ``from_qr_payload``).

Invariants:

- Personal data (names, birth dates, addresses) lives only in the credential the holder keeps.
  The ledger sees the issuer's DID document, its issuer grants and the digests of its status
  lists, never a claim; these builders write nothing anywhere.
- Every revocable type carries a ``credentialStatus`` (a ``BitstringStatusListEntry``); a
  builder refuses to make one without it and the verifier refuses one that lacks it.
- An SD-JWT VC names its type as ``vct`` = ``VCT_PREFIX + <type>``; a DI credential lists
  ``<type>`` after ``VerifiableCredential``. Either way the type is the one governance grants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, parse_json, sha256
from civicledger.errors import EncodingError
from civicledger.services.identity.status_list import StatusEntry
from civicledger.services.identity.vc import (
    VC_V2_CONTEXT,
    CredentialError,
    CredentialReason,
    format_datetime,
)

__all__ = [
    "CREDENTIAL_TYPES",
    "FAMILY_LOVE_CARD",
    "QUALIFICATION",
    "RESIDENT_CARD",
    "VCT_PREFIX",
    "VISITOR_PASS",
    "CredentialType",
    "age_over",
    "credential_id",
    "family_love_card_claims",
    "from_qr_payload",
    "qualification_credential",
    "resident_card_claims",
    "to_qr_payload",
    "type_of_vct",
    "visitor_pass_credential",
]

VCT_PREFIX = "urn:civicledger:credential:"
MAX_QR_PAYLOAD = 2_900
"""A version-40 QR code holds 2,953 bytes in byte mode at the lowest error correction."""


@dataclass(frozen=True, slots=True)
class CredentialType:
    """How one of the city's credential types is secured and checked."""

    name: str
    """The type name governance grants (``grant_issuer``: ``ResidentCard``, ...)."""
    sd_jwt: bool
    """True for an SD-JWT VC, False for a Data Integrity credential."""
    revocable: bool
    """A revocable credential must carry a ``credentialStatus`` and is checked against it."""

    @property
    def vct(self) -> str:
        return VCT_PREFIX + self.name


RESIDENT_CARD = CredentialType("ResidentCard", sd_jwt=True, revocable=True)
QUALIFICATION = CredentialType("Qualification", sd_jwt=False, revocable=True)
FAMILY_LOVE_CARD = CredentialType("FamilyLoveCard", sd_jwt=True, revocable=True)
VISITOR_PASS = CredentialType("VisitorPass", sd_jwt=False, revocable=True)
CREDENTIAL_TYPES: Mapping[str, CredentialType] = {
    t.name: t for t in (RESIDENT_CARD, QUALIFICATION, FAMILY_LOVE_CARD, VISITOR_PASS)
}
"""Every type the city's verifiers accept; anything else is refused (fail closed)."""


def _malformed(message: str) -> CredentialError:
    return CredentialError(CredentialReason.MALFORMED_CREDENTIAL, message)


def type_of_vct(vct: str) -> CredentialType:
    """The city credential type an SD-JWT ``vct`` names, or ``CredentialError``."""
    name = vct[len(VCT_PREFIX) :] if vct.startswith(VCT_PREFIX) else ""
    kind = CREDENTIAL_TYPES.get(name)
    if kind is None or not kind.sd_jwt:
        raise _malformed(f"{vct[:80]!r} is not an SD-JWT credential type of the city")
    return kind


def age_over(birthdate: date, years: int, on: date) -> bool:
    """Whether someone born on ``birthdate`` is at least ``years`` old on ``on``."""
    had_birthday = (on.month, on.day) >= (birthdate.month, birthdate.day)
    return on.year - birthdate.year - (0 if had_birthday else 1) >= years


def _status(entry: StatusEntry) -> dict[str, Any]:
    if not isinstance(entry, StatusEntry):
        raise _malformed("a revocable credential needs a StatusEntry")
    return entry.to_json()


def resident_card_claims(
    *,
    given_name: str,
    family_name: str,
    birthdate: date,
    address: str,
    district: str,
    status: StatusEntry,
    on: date,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The ResidentCard claims and the names to make disclosable (all personal ones).

    ``age_over_19`` is computed for ``on`` (the issuance date) so a verifier can learn "adult"
    without the birth date. ``credentialStatus`` stays visible: it holds no personal data and
    the verifier needs it.
    """
    for name, value in (("given_name", given_name), ("family_name", family_name)):
        if not value.strip():
            raise _malformed(f"{name} must not be empty")
    claims: dict[str, Any] = {
        "given_name": given_name,
        "family_name": family_name,
        "birthdate": birthdate.isoformat(),
        "address": address,
        "district": district,
        "age_over_19": age_over(birthdate, 19, on),
        "credentialStatus": _status(status),
    }
    disclosable = ("given_name", "family_name", "birthdate", "address", "district", "age_over_19")
    return claims, disclosable


def family_love_card_claims(
    *, children_birthdates: list[date], status: StatusEntry, on: date
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """FamilyLoveCard claims: only the count and "youngest under 19", never the children.

    Refuses a family that does not qualify (fewer than three children, or none under 19).
    """
    if len(children_birthdates) < 3:
        raise _malformed("a family love card needs three or more children")
    youngest = max(children_birthdates)
    if age_over(youngest, 19, on):
        raise _malformed("a family love card needs the youngest child under 19")
    claims = {
        "children_count": len(children_birthdates),
        "youngest_under_19": True,
        "credentialStatus": _status(status),
    }
    return claims, ("children_count", "youngest_under_19")


def qualification_credential(
    *,
    issuer: str,
    holder: str,
    qualification: str,
    license_number: str,
    valid_from: datetime,
    valid_until: datetime,
    status: StatusEntry,
) -> dict[str, Any]:
    """An unsigned Qualification credential (sign with ``data_integrity.issue_credential``).

    The subject is the holder's DID and what they are qualified as; no name: the holder proves
    it is them by signing the presentation with their DID's key.
    """
    if valid_until <= valid_from:
        raise _malformed("validUntil must follow validFrom")
    return {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiableCredential", QUALIFICATION.name],
        "issuer": issuer,
        "validFrom": format_datetime(valid_from),
        "validUntil": format_datetime(valid_until),
        "credentialSubject": {
            "id": holder,
            "qualification": qualification,
            "licenseNumber": license_number,
        },
        "credentialStatus": _status(status),
    }


def visitor_pass_credential(
    *,
    issuer: str,
    visitor: str,
    host: str,
    district: str,
    valid_from: datetime,
    valid_until: datetime,
    status: StatusEntry,
) -> dict[str, Any]:
    """An unsigned VisitorPass for ``visitor`` (a DID) invited by resident ``host`` (a DID).

    The issuer builds it only after verifying the host's ResidentCard presentation; ``host`` is
    the DID that presentation was bound to and ``district`` what it disclosed.
    """
    if valid_until <= valid_from:
        raise _malformed("validUntil must follow validFrom")
    return {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiableCredential", VISITOR_PASS.name],
        "issuer": issuer,
        "validFrom": format_datetime(valid_from),
        "validUntil": format_datetime(valid_until),
        "credentialSubject": {"id": visitor, "host": host, "district": district},
        "credentialStatus": _status(status),
    }


def credential_id(credential: Mapping[str, Any] | str) -> str:
    """A credential's id: the first 32 hex digits of SHA-256 of its RFC 8785 JSON bytes.

    The same for a DI credential (an object) wherever it is held, and what a wallet files it
    under; it covers the proof, so nobody who has not seen the signed credential can guess it.
    Raises ``EncodingError`` for something that is not JSON.
    """
    value: Any = credential if isinstance(credential, str) else dict(credential)
    return sha256(canonical_json(value)).hex()[:32]


def to_qr_payload(document: Mapping[str, Any]) -> str:
    """A QR-code payload for a credential or presentation: base64url of its RFC 8785 bytes."""
    payload = b64url(canonical_json(dict(document)))
    if len(payload) > MAX_QR_PAYLOAD:
        raise _malformed(f"the document is {len(payload)} characters, too big for a QR code")
    return payload


def from_qr_payload(payload: str) -> dict[str, Any]:
    """The document a QR payload carries; refuses anything but canonical base64url JSON."""
    if not isinstance(payload, str) or len(payload) > MAX_QR_PAYLOAD:
        raise _malformed("a QR payload is a string of at most a QR code's capacity")
    try:
        document = parse_json(from_b64url(payload))
    except EncodingError as e:
        raise _malformed(f"not a QR credential payload: {e.message}") from e
    if not isinstance(document, dict):
        raise _malformed("a QR payload carries a JSON object")
    return document
