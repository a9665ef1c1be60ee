"""The ``visits`` contract: pseudonymous check-ins of visitor passes at an agency's sites.

A gate checks a ``VisitorPass`` offline (``gate.Gate``) and later, back online, its agency
records each accepted check as ``{site, visit, pass_issuer, checked_at_ms}``. ``visit`` is the
pseudonym ``visit_pseudonym(credential_id)``: the ledger learns that *some* pass of
``pass_issuer`` was admitted at ``site`` at ``checked_at_ms``, never whose, nor who invited
them. Whoever knows the pass's id (its holder, the issuer) can recompute the pseudonym and
prove the visit with the check-in's inclusion proof.

Invariants:

- Only a key of the agency named in ``agency`` records check-ins of its own sites; root and
  other agencies cannot (``status_registry.own_agency``).
- ``checked_at_ms`` is never more than ``MAX_CLOCK_SKEW_MS`` after the block time (a gate's
  clock may run a little ahead of the producer's) and never more than ``MAX_CHECK_IN_AGE_MS``
  before it: block time is the only clock read.
- ``(agency, site, visit, checked_at_ms)`` is recorded at most once: ``check_in`` refuses a
  repeat (``duplicate_check_in``); ``check_in_batch`` skips entries already on the ledger and
  counts them, so a gate may re-send a batch whose receipt it never saw.
- A batch is all or nothing for the rest: one stale, future or repeated-within-the-batch entry
  fails the whole transaction, with the entry's index in the message.
- No personal data: the pseudonym is a hash of the pass's id, ``pass_issuer`` an agency's DID.

State (under ``visits/``):
    site/<agency>/<site>/<checked_at_ms, 16 digits>/<visit>   the record
    visit/<visit>/<agency>/<site>/<checked_at_ms, 16 digits>  the same record
    count/<agency>/<site>                                     number of check-ins
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from civicledger.contracts.base import Args, Contract, QueryContext, TxContext, query, transaction
from civicledger.crypto.encoding import sha256
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.identity.did_registry import DID_CIVIC_PATTERN, MAX_TIME_MS
from civicledger.services.identity.status_registry import own_agency

__all__ = [
    "CONTRACT_NAME",
    "MAX_BATCH",
    "MAX_CHECK_IN_AGE_MS",
    "MAX_CLOCK_SKEW_MS",
    "SITE_PATTERN",
    "VISIT_PATTERN",
    "Visits",
    "visit_pseudonym",
]

CONTRACT_NAME = "visits"
SITE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""A site's short id within its agency, e.g. ``main-gate``."""
VISIT_PATTERN = r"^[0-9a-f]{64}$"
MAX_BATCH = 500
"""Check-ins per ``check_in_batch``; a gate with more sends several transactions."""
MAX_CHECK_IN_AGE_MS = 7 * 24 * 3600 * 1000
"""How long (block time) after a check a gate may still upload it."""
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
"""How far a gate's clock may run ahead of the block producer's."""
_PSEUDONYM_DOMAIN = b"civicledger/visit/v1\x00"


def visit_pseudonym(credential_id: str) -> str:
    """The on-ledger pseudonym of the pass whose id is ``credential_id`` (hex SHA-256).

    ``credential_id`` is ``credentials.credential_id`` of the signed pass: unguessable by anyone
    who has not seen the pass, so the pseudonym cannot be linked to a visitor from outside.
    """
    if not isinstance(credential_id, str) or not credential_id:
        raise ValueError("a credential id is a non-empty string")
    return sha256(_PSEUDONYM_DOMAIN + credential_id.encode("utf-8")).hex()


class _CheckInFields(Args):
    site: str = Field(pattern=SITE_PATTERN)
    visit: str = Field(pattern=VISIT_PATTERN)
    """``visit_pseudonym`` of the pass's id."""
    pass_issuer: str = Field(pattern=DID_CIVIC_PATTERN)
    """The did:civic of the agency that issued the pass."""
    checked_at_ms: int = Field(ge=0, le=MAX_TIME_MS)
    """When the gate checked the pass (the gate's clock, ms)."""


class CheckIn(_CheckInFields):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    """The agency whose site admitted the visitor; the signer must hold one of its keys."""


class CheckInEntry(_CheckInFields):
    """One check-in of a batch; the batch names the agency."""


class CheckInBatch(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    check_ins: list[CheckInEntry] = Field(min_length=1, max_length=MAX_BATCH)


class SiteRef(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    site: str = Field(pattern=SITE_PATTERN)


class ListCheckIns(SiteRef):
    after: str = Field(default="", pattern=r"^([0-9]{16}/[0-9a-f]{64})?$")
    """Paginate: the ``next`` cursor of the previous page."""
    limit: int = Field(default=100, ge=1, le=1000)


class VisitRef(Args):
    visit: str = Field(pattern=VISIT_PATTERN)
    limit: int = Field(default=100, ge=1, le=1000)


def _site_prefix(agency: str, site: str) -> str:
    return f"site/{agency}/{site}/"


def _cursor(checked_at_ms: int, visit: str) -> str:
    return f"{checked_at_ms:016d}/{visit}"


def _site_key(agency: str, entry: _CheckInFields) -> str:
    return _site_prefix(agency, entry.site) + _cursor(entry.checked_at_ms, entry.visit)


def _visit_key(agency: str, entry: _CheckInFields) -> str:
    return f"visit/{entry.visit}/{agency}/{entry.site}/{entry.checked_at_ms:016d}"


def _count_key(agency: str, site: str) -> str:
    return f"count/{agency}/{site}"


class Visits(Contract):
    name = CONTRACT_NAME

    @transaction(CheckIn, policy=own_agency("agency"))
    def check_in(self, ctx: TxContext, args: CheckIn) -> dict[str, Any]:
        """Record one check-in at one of the signer's agency's sites."""
        self._check_time(ctx, args, "")
        if ctx.get(_site_key(args.agency, args)) is not None:
            ctx.fail("duplicate_check_in", "this check-in is already recorded")
        record = self._record(ctx, args.agency, args)
        ctx.emit("checked_in", agency=args.agency, site=args.site, count=1)
        return record

    @transaction(CheckInBatch, policy=own_agency("agency"))
    def check_in_batch(self, ctx: TxContext, args: CheckInBatch) -> dict[str, int]:
        """Record a gate's queued check-ins; those already on the ledger are skipped."""
        seen: set[str] = set()
        for index, entry in enumerate(args.check_ins):
            self._check_time(ctx, entry, f"check-in {index}: ")
            key = _site_key(args.agency, entry)
            if key in seen:
                ctx.fail("duplicate_check_in", f"check-in {index} repeats an earlier one")
            seen.add(key)
        recorded = 0
        for entry in args.check_ins:
            if ctx.get(_site_key(args.agency, entry)) is None:
                self._record(ctx, args.agency, entry)
                recorded += 1
        sites = sorted({entry.site for entry in args.check_ins})
        ctx.emit("checked_in", agency=args.agency, sites=sites, count=recorded)
        return {"recorded": recorded, "duplicates": len(args.check_ins) - recorded}

    @query(SiteRef)
    def count(self, ctx: QueryContext, args: SiteRef) -> Any:
        """How many check-ins a site has recorded."""
        return ctx.get(_count_key(args.agency, args.site)) or 0

    @query(ListCheckIns)
    def check_ins(self, ctx: QueryContext, args: ListCheckIns) -> Any:
        """A site's check-ins by check time, paginated: ``{"check_ins", "next"}``."""
        prefix = _site_prefix(args.agency, args.site)
        after = prefix + args.after if args.after else ""
        page = [record for _, record in ctx.scan(prefix, args.limit, after)]
        last = page[-1] if len(page) == args.limit else None
        cursor = None if last is None else _cursor(last["checked_at_ms"], last["visit"])
        return {"check_ins": page, "next": cursor}

    @query(VisitRef)
    def visits(self, ctx: QueryContext, args: VisitRef) -> Any:
        """Every check-in of one pass (by its pseudonym), by agency, site and time."""
        return [record for _, record in ctx.scan(f"visit/{args.visit}/", args.limit)]

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _check_time(ctx: TxContext, entry: _CheckInFields, where: str) -> None:
        if entry.checked_at_ms > ctx.time_ms + MAX_CLOCK_SKEW_MS:
            ctx.fail(
                "check_in_in_future",
                f"{where}checked at {entry.checked_at_ms}, after block time {ctx.time_ms}",
            )
        if entry.checked_at_ms < ctx.time_ms - MAX_CHECK_IN_AGE_MS:
            ctx.fail(
                "stale_check_in",
                f"{where}checked at {entry.checked_at_ms}, more than 7 days before block time",
            )

    @staticmethod
    def _record(ctx: TxContext, agency: str, entry: _CheckInFields) -> dict[str, Any]:
        record = {
            "agency": agency,
            "site": entry.site,
            "visit": entry.visit,
            "pass_issuer": entry.pass_issuer,
            "checked_at_ms": entry.checked_at_ms,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_site_key(agency, entry), record)
        ctx.put(_visit_key(agency, entry), record)
        count_key = _count_key(agency, entry.site)
        ctx.put(count_key, (ctx.get(count_key) or 0) + 1)
        return record
