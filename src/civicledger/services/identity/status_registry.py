"""The ``status_lists`` contract: issuers anchor each version of their Bitstring Status Lists.

At every update of a status list, a key of the agency that publishes it anchors
``{list_id, purpose, digest, version}``, where ``digest`` is
``status_list.list_credential_digest`` of the signed list credential. A verifier that checked a
credential against a list whose digest is anchored here can prove which list it checked (and
when it was current) with the anchoring transaction's inclusion proof.

Invariants:

- Lists are namespaced by agency: ``(agency, list_id)`` names a list, and only keys of that
  agency (not root, not another agency) may anchor it, so no one can squat another's list URL.
- Versions of a list are 1, 2, 3, ... with no gap and no repeat; every version is kept, with
  the block height and block time of its anchoring, so times are non-decreasing in version.
- A list keeps the purpose of its first version.
- Only ids and digests are stored: no personal data, no bitstrings.

State: ``list/<agency>/<h>`` holds the latest record of the list whose id hashes to ``h``
(SHA-256, hex, so any URL is a safe key) and ``list/<agency>/<h>/v/<version, 12 digits>`` each
version's record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from civicledger.contracts.authority import Authority
from civicledger.contracts.base import (
    Args,
    Contract,
    Policy,
    QueryContext,
    TxContext,
    query,
    transaction,
)
from civicledger.crypto.encoding import sha256
from civicledger.ledger.genesis import AGENCY_ID_PATTERN

__all__ = ["CONTRACT_NAME", "MAX_VERSION", "StatusListRegistry"]

CONTRACT_NAME = "status_lists"
MAX_VERSION = 10**12 - 1
"""Versions are stored as 12 zero-padded digits so key order is version order."""
_LIST_ID_PATTERN = r"^[!-~]{1,512}$"
"""Printable ASCII without spaces: in practice the list credential's URL."""


@dataclass(frozen=True)
class _OwnAgency:
    """Only a key of the (active) agency named by ``args.<field_name>``; root has no say here."""

    field_name: str
    description: str = ""

    def allows(self, authority: Authority, signer: str, args: Args) -> bool:
        target = getattr(args, self.field_name, None)
        return target is not None and authority.agency_of(signer) == target


def own_agency(field_name: str) -> Policy:
    return _OwnAgency(field_name, f"a key of the agency in {field_name!r}")


class AnchorList(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    """The publishing agency; the signer must hold one of its keys."""
    list_id: str = Field(pattern=_LIST_ID_PATTERN)
    """The list's id, normally its ``BitstringStatusListCredential`` URL."""
    purpose: Literal["revocation", "suspension"]
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 (hex) of the RFC 8785 bytes of the signed list credential."""
    version: int = Field(ge=1, le=MAX_VERSION)
    """Exactly one more than the last anchored version (1 for a new list)."""


class ListRef(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    list_id: str = Field(pattern=_LIST_ID_PATTERN)


class VersionRef(ListRef):
    version: int = Field(ge=1, le=MAX_VERSION)


class TimeRef(ListRef):
    time_ms: int = Field(ge=0, le=2**53 - 1)


def _list_key(agency: str, list_id: str) -> str:
    return f"list/{agency}/{sha256(list_id.encode()).hex()}"


def _version_key(agency: str, list_id: str, version: int) -> str:
    return f"{_list_key(agency, list_id)}/v/{version:012d}"


class StatusListRegistry(Contract):
    name = CONTRACT_NAME

    @transaction(AnchorList, policy=own_agency("agency"))
    def anchor(self, ctx: TxContext, args: AnchorList) -> dict[str, Any]:
        """Anchor the next version of one of the signer's agency's status lists."""
        latest = ctx.get(_list_key(args.agency, args.list_id))
        expected = 1 if latest is None else int(latest["version"]) + 1
        if args.version != expected:
            ctx.fail(
                "wrong_version",
                f"list {args.list_id!r} expects version {expected}, not {args.version}",
            )
        if latest is not None and latest["purpose"] != args.purpose:
            ctx.fail(
                "purpose_changed",
                f"list {args.list_id!r} is a {latest['purpose']} list, not {args.purpose}",
            )
        record = {
            "agency": args.agency,
            "list_id": args.list_id,
            "purpose": args.purpose,
            "digest": args.digest,
            "version": args.version,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_list_key(args.agency, args.list_id), record)
        ctx.put(_version_key(args.agency, args.list_id, args.version), record)
        ctx.emit(
            "status_list_anchored",
            agency=args.agency,
            list_id=args.list_id,
            version=args.version,
            digest=args.digest,
        )
        return record

    @query(ListRef)
    def latest(self, ctx: QueryContext, args: ListRef) -> Any:
        """The latest anchored version of a list, or null."""
        return ctx.get(_list_key(args.agency, args.list_id))

    @query(VersionRef)
    def at(self, ctx: QueryContext, args: VersionRef) -> Any:
        """One anchored version of a list, or null."""
        return ctx.get(_version_key(args.agency, args.list_id, args.version))

    @query(TimeRef)
    def as_of(self, ctx: QueryContext, args: TimeRef) -> Any:
        """The version current at block time ``time_ms``, or null if the list did not exist yet.

        That is the last version anchored in a block whose time is at most ``time_ms``.
        """
        latest = ctx.get(_list_key(args.agency, args.list_id))
        if latest is None:
            return None
        if latest["time_ms"] <= args.time_ms:
            return latest
        # Times are non-decreasing in version: binary search for the last version <= time_ms.
        low, high = 1, int(latest["version"]) - 1
        found = None
        while low <= high:
            middle = (low + high) // 2
            record = ctx.get(_version_key(args.agency, args.list_id, middle))
            if record["time_ms"] <= args.time_ms:
                found, low = record, middle + 1
            else:
                high = middle - 1
        return found
