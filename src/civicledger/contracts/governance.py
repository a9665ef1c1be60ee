"""The built-in governance contract: the city's root authority registers agencies and grants roles.

Every other contract asks ``Authority`` (which reads what this contract writes) who may do what.
It also says which agency may issue which credential type (``ResidentCard``, ``Qualification``,
``FamilyLoveCard``, ``VisitorPass``…): a verifier refuses a well-signed credential from an
agency that lacked that right at the credential's issuance time.

Invariants:

- A key belongs to at most one agency; a deactivated agency's keys authorise nothing.
- Each issuer grant keeps its whole history as periods ``[granted_ms, revoked_ms)`` of block
  time (``ctx.time_ms``, never the clock), in order, at most one of them open and at most
  ``MAX_ISSUER_PERIODS`` of them. ``may_issue`` at a time inside a period is true, anywhere
  else false (fail closed: an unknown agency or type is false too).
- An agency holds grants for at most ``MAX_ISSUER_TYPES`` credential types (current or past),
  so deactivating it, which closes every open period in the same transaction, is bounded work.
- Only an active agency holds an open period: a deactivated agency can neither keep nor get one.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from civicledger.contracts.authority import (
    ISSUER_PREFIX,
    ROOT_ROLE,
    active_key,
    agency_key,
    issuer_key,
    member_key,
    role_key,
    root_key,
)
from civicledger.contracts.base import (
    PUBLIC,
    ROOT,
    Args,
    Contract,
    QueryContext,
    TxContext,
    query,
    root_or_own_agency,
    transaction,
)
from civicledger.crypto.encoding import canonical_json
from civicledger.ledger.genesis import AGENCY_ID_PATTERN, Genesis, check_did_key
from civicledger.ledger.state import WriteSet

ROLE_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
_ROLE_RE = re.compile(ROLE_PATTERN)
MAX_KEYS_PER_AGENCY = 256
CREDENTIAL_TYPE_PATTERN = r"^[A-Z][A-Za-z0-9]{0,63}$"
"""A credential type as the issuer grants name it (``ResidentCard``): the VC ``type`` after
``VerifiableCredential``."""
MAX_ISSUER_PERIODS = 100
"""Grant/revoke cycles kept per (agency, type); bounds the record a verifier reads."""
MAX_ISSUER_TYPES = 64
"""Credential types (ever granted) per agency; bounds the scan when the agency is deactivated."""
MAX_TIME_MS = 2**53 - 1
"""The largest block time a query may ask about (the largest integer JSON keeps exactly)."""


class RegisterAgency(Args):
    id: str = Field(pattern=AGENCY_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    keys: list[str] = Field(min_length=1, max_length=MAX_KEYS_PER_AGENCY)

    @field_validator("keys")
    @classmethod
    def _dids(cls, keys: list[str]) -> list[str]:
        return [check_did_key(k) for k in keys]


class AgencyKey(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    key: str

    @field_validator("key")
    @classmethod
    def _did(cls, key: str) -> str:
        return check_did_key(key)


class AgencyRole(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    role: str = Field(pattern=ROLE_PATTERN)


class AgencyRef(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)


class RoleRef(Args):
    role: str = Field(pattern=ROLE_PATTERN)
    after: str = ""
    """Paginate: agency ids after this one."""
    limit: int = Field(default=100, ge=1, le=1000)


class SignerRef(Args):
    did: str


class ListArgs(Args):
    after: str = ""
    limit: int = Field(default=100, ge=1, le=1000)


class IssuerGrant(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    credential_type: str = Field(pattern=CREDENTIAL_TYPE_PATTERN)


class MayIssue(IssuerGrant):
    at_time_ms: int | None = Field(default=None, ge=0, le=MAX_TIME_MS)
    """Block time to ask about; default: the head block's time."""


class ListIssuerGrants(Args):
    agency: str | None = Field(default=None, pattern=AGENCY_ID_PATTERN)
    """Only this agency's grants."""
    after: str = ""
    """Paginate: the ``<agency>/<type>`` of the last grant already seen."""
    limit: int = Field(default=100, ge=1, le=1000)


def genesis_writes(genesis: Genesis) -> WriteSet:
    """State written at height 0: the root authority and the genesis agencies with their roles."""
    writes: WriteSet = {}
    for did in genesis.root_authorities:
        writes[root_key(did)] = canonical_json(True)
    for agency in genesis.agencies:
        record = _agency_record(agency.id, agency.name, list(agency.keys), 0)
        record["roles"] = sorted(set(agency.roles))
        writes[agency_key(agency.id)] = canonical_json(record)
        writes[active_key(agency.id)] = canonical_json(True)
        for did in agency.keys:
            writes[member_key(did)] = canonical_json(agency.id)
        for role in record["roles"]:
            writes[role_key(role, agency.id)] = canonical_json(True)
    return writes


def _agency_record(agency_id: str, name: str, keys: list[str], height: int) -> dict[str, Any]:
    return {
        "id": agency_id,
        "name": name,
        "keys": sorted(keys),
        "roles": [],
        "active": True,
        "registered_at": height,
    }


def _in_force(record: Any, at_time_ms: int) -> bool:
    if not isinstance(record, dict):
        return False
    return any(
        p["granted_ms"] <= at_time_ms and (p["revoked_ms"] is None or at_time_ms < p["revoked_ms"])
        for p in record["periods"]
    )


def _close(record: dict[str, Any], ctx: TxContext) -> None:
    """End the record's open period at this block."""
    record["active"] = False
    record["periods"][-1]["revoked_ms"] = ctx.time_ms
    record["periods"][-1]["revoked_height"] = ctx.height


class Governance(Contract):
    name = "governance"

    # Governance keys live at the top of the "governance/" namespace, so this contract uses
    # ctx.state with full keys from authority.py rather than ctx.put's relative keys.

    @transaction(RegisterAgency, policy=ROOT)
    def register_agency(self, ctx: TxContext, args: RegisterAgency) -> None:
        """Register an agency (city hall, a district office, the auditor…) with its keys."""
        if ctx.state.get(agency_key(args.id)) is not None:
            ctx.fail("agency_exists", f"agency {args.id!r} is already registered")
        if len(set(args.keys)) != len(args.keys):
            ctx.fail("duplicate_key", "the same key is listed twice")
        for did in args.keys:
            self._claim_key(ctx, did, args.id)
        ctx.state.put(
            agency_key(args.id), _agency_record(args.id, args.name, args.keys, ctx.height)
        )
        ctx.state.put(active_key(args.id), True)
        ctx.emit("agency_registered", agency=args.id, name=args.name, keys=len(args.keys))

    @transaction(AgencyKey, policy=root_or_own_agency("agency"))
    def add_key(self, ctx: TxContext, args: AgencyKey) -> None:
        """Add a key to an agency (by root, or by one of the agency's own keys)."""
        record = self._active_agency(ctx, args.agency)
        if len(record["keys"]) >= MAX_KEYS_PER_AGENCY:
            ctx.fail("too_many_keys", f"an agency has at most {MAX_KEYS_PER_AGENCY} keys")
        self._claim_key(ctx, args.key, args.agency)
        record["keys"] = sorted([*record["keys"], args.key])
        ctx.state.put(agency_key(args.agency), record)
        ctx.emit("key_added", agency=args.agency, key=args.key)

    @transaction(AgencyKey, policy=root_or_own_agency("agency"))
    def remove_key(self, ctx: TxContext, args: AgencyKey) -> None:
        """Remove a key from an agency; an agency keeps at least one key."""
        record = self._active_agency(ctx, args.agency)
        if args.key not in record["keys"]:
            ctx.fail("unknown_key", f"{args.key} is not a key of {args.agency!r}")
        if len(record["keys"]) == 1:
            ctx.fail("last_key", "an agency must keep at least one key; add another first")
        record["keys"] = [k for k in record["keys"] if k != args.key]
        ctx.state.put(agency_key(args.agency), record)
        ctx.state.delete(member_key(args.key))
        ctx.emit("key_removed", agency=args.agency, key=args.key)

    @transaction(AgencyRole, policy=ROOT)
    def grant_role(self, ctx: TxContext, args: AgencyRole) -> None:
        """Grant a role to an agency; every key of the agency then holds it."""
        if args.role == ROOT_ROLE:
            ctx.fail("reserved_role", "the root role is set in genesis, not granted")
        record = self._active_agency(ctx, args.agency)
        if args.role in record["roles"]:
            ctx.fail("role_held", f"{args.agency!r} already holds {args.role!r}")
        record["roles"] = sorted([*record["roles"], args.role])
        ctx.state.put(agency_key(args.agency), record)
        ctx.state.put(role_key(args.role, args.agency), True)
        ctx.emit("role_granted", agency=args.agency, role=args.role)

    @transaction(AgencyRole, policy=ROOT)
    def revoke_role(self, ctx: TxContext, args: AgencyRole) -> None:
        """Revoke a role from an agency."""
        record = self._agency(ctx, args.agency)
        if args.role not in record["roles"]:
            ctx.fail("role_not_held", f"{args.agency!r} does not hold {args.role!r}")
        record["roles"] = [r for r in record["roles"] if r != args.role]
        ctx.state.put(agency_key(args.agency), record)
        ctx.state.delete(role_key(args.role, args.agency))
        ctx.emit("role_revoked", agency=args.agency, role=args.role)

    @transaction(AgencyRef, policy=ROOT)
    def deactivate_agency(self, ctx: TxContext, args: AgencyRef) -> None:
        """Deactivate an agency: its keys authorise nothing from the next transaction on.

        Every open issuer period of the agency closes in this transaction (at this block's
        time and height), so ``may_issue`` is false from then on. Credentials the agency issued
        before stay valid: a verifier asks about the credential's issuance time, which falls
        inside the closed period.
        """
        record = self._active_agency(ctx, args.agency)
        record["active"] = False
        record["deactivated_at"] = ctx.height
        record["deactivated_ms"] = ctx.time_ms
        ctx.state.put(agency_key(args.agency), record)
        ctx.state.delete(active_key(args.agency))
        ctx.emit("agency_deactivated", agency=args.agency)
        # MAX_ISSUER_TYPES bounds the grants per agency, so this one scan sees them all.
        grants = list(ctx.state.scan(issuer_key(args.agency, ""), MAX_ISSUER_TYPES))
        for key, grant in grants:
            if grant["active"]:
                _close(grant, ctx)
                ctx.state.put(key, grant)
                ctx.emit("issuer_revoked", agency=args.agency, credential_type=grant["type"])

    @transaction(IssuerGrant, policy=ROOT)
    def grant_issuer(self, ctx: TxContext, args: IssuerGrant) -> dict[str, Any]:
        """Let an active agency issue a credential type from this block on."""
        self._active_agency(ctx, args.agency)
        key = issuer_key(args.agency, args.credential_type)
        record: dict[str, Any] | None = ctx.state.get(key)
        if record is None:
            held = ctx.state.scan(issuer_key(args.agency, ""), MAX_ISSUER_TYPES)
            if sum(1 for _ in held) >= MAX_ISSUER_TYPES:
                ctx.fail("too_many_types", f"an agency may issue at most {MAX_ISSUER_TYPES} types")
            record = {
                "agency": args.agency,
                "type": args.credential_type,
                "active": False,
                "periods": [],
            }
        if record["active"]:
            ctx.fail("already_granted", f"{args.agency!r} may already issue {args.credential_type}")
        if len(record["periods"]) >= MAX_ISSUER_PERIODS:
            ctx.fail("too_many_changes", f"at most {MAX_ISSUER_PERIODS} grants per agency and type")
        record["active"] = True
        record["periods"].append(
            {
                "granted_ms": ctx.time_ms,
                "granted_height": ctx.height,
                "revoked_ms": None,
                "revoked_height": None,
            }
        )
        ctx.state.put(key, record)
        ctx.emit("issuer_granted", agency=args.agency, credential_type=args.credential_type)
        return record

    @transaction(IssuerGrant, policy=ROOT)
    def revoke_issuer(self, ctx: TxContext, args: IssuerGrant) -> dict[str, Any]:
        """End an agency's right to issue a type; credentials issued before stay valid."""
        key = issuer_key(args.agency, args.credential_type)
        record = ctx.state.get(key)
        if not isinstance(record, dict) or not record["active"]:
            ctx.fail("not_granted", f"{args.agency!r} may not issue {args.credential_type}")
        _close(record, ctx)
        ctx.state.put(key, record)
        ctx.emit("issuer_revoked", agency=args.agency, credential_type=args.credential_type)
        return record

    @query(AgencyRef)
    def agency(self, ctx: QueryContext, args: AgencyRef) -> Any:
        """One agency's record, or null."""
        return ctx.state.get(agency_key(args.agency))

    @query(ListArgs)
    def agencies(self, ctx: QueryContext, args: ListArgs) -> Any:
        """Agencies in id order, paginated with ``after``."""
        after = agency_key(args.after) if args.after else ""
        return [value for _, value in ctx.state.scan(agency_key(""), args.limit, after)]

    @query(RoleRef)
    def holders(self, ctx: QueryContext, args: RoleRef) -> Any:
        """Ids of the agencies that hold a role, in id order, paginated with ``after``."""
        prefix = role_key(args.role, "")
        after = prefix + args.after if args.after else ""
        return [key[len(prefix) :] for key, _ in ctx.state.scan(prefix, args.limit, after)]

    @query(MayIssue)
    def may_issue(self, ctx: QueryContext, args: MayIssue) -> Any:
        """Whether the agency held the right at ``at_time_ms`` (default: the head's time)."""
        when = ctx.time_ms if args.at_time_ms is None else args.at_time_ms
        return _in_force(ctx.state.get(issuer_key(args.agency, args.credential_type)), when)

    @query(IssuerGrant)
    def issuer_history(self, ctx: QueryContext, args: IssuerGrant) -> Any:
        """One issuer grant with all its periods, or null if it was never granted."""
        return ctx.state.get(issuer_key(args.agency, args.credential_type))

    @query(ListIssuerGrants)
    def issuer_grants(self, ctx: QueryContext, args: ListIssuerGrants) -> Any:
        """Issuer grants (current and past) in agency/type order, paginated with ``after``."""
        prefix = issuer_key(args.agency, "") if args.agency else ISSUER_PREFIX
        after = ISSUER_PREFIX + args.after if args.after else ""
        return [record for _, record in ctx.state.scan(prefix, args.limit, after)]

    @query(SignerRef)
    def signer(self, ctx: QueryContext, args: SignerRef) -> Any:
        """What a key may do: whether it is root, its agency and that agency's roles."""
        agency_id = ctx.authority.agency_of(args.did)
        record = ctx.authority.agency(agency_id) if agency_id else None
        return {
            "did": args.did,
            "root": ctx.authority.is_root(args.did),
            "agency": agency_id,
            "roles": record["roles"] if record else [],
        }

    @staticmethod
    def _claim_key(ctx: TxContext, did: str, agency_id: str) -> None:
        owner = ctx.state.get(member_key(did))
        if owner is not None:
            ctx.fail("key_in_use", f"{did} already belongs to agency {owner!r}")
        ctx.state.put(member_key(did), agency_id)

    @staticmethod
    def _agency(ctx: TxContext, agency_id: str) -> dict[str, Any]:
        record = ctx.state.get(agency_key(agency_id))
        if not isinstance(record, dict):
            ctx.fail("unknown_agency", f"no agency {agency_id!r}")
        return record

    def _active_agency(self, ctx: TxContext, agency_id: str) -> dict[str, Any]:
        record = self._agency(ctx, agency_id)
        if record.get("active") is not True:
            ctx.fail("agency_inactive", f"agency {agency_id!r} is deactivated")
        return record


__all__ = [
    "CREDENTIAL_TYPE_PATTERN",
    "MAX_ISSUER_PERIODS",
    "MAX_ISSUER_TYPES",
    "PUBLIC",
    "Governance",
    "genesis_writes",
]
