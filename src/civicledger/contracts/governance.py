"""The built-in governance contract: the city's root authority registers agencies and grants roles.

Every other contract asks ``Authority`` (which reads what this contract writes) who may do what.
A key belongs to at most one agency; a deactivated agency's keys authorise nothing.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from civicledger.contracts.authority import (
    ROOT_ROLE,
    active_key,
    agency_key,
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
        """Deactivate an agency: its keys authorise nothing from the next transaction on."""
        record = self._active_agency(ctx, args.agency)
        record["active"] = False
        record["deactivated_at"] = ctx.height
        ctx.state.put(agency_key(args.agency), record)
        ctx.state.delete(active_key(args.agency))
        ctx.emit("agency_deactivated", agency=args.agency)

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


__all__ = ["PUBLIC", "Governance", "genesis_writes"]
