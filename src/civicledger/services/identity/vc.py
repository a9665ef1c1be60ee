"""W3C Verifiable Credentials Data Model 2.0: the checks every securing mechanism shares.

Pure: documents are plain JSON dicts, time is passed in as ``now`` (a timezone-aware datetime),
nothing here reads the clock or the network.

Invariants:

- Every rejection is a ``CredentialError`` whose ``reason`` is one of ``CredentialReason``.
- ``check_credential`` only passes a document whose first ``@context`` is the VC 2.0 context, whose
  ``type`` names ``VerifiableCredential``, with an issuer, a subject, and a validity period (if
  any) that contains ``now``. It checks shape, not signatures: securing is the caller's business
  (``data_integrity`` or ``sdjwt``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from civicledger.errors import CivicError

__all__ = [
    "VC_V2_CONTEXT",
    "CredentialError",
    "CredentialReason",
    "check_credential",
    "check_presentation",
    "format_datetime",
    "issuer_id",
    "parse_datetime",
    "require_aware",
]

VC_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"


class CredentialReason(StrEnum):
    """Why a credential or presentation was refused; stable codes for clients and logs."""

    MALFORMED_CREDENTIAL = "malformed_credential"
    MALFORMED_PROOF = "malformed_proof"
    UNSUPPORTED_CRYPTOSUITE = "unsupported_cryptosuite"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNRESOLVABLE_KEY = "unresolvable_key"
    BAD_PROOF_SIGNATURE = "bad_proof_signature"
    WRONG_PROOF_PURPOSE = "wrong_proof_purpose"
    ISSUER_MISMATCH = "issuer_mismatch"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    WRONG_CHALLENGE = "wrong_challenge"
    WRONG_DOMAIN = "wrong_domain"
    MALFORMED_DISCLOSURE = "malformed_disclosure"
    UNREFERENCED_DISCLOSURE = "unreferenced_disclosure"
    MISSING_KEY_BINDING = "missing_key_binding"
    BAD_KEY_BINDING = "bad_key_binding"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_NONCE = "wrong_nonce"
    STALE_KEY_BINDING = "stale_key_binding"


class CredentialError(CivicError):
    """A verifiable credential, presentation or proof was refused; see ``CredentialReason``."""

    reason = CredentialReason.MALFORMED_CREDENTIAL.value

    def __init__(self, reason: CredentialReason, message: str) -> None:
        super().__init__(message, reason=reason.value)
        self.credential_reason = reason


# XML Schema dateTimeStamp as VC 2.0 uses it: a date, a time and a mandatory offset.
_DATETIME_PATTERN = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def parse_datetime(value: object, *, field: str) -> datetime:
    """Parse an XML Schema ``dateTimeStamp`` (offset required) into an aware datetime."""
    if not isinstance(value, str) or _DATETIME_PATTERN.fullmatch(value) is None:
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL,
            f"{field} must be a date-time with a time zone offset, got {str(value)[:40]!r}",
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError as e:
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL, f"{field} is not a valid date-time: {value!r}"
        ) from e


def format_datetime(moment: datetime) -> str:
    """``moment`` in UTC as ``YYYY-MM-DDThh:mm:ssZ`` (whole seconds), the form the specs show."""
    require_aware(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def require_aware(now: datetime) -> None:
    """Refuse a naive datetime: comparing it with an offset date-time would guess a zone."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("time must be a timezone-aware datetime")


def _require_context(document: Mapping[str, Any]) -> None:
    context = document.get("@context")
    if not isinstance(context, list) or not context or context[0] != VC_V2_CONTEXT:
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL,
            f"@context must be a list starting with {VC_V2_CONTEXT}",
        )


def _require_type(document: Mapping[str, Any], name: str) -> None:
    kind = document.get("type")
    names = [kind] if isinstance(kind, str) else kind
    if not isinstance(names, list) or name not in names:
        raise CredentialError(CredentialReason.MALFORMED_CREDENTIAL, f"type must include {name}")


def issuer_id(credential: Mapping[str, Any]) -> str:
    """The issuer's identifier: ``issuer`` itself, or ``issuer.id`` when it is an object."""
    issuer = credential.get("issuer")
    if isinstance(issuer, Mapping):
        issuer = issuer.get("id")
    if not isinstance(issuer, str) or ":" not in issuer:
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL, "issuer must be a URL or an object with an id"
        )
    return issuer


def check_credential(
    credential: object, *, now: datetime, allow_not_yet_valid: bool = False
) -> None:
    """Raise ``CredentialError`` unless ``credential`` is a VC 2.0 credential valid at ``now``.

    ``allow_not_yet_valid`` is for issuers: a pass for tomorrow may be signed today, but no one
    signs a credential that has already expired.
    """
    require_aware(now)
    if not isinstance(credential, Mapping):
        raise CredentialError(CredentialReason.MALFORMED_CREDENTIAL, "a credential is an object")
    _require_context(credential)
    _require_type(credential, "VerifiableCredential")
    issuer_id(credential)
    subject = credential.get("credentialSubject")
    subjects = subject if isinstance(subject, list) else [subject]
    if not subjects or not all(isinstance(s, Mapping) and s for s in subjects):
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL,
            "credentialSubject must be a non-empty object or list of objects",
        )
    valid_from = valid_until = None
    if "validFrom" in credential:
        valid_from = parse_datetime(credential["validFrom"], field="validFrom")
    if "validUntil" in credential:
        valid_until = parse_datetime(credential["validUntil"], field="validUntil")
    if valid_from is not None and valid_until is not None and valid_until < valid_from:
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL, "validUntil is before validFrom"
        )
    if valid_from is not None and now < valid_from and not allow_not_yet_valid:
        raise CredentialError(
            CredentialReason.NOT_YET_VALID, f"credential is valid from {credential['validFrom']}"
        )
    if valid_until is not None and now > valid_until:
        raise CredentialError(
            CredentialReason.EXPIRED, f"credential expired at {credential['validUntil']}"
        )


def check_presentation(presentation: object) -> None:
    """Raise ``CredentialError`` unless ``presentation`` is shaped as a VC 2.0 presentation."""
    if not isinstance(presentation, Mapping):
        raise CredentialError(CredentialReason.MALFORMED_CREDENTIAL, "a presentation is an object")
    _require_context(presentation)
    _require_type(presentation, "VerifiablePresentation")
    credentials = presentation.get("verifiableCredential", [])
    if not isinstance(credentials, list):
        raise CredentialError(
            CredentialReason.MALFORMED_CREDENTIAL, "verifiableCredential must be a list"
        )
