"""Issuer authority, verifier side: may this agency issue this credential type at that time?

The rule itself lives on the ledger, in the built-in governance contract
(``civicledger.contracts.governance``): the city's root authority grants and revokes "agency X
may issue credential type T" with ``grant_issuer`` / ``revoke_issuer``, each grant keeping its
history as periods of block time, and deactivating an agency closes its open periods. A verifier
asks ``check_issuer`` and refuses a well-signed credential whose issuer lacked the right at the
credential's issuance time (fail closed: only ``did:civic`` agencies issue, and a query that
fails is a refusal).

Callers that send grants use ``GRANT_CONTRACT`` with ``GRANT_METHOD`` / ``REVOKE_METHOD`` and
the arguments ``{"agency", "credential_type"}``.
"""

from __future__ import annotations

import re

from civicledger.contracts.governance import CREDENTIAL_TYPE_PATTERN
from civicledger.errors import CivicError
from civicledger.services.identity.did_registry import agency_of_did
from civicledger.services.identity.resolver import QueryFn, query_result

__all__ = [
    "CREDENTIAL_TYPE_PATTERN",
    "GRANT_CONTRACT",
    "GRANT_METHOD",
    "REVOKE_METHOD",
    "IssuerNotAuthorized",
    "check_issuer",
]

GRANT_CONTRACT = "governance"
"""The contract that holds issuer grants (and answers ``may_issue``)."""
GRANT_METHOD = "grant_issuer"
REVOKE_METHOD = "revoke_issuer"

_TYPE_RE = re.compile(CREDENTIAL_TYPE_PATTERN)


class IssuerNotAuthorized(CivicError):  # noqa: N818  (reads as the verdict, like TxRejected)
    """The credential's issuer did not hold the right to issue its type at its issuance time."""

    reason = "issuer_not_authorized"


def check_issuer(
    query: QueryFn,
    issuer_did: str,
    credential_type: str,
    at_time_ms: int,
) -> str:
    """The issuing agency's id, if ``issuer_did`` might issue ``credential_type`` then.

    ``query`` is ``Chain.query`` or ``CivicClient.query`` (as for ``Resolver``). Raises
    ``IssuerNotAuthorized`` otherwise, including for a non-agency issuer, a malformed type or
    a query that fails (fail closed).
    """
    try:
        agency = agency_of_did(issuer_did)
    except ValueError as e:
        raise IssuerNotAuthorized(
            f"only agencies (did:civic) issue credentials, not {str(issuer_did)[:80]!r}"
        ) from e
    if not isinstance(credential_type, str) or not _TYPE_RE.fullmatch(credential_type):
        raise IssuerNotAuthorized(f"{str(credential_type)[:70]!r} is not a credential type")
    if isinstance(at_time_ms, bool) or not isinstance(at_time_ms, int):
        raise IssuerNotAuthorized("the issuance time must be an integer (ms)")
    args = {"agency": agency, "credential_type": credential_type, "at_time_ms": at_time_ms}
    try:
        answer = query(GRANT_CONTRACT, "may_issue", args)
    except CivicError as e:
        raise IssuerNotAuthorized(
            f"could not ask whether {issuer_did} may issue {credential_type}: {e.message}"
        ) from e
    if query_result(answer) is not True:
        raise IssuerNotAuthorized(f"{issuer_did} may not issue {credential_type} at {at_time_ms}")
    return agency
