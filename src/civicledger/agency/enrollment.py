"""Enrolling a resident in a city currency: the credential is checked off the ledger, the
ledger gets an account key, a coarse region and a per-currency pseudonym of the credential.

Who may hold a currency is a credential type (``holder_credential``: a resident card for the
help coin, a family-love card for a family voucher). An agency with the governance role
``enroller`` verifies the resident's presentation of that type (bound to its challenge), then
signs ``currency.enroll(account, region, holder_ref)``. ``holder_ref`` is the credential's
pseudonym in this currency under the enroller's secret (the registrar's mechanism,
``agency.registrar.scoped_pseudonym``): one credential gets one account per currency whichever
wallet asks (``credential_enrolled``), and accounts in two currencies cannot be linked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from civicledger.agency.ledger import AgencyLedger, TxFailed
from civicledger.agency.registrar import (
    RegistrarError,
    VerifyFn,
    agency_secret,
    district_code,
    scoped_pseudonym,
)
from civicledger.crypto.keys import PublicKey
from civicledger.errors import CivicError

__all__ = ["Enrollment", "enroll_holder"]

CURRENCY_CONTRACT = "currency"


@dataclass(frozen=True)
class Enrollment:
    currency_id: str
    account: str
    region: str | None
    holder_ref: str


def enroll_holder(
    ledger: AgencyLedger,
    enroller: str,
    currency_id: str,
    presentation: Mapping[str, Any] | str,
    account: str,
    verify: VerifyFn,
) -> Enrollment:
    """Verify, derive the pseudonym, enrol; raises ``RegistrarError`` (with the ledger's
    reason when the transaction is refused) or the verifier's error."""
    definition = ledger.query(CURRENCY_CONTRACT, "currency", {"currency_id": currency_id})
    if not isinstance(definition, Mapping):
        raise RegistrarError(f"there is no currency {currency_id!r}", reason="unknown_currency")
    try:
        PublicKey.from_did(account)
    except CivicError as e:
        raise RegistrarError(
            f"the account must be a did:key: {e.message}", reason="bad_account"
        ) from e
    (verified, *others) = verify(presentation, str(definition["holder_credential"]))
    if others:
        raise RegistrarError("present one credential to enrol", reason="not_eligible")
    district = verified.claims.get("district")
    region = district_code(district) if isinstance(district, str) else None
    holder_ref = scoped_pseudonym(
        agency_secret(ledger.city, enroller), f"currency:{currency_id}", verified
    )
    args = {
        "currency_id": currency_id,
        "account": account,
        "region": region,
        "holder_ref": holder_ref,
    }
    try:
        ledger.send(enroller, CURRENCY_CONTRACT, "enroll", args)
    except TxFailed as e:
        raise RegistrarError(e.message, reason=e.reason) from e
    return Enrollment(currency_id, account, region, holder_ref)
