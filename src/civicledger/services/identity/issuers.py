"""Issuer authority: which agency may issue which credential type, and since when.

The city's root authority grants and revokes "agency X may issue credential type T" (types such
as ``ResidentCard``, ``Qualification``, ``FamilyLoveCard``, ``VisitorPass``). A verifier asks
``check_issuer`` and refuses a well-signed credential whose issuer lacked the right at the
credential's issuance time. The rule lives in its own contract rather than in governance so the
identity service can be added without touching the built-ins; it may be folded in later.

Invariants:

- Each grant keeps its whole history as periods ``[granted_ms, revoked_ms)`` of block time
  (``ctx.time_ms``, never the clock), at most one of them open, in order. ``may_issue`` at a
  time inside a period is true, anywhere else false (fail closed: unknown agency or type is
  false too).
- Only agencies (``did:civic``) issue; a ``did:key`` issuer never has issuer authority.

State (under ``issuers/``):
    grant/<agency>/<type>   {"agency", "type", "active", "periods": [{"granted_ms",
                            "granted_height", "revoked_ms", "revoked_height"}]}
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from civicledger.contracts.base import (
    ROOT,
    Args,
    Contract,
    QueryContext,
    TxContext,
    query,
    transaction,
)
from civicledger.errors import CivicError
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.identity.did_registry import MAX_TIME_MS, agency_of_did
from civicledger.services.identity.resolver import QueryFn, query_result

__all__ = [
    "CREDENTIAL_TYPE_PATTERN",
    "ISSUERS_CONTRACT",
    "IssuerNotAuthorized",
    "Issuers",
    "check_issuer",
]

ISSUERS_CONTRACT = "issuers"
CREDENTIAL_TYPE_PATTERN = r"^[A-Z][A-Za-z0-9]{0,63}$"
MAX_PERIODS = 100
"""Grant/revoke cycles kept per (agency, type); bounds the record a verifier reads."""

_TYPE_RE = re.compile(CREDENTIAL_TYPE_PATTERN)


class IssuerNotAuthorized(CivicError):  # noqa: N818  (reads as the verdict, like TxRejected)
    """The credential's issuer did not hold the right to issue its type at its issuance time."""

    reason = "issuer_not_authorized"


class Grant(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    credential_type: str = Field(pattern=CREDENTIAL_TYPE_PATTERN)


class MayIssue(Grant):
    at_time_ms: int | None = Field(default=None, ge=0, le=MAX_TIME_MS)
    """Block time to ask about; default: the head block's time."""


class ListGrants(Args):
    agency: str | None = Field(default=None, pattern=AGENCY_ID_PATTERN)
    """Only this agency's grants."""
    after: str = ""
    """Paginate: the ``<agency>/<type>`` of the last grant already seen."""
    limit: int = Field(default=100, ge=1, le=1000)


def _grant_key(agency: str, credential_type: str) -> str:
    return f"grant/{agency}/{credential_type}"


def _in_force(record: Any, at_time_ms: int) -> bool:
    if not isinstance(record, dict):
        return False
    return any(
        p["granted_ms"] <= at_time_ms and (p["revoked_ms"] is None or at_time_ms < p["revoked_ms"])
        for p in record["periods"]
    )


class Issuers(Contract):
    name = ISSUERS_CONTRACT

    @transaction(Grant, policy=ROOT)
    def grant(self, ctx: TxContext, args: Grant) -> dict[str, Any]:
        """Let an active agency issue a credential type from this block on."""
        agency = ctx.authority.agency(args.agency)
        if agency is None:
            ctx.fail("unknown_agency", f"no agency {args.agency!r} is registered")
        if agency.get("active") is not True:
            ctx.fail("agency_inactive", f"agency {args.agency!r} is deactivated")
        key = _grant_key(args.agency, args.credential_type)
        record = ctx.get(key) or {
            "agency": args.agency,
            "type": args.credential_type,
            "active": False,
            "periods": [],
        }
        if record["active"]:
            ctx.fail("already_granted", f"{args.agency!r} may already issue {args.credential_type}")
        if len(record["periods"]) >= MAX_PERIODS:
            ctx.fail("too_many_changes", f"at most {MAX_PERIODS} grants per agency and type")
        record["active"] = True
        record["periods"].append(
            {
                "granted_ms": ctx.time_ms,
                "granted_height": ctx.height,
                "revoked_ms": None,
                "revoked_height": None,
            }
        )
        ctx.put(key, record)
        ctx.emit("issuer_granted", agency=args.agency, credential_type=args.credential_type)
        return record

    @transaction(Grant, policy=ROOT)
    def revoke(self, ctx: TxContext, args: Grant) -> dict[str, Any]:
        """End an agency's right to issue a type; credentials issued before stay valid."""
        key = _grant_key(args.agency, args.credential_type)
        record = ctx.get(key)
        if not isinstance(record, dict) or not record["active"]:
            ctx.fail("not_granted", f"{args.agency!r} may not issue {args.credential_type}")
        record["active"] = False
        record["periods"][-1]["revoked_ms"] = ctx.time_ms
        record["periods"][-1]["revoked_height"] = ctx.height
        ctx.put(key, record)
        ctx.emit("issuer_revoked", agency=args.agency, credential_type=args.credential_type)
        return record

    @query(MayIssue)
    def may_issue(self, ctx: QueryContext, args: MayIssue) -> Any:
        """Whether the agency held the right at ``at_time_ms`` (default: the head's time)."""
        when = ctx.time_ms if args.at_time_ms is None else args.at_time_ms
        return _in_force(ctx.get(_grant_key(args.agency, args.credential_type)), when)

    @query(Grant)
    def history(self, ctx: QueryContext, args: Grant) -> Any:
        """One grant record with all its periods, or null if it was never granted."""
        return ctx.get(_grant_key(args.agency, args.credential_type))

    @query(ListGrants)
    def list(self, ctx: QueryContext, args: ListGrants) -> Any:
        """Grant records (current and past) in agency/type order, paginated with ``after``."""
        prefix = f"grant/{args.agency}/" if args.agency else "grant/"
        after = "grant/" + args.after if args.after else ""
        return [record for _, record in ctx.scan(prefix, args.limit, after)]


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
        answer = query(ISSUERS_CONTRACT, "may_issue", args)
    except CivicError as e:
        raise IssuerNotAuthorized(
            f"could not ask whether {issuer_did} may issue {credential_type}: {e.message}"
        ) from e
    if query_result(answer) is not True:
        raise IssuerNotAuthorized(f"{issuer_did} may not issue {credential_type} at {at_time_ms}")
    return agency
