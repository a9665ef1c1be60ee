"""A poll's registrar: checks a resident's eligibility off the ledger, registers a pseudonym on it.

A contract cannot see a presentation (it holds personal data) nor fetch status lists, so the
agency a poll names as its registrar does this once per voter and poll:

1. verify a presentation of the poll's credential type bound to the registrar's challenge;
2. check the poll's conditions on the disclosed claims (district in the poll's list,
   ``age_over_19`` for a minimum age of 19);
3. derive the voter's **per-poll pseudonym**: HMAC-SHA-256 under the registrar's own secret
   (``<city>/identity/<agency>/registrar.key``, 0600) of the poll id and the credential's
   identity on the ledger (issuer, status list, index). One credential gives one pseudonym per
   poll whatever wallet presents it ("twice under two wallets" is refused on the ledger as
   ``already_registered``); without the registrar's secret nobody, not even the issuer who
   knows which index went to whom, can link a pseudonym to a person or two polls' pseudonyms;
4. sign ``polls.register_voter(poll_id, pseudonym, voter_key, district)``, where ``voter_key``
   is the wallet's key for this poll only (``Wallet.poll_key``).

The registrar sees who registered with which voter key; for an open poll it could therefore
learn that voter's choices from the ledger. Secret polls do not have this weakness (ballots are
encrypted); blind-signature credentials would remove it for open polls too (not built).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from civicledger.agency.issuer import identity_dir
from civicledger.agency.ledger import AgencyLedger, TxFailed
from civicledger.city import CityDir
from civicledger.crypto.encoding import canonical_json
from civicledger.crypto.keys import PublicKey
from civicledger.errors import CivicError
from civicledger.files import read_private_file, write_new_file
from civicledger.services.identity.verifier import VerifiedCredential

__all__ = [
    "POLLS_CONTRACT",
    "Registrar",
    "RegistrarError",
    "Registration",
    "agency_secret",
    "district_code",
    "poll_pseudonym",
    "scoped_pseudonym",
]

POLLS_CONTRACT = "polls"
UNSPECIFIED_DISTRICT = "unspecified"
"""Recorded when a poll has no district condition and the voter disclosed none."""
_KEY_FILE = "registrar.key"
_PSEUDONYM_DOMAIN = "civicledger/poll-pseudonym/v1"

VerifyFn = Callable[[Mapping[str, Any] | str, str], tuple[VerifiedCredential, ...]]
"""``verify(presentation, expected_type)``: a verifier bound to the registrar's challenge."""


def district_code(district: str) -> str | None:
    """The code a poll uses for a resident card's district claim: its Latin part, lowercased,
    words joined by hyphens ("강남구 Gangnam-gu" → "gangnam-gu", "Riverside" → "riverside");
    a claim with no Latin letters gets a short hash code, so it is still counted apart."""
    words = re.findall(r"[a-z0-9]+", district.lower())
    if words:
        return "-".join(words)[:63].strip("-")
    if not district.strip():
        return None
    return "d-" + hashlib.sha256(district.strip().encode("utf-8")).hexdigest()[:12]


class RegistrarError(CivicError):
    """A registration was refused; ``reason`` says why (``unknown_poll``, ``wrong_registrar``,
    ``not_eligible``, ``missing_claim``, ``bad_voter_key``, or the ledger's reason such as
    ``already_registered``)."""

    reason = "registration_refused"


@dataclass(frozen=True)
class Registration:
    poll_id: str
    pseudonym: str
    voter_key: str
    district: str


def poll_pseudonym(secret: bytes, poll_id: str, verified: VerifiedCredential) -> str:
    """The voter's pseudonym in one poll, keyed by the registrar's secret."""
    return scoped_pseudonym(secret, poll_id, verified)


def scoped_pseudonym(secret: bytes, scope: str, verified: VerifiedCredential) -> str:
    """A credential's pseudonym within ``scope`` (a poll, a currency), keyed by an agency's
    secret: stable for one credential and scope, unlinkable across scopes."""
    if verified.status is None or not verified.status.list_id or verified.status.index < 0:
        raise RegistrarError(
            "the credential has no status entry to tell one credential from another",
            reason="not_eligible",
        )
    message = canonical_json(
        [
            _PSEUDONYM_DOMAIN,
            scope,
            verified.issuer,
            verified.status.list_id,
            verified.status.index,
        ]
    )
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def agency_secret(city: CityDir, agency: str) -> bytes:
    """Agency ``agency``'s pseudonym secret (``<city>/identity/<agency>/registrar.key``)."""
    return _secret(identity_dir(city, agency) / _KEY_FILE)


def _secret(path: Path) -> bytes:
    """The registrar's pseudonym secret, created (32 random bytes, 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Another process may make it first: then use theirs.
        with contextlib.suppress(FileExistsError):
            write_new_file(path.parent, path, secrets.token_bytes(32))
    try:
        secret = read_private_file(path, 64)
    except OSError as e:
        raise RegistrarError(
            f"cannot read the registrar secret: {e}", reason="bad_registrar_state"
        ) from e
    if len(secret) != 32:
        raise RegistrarError(f"{path} is not a registrar secret", reason="bad_registrar_state")
    return secret


class Registrar:
    """Agency ``agency`` registering voters for the polls that name it (see module docstring)."""

    def __init__(self, ledger: AgencyLedger, agency: str) -> None:
        self.ledger = ledger
        self.agency = agency
        self._key_path = identity_dir(ledger.city, agency) / _KEY_FILE

    def poll(self, poll_id: str) -> Mapping[str, Any]:
        record = self.ledger.query(POLLS_CONTRACT, "poll", {"poll_id": poll_id})
        if not isinstance(record, Mapping):
            raise RegistrarError(f"there is no poll {poll_id!r}", reason="unknown_poll")
        if record.get("registrar") != self.agency:
            raise RegistrarError(
                f"poll {poll_id!r} is registered by {record.get('registrar')!r}, not {self.agency}",
                reason="wrong_registrar",
            )
        return record

    def register(
        self,
        poll_id: str,
        presentation: Mapping[str, Any] | str,
        voter_key: str,
        verify: VerifyFn,
    ) -> Registration:
        """Check eligibility and register; raises ``RegistrarError`` or the verifier's error."""
        poll = self.poll(poll_id)
        try:
            PublicKey.from_did(voter_key)
        except CivicError as e:
            raise RegistrarError(
                f"the voter key must be a did:key: {e.message}", reason="bad_voter_key"
            ) from e
        eligibility = poll.get("eligibility") or {}
        (verified, *others) = verify(presentation, str(eligibility.get("credential_type")))
        if others:
            raise RegistrarError("present one credential to register", reason="not_eligible")
        district = self._check_conditions(eligibility, verified.claims)
        pseudonym = poll_pseudonym(_secret(self._key_path), poll_id, verified)
        args = {
            "poll_id": poll_id,
            "pseudonym": pseudonym,
            "voter_key": voter_key,
            "district": district,
        }
        try:
            self.ledger.send(self.agency, POLLS_CONTRACT, "register_voter", args)
        except TxFailed as e:
            raise RegistrarError(e.message, reason=e.reason) from e
        return Registration(poll_id, pseudonym, voter_key, district)

    @staticmethod
    def _check_conditions(eligibility: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        """The district code to record, after the poll's conditions hold on the claims."""
        districts = list(eligibility.get("districts") or [])
        disclosed = claims.get("district")
        code = district_code(disclosed) if isinstance(disclosed, str) else None
        if districts:
            if code is None:
                raise RegistrarError(
                    "this poll is for some districts only: disclose your district",
                    reason="missing_claim",
                )
            if code not in districts:
                raise RegistrarError(
                    f"residents of {disclosed} are not eligible for this poll",
                    reason="not_eligible",
                )
        min_age = eligibility.get("min_age")
        if min_age is not None:
            if "age_over_19" not in claims:
                raise RegistrarError(
                    f"this poll is for ages {min_age} and over: disclose age_over_19",
                    reason="missing_claim",
                )
            if claims["age_over_19"] is not True:
                raise RegistrarError(
                    f"this poll is for ages {min_age} and over", reason="not_eligible"
                )
        return code or UNSPECIFIED_DISTRICT
