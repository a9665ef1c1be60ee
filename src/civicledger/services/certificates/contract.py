"""The ``certificates`` contract: Merkle batches of documents, their status, who checked them.

An issuing agency anchors a whole batch (up to ``MAX_TREE_SIZE`` documents) in one transaction:
the ledger gets the batch's Merkle root, size, credential type, issue time and the issuer, never
a document. The issuer must hold the governance issuer right for the type at the block's time.
Later the issuer may revoke a certificate or mark it superseded by a reissue, and any agency may
record that it verified one; all three are keyed by the certificate's *reference* (a salted hash
of its id, ``document.certificate_ref``), so the ledger never links them to a person and nobody
without the document can enumerate them.

Invariants:

- A batch id is used once per issuer; a batch record never changes.
- A status is written under the issuer's own namespace (``status/<issuer>/<ref>``), only by a key
  of that issuer, at most once (revoked and superseded are final), and only for a batch of that
  issuer; a revocation needs no issuer right (taking a document back is always allowed).
- At most ``MAX_VERIFICATIONS`` verifications per certificate (bounded state).

State (under ``certificates/``):
    batch/<issuer>/<batch_id>   {batch_id, issuer, certificate_type, root, size, issued_at_ms,
                                 anchored_ms, height, tx_id, metadata}
    status/<issuer>/<ref>       {state: revoked|superseded, reason, by: {ref, batch_id} | null,
                                 batch_id, time_ms, height}
    seen/<ref>                  the number of recorded verifications
    seen/<ref>/<seq,6>          {agency, purpose, time_ms, height}
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from civicledger.contracts.base import (
    AGENCY_MEMBER,
    Args,
    Contract,
    QueryContext,
    TxContext,
    query,
    transaction,
)
from civicledger.contracts.governance import CREDENTIAL_TYPE_PATTERN
from civicledger.ledger.genesis import AGENCY_ID_PATTERN
from civicledger.services.certificates.document import (
    BATCH_ID_PATTERN,
    MAX_TREE_SIZE,
    REF_PATTERN,
)

__all__ = [
    "CONTRACT_NAME",
    "MAX_VERIFICATIONS",
    "REASON_PATTERN",
    "Certificates",
]

CONTRACT_NAME = "certificates"
REASON_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
"""Revocation reasons and verification purposes are codes, never free text (no personal data)."""
MAX_VERIFICATIONS = 1_000
MAX_METADATA = 8
MAX_PAGE = 1_000
ISSUE_FUTURE_MS = 5 * 60_000
"""An issue time may be up to 5 minutes after the block (the issuer's clock drifts)..."""
ISSUE_PAST_MS = 7 * 86_400_000
"""...and up to 7 days before it (a batch prepared, then anchored later)."""
MAX_TIME_MS = 2**53 - 1


class AnchorBatch(Args):
    batch_id: str = Field(pattern=BATCH_ID_PATTERN)
    root: str = Field(pattern=REF_PATTERN)
    """The RFC 9162 root of the batch's leaf hashes, in hex."""
    size: int = Field(ge=1, le=MAX_TREE_SIZE)
    certificate_type: str = Field(pattern=CREDENTIAL_TYPE_PATTERN)
    issued_at_ms: int = Field(ge=0, le=MAX_TIME_MS)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=MAX_METADATA)
    """Codes only (a template version, a programme): ``{code: code}``, nothing personal."""


class Revoke(Args):
    batch_id: str = Field(pattern=BATCH_ID_PATTERN)
    ref: str = Field(pattern=REF_PATTERN)
    reason: str = Field(pattern=REASON_PATTERN)


class Supersede(Args):
    batch_id: str = Field(pattern=BATCH_ID_PATTERN)
    ref: str = Field(pattern=REF_PATTERN)
    new_batch_id: str = Field(pattern=BATCH_ID_PATTERN)
    new_ref: str = Field(pattern=REF_PATTERN)
    reason: str = Field(default="reissued", pattern=REASON_PATTERN)


class RecordVerification(Args):
    ref: str = Field(pattern=REF_PATTERN)
    purpose: str = Field(pattern=REASON_PATTERN)


class BatchRef(Args):
    issuer: str = Field(pattern=AGENCY_ID_PATTERN)
    batch_id: str = Field(pattern=BATCH_ID_PATTERN)


class BatchesPage(Args):
    issuer: str = Field(pattern=AGENCY_ID_PATTERN)
    after: str = Field(default="", max_length=64)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class StatusRef(Args):
    issuer: str = Field(pattern=AGENCY_ID_PATTERN)
    ref: str = Field(pattern=REF_PATTERN)


class VerificationsPage(Args):
    ref: str = Field(pattern=REF_PATTERN)
    after: int = Field(default=0, ge=0, le=MAX_VERIFICATIONS)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


def _code_map(ctx: TxContext, metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        if re.fullmatch(REASON_PATTERN, key) is None or re.fullmatch(REASON_PATTERN, value) is None:
            ctx.fail("bad_metadata", "batch metadata holds codes only ([a-z0-9_], 1..48)")


def _held_at(grant: Any, time_ms: int) -> bool:
    """Whether a governance issuer grant (``authority.issuer_key``) was in force at ``time_ms``."""
    if not isinstance(grant, dict):
        return False
    return any(
        p["granted_ms"] <= time_ms and (p["revoked_ms"] is None or time_ms < p["revoked_ms"])
        for p in grant.get("periods", [])
    )


class Certificates(Contract):
    name = CONTRACT_NAME

    @transaction(AnchorBatch, policy=AGENCY_MEMBER)
    def anchor_batch(self, ctx: TxContext, args: AnchorBatch) -> dict[str, Any]:
        """Anchor a batch's Merkle root for the signer's agency, which must hold the issuer
        right for the type now (block time)."""
        issuer = self._agency(ctx)
        grant = ctx.read("governance", f"issuer/{issuer}/{args.certificate_type}")
        if not _held_at(grant, ctx.time_ms):
            ctx.fail(
                "not_issuer", f"{issuer} may not issue {args.certificate_type} certificates now"
            )
        if args.issued_at_ms > ctx.time_ms + ISSUE_FUTURE_MS:
            ctx.fail("issued_in_future", "the batch's issue time is after the block's time")
        if args.issued_at_ms < ctx.time_ms - ISSUE_PAST_MS:
            ctx.fail("stale_issue", "the batch's issue time is more than 7 days old")
        _code_map(ctx, args.metadata)
        key = f"batch/{issuer}/{args.batch_id}"
        if ctx.get(key) is not None:
            ctx.fail("batch_exists", f"{issuer} already anchored batch {args.batch_id!r}")
        record = {
            **args.model_dump(),
            "issuer": issuer,
            "anchored_ms": ctx.time_ms,
            "height": ctx.height,
            "tx_id": ctx.tx_id,
        }
        ctx.put(key, record)
        ctx.emit(
            "batch_anchored",
            issuer=issuer,
            batch_id=args.batch_id,
            size=args.size,
            certificate_type=args.certificate_type,
        )
        return record

    @transaction(Revoke, policy=AGENCY_MEMBER)
    def revoke(self, ctx: TxContext, args: Revoke) -> dict[str, Any]:
        """The issuer takes a certificate of one of its batches back, with a reason code."""
        issuer = self._agency(ctx)
        self._batch(ctx, issuer, args.batch_id)
        record = {"state": "revoked", "reason": args.reason, "by": None}
        return self._set_status(ctx, issuer, args.ref, args.batch_id, record)

    @transaction(Supersede, policy=AGENCY_MEMBER)
    def supersede(self, ctx: TxContext, args: Supersede) -> dict[str, Any]:
        """The issuer replaces a certificate by a reissued one (already anchored)."""
        issuer = self._agency(ctx)
        self._batch(ctx, issuer, args.batch_id)
        self._batch(ctx, issuer, args.new_batch_id)
        if args.new_ref == args.ref:
            ctx.fail("same_certificate", "a certificate cannot supersede itself")
        if ctx.get(f"status/{issuer}/{args.new_ref}") is not None:
            ctx.fail("replacement_not_valid", "the replacement is revoked or superseded itself")
        by = {"ref": args.new_ref, "batch_id": args.new_batch_id}
        record = {"state": "superseded", "reason": args.reason, "by": by}
        return self._set_status(ctx, issuer, args.ref, args.batch_id, record)

    @transaction(RecordVerification, policy=AGENCY_MEMBER)
    def record_verification(self, ctx: TxContext, args: RecordVerification) -> dict[str, Any]:
        """An agency records that it checked a certificate, and why: the holder can see who
        (the signer's agency) and when (block time)."""
        agency = self._agency(ctx)
        count_key = f"seen/{args.ref}"
        count = ctx.get(count_key) or 0
        if count >= MAX_VERIFICATIONS:
            ctx.fail("too_many_verifications", "this certificate's verification log is full")
        entry = {
            "seq": count + 1,
            "agency": agency,
            "purpose": args.purpose,
            "time_ms": ctx.time_ms,
            "height": ctx.height,
        }
        ctx.put(f"{count_key}/{count + 1:06d}", entry)
        ctx.put(count_key, count + 1)
        ctx.emit("certificate_verified", agency=agency, purpose=args.purpose)
        return entry

    # -- queries --

    @query(BatchRef)
    def batch(self, ctx: QueryContext, args: BatchRef) -> Any:
        """One batch record, or null."""
        return ctx.get(f"batch/{args.issuer}/{args.batch_id}")

    @query(BatchesPage)
    def batches(self, ctx: QueryContext, args: BatchesPage) -> Any:
        """An issuer's batches by id, paginated with ``after`` (a batch id)."""
        prefix = f"batch/{args.issuer}/"
        after = prefix + args.after if args.after else ""
        return [value for _, value in ctx.scan(prefix, args.limit, after)]

    @query(StatusRef)
    def status(self, ctx: QueryContext, args: StatusRef) -> Any:
        """The certificate's status record (revoked or superseded), or null (not taken back)."""
        return ctx.get(f"status/{args.issuer}/{args.ref}")

    @query(VerificationsPage)
    def verifications(self, ctx: QueryContext, args: VerificationsPage) -> Any:
        """Who verified the certificate and when, oldest first: ``{"entries", "count", "next"}``."""
        count = ctx.get(f"seen/{args.ref}") or 0
        prefix = f"seen/{args.ref}/"
        after = f"{prefix}{args.after:06d}" if args.after else ""
        entries = [value for _, value in ctx.scan(prefix, args.limit, after)]
        last = entries[-1]["seq"] if entries else args.after
        return {"entries": entries, "count": count, "next": last if last < count else None}

    # -- helpers --

    @staticmethod
    def _agency(ctx: TxContext) -> str:
        agency = ctx.authority.agency_of(ctx.signer)
        if agency is None:  # The policy already requires it; kept so the type is narrowed.
            ctx.fail("not_an_agency", "the signer is not a key of an active agency")
        return agency

    @staticmethod
    def _batch(ctx: TxContext, issuer: str, batch_id: str) -> dict[str, Any]:
        record = ctx.get(f"batch/{issuer}/{batch_id}")
        if not isinstance(record, dict):
            ctx.fail("unknown_batch", f"{issuer} has no batch {batch_id!r}")
        return record

    @staticmethod
    def _set_status(
        ctx: TxContext, issuer: str, ref: str, batch_id: str, record: dict[str, Any]
    ) -> dict[str, Any]:
        key = f"status/{issuer}/{ref}"
        current = ctx.get(key)
        if current is not None:
            ctx.fail(f"already_{current['state']}", f"the certificate is {current['state']}")
        record = {**record, "batch_id": batch_id, "time_ms": ctx.time_ms, "height": ctx.height}
        ctx.put(key, record)
        ctx.emit(f"certificate_{record['state']}", issuer=issuer, ref=ref)
        return record
