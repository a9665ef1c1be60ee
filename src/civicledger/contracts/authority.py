"""Who may do what: read-only answers from the governance contract's state.

The governance contract writes these keys; every policy and every later service reads them
through ``Authority``, so there is one source of truth for roles.

Keys (all under ``governance/``):
    root/<did>              true for each root-authority key (from genesis)
    agency/<id>             {"id", "name", "keys": [...], "roles": [...], "active": bool, ...}
    active/<id>             true while the agency is active (a small key: policies read it per tx)
    key/<did>               the agency id a key belongs to
    role/<role>/<agency>    true while the agency holds the role
    issuer/<agency>/<type>  the agency's right to issue a credential type, with its history:
                            {"agency", "type", "active", "periods": [{"granted_ms",
                            "granted_height", "revoked_ms", "revoked_height"}]}
"""

from __future__ import annotations

from typing import Any, Protocol

ROOT_ROLE = "root"
PREFIX = "governance/"


class StateReader(Protocol):
    def get(self, key: str) -> Any: ...


def root_key(did: str) -> str:
    return f"{PREFIX}root/{did}"


def agency_key(agency_id: str) -> str:
    return f"{PREFIX}agency/{agency_id}"


def active_key(agency_id: str) -> str:
    return f"{PREFIX}active/{agency_id}"


def member_key(did: str) -> str:
    return f"{PREFIX}key/{did}"


def role_key(role: str, agency_id: str) -> str:
    return f"{PREFIX}role/{role}/{agency_id}"


ISSUER_PREFIX = f"{PREFIX}issuer/"


def issuer_key(agency_id: str, credential_type: str) -> str:
    """An agency's grant for a type; ``issuer_key(agency, "")`` prefixes all its grants."""
    return f"{ISSUER_PREFIX}{agency_id}/{credential_type}"


class Authority:
    """Read-only view of roles at the current point of execution (sees earlier txs in the block)."""

    def __init__(self, state: StateReader) -> None:
        self._state = state

    def is_root(self, did: str) -> bool:
        return self._state.get(root_key(did)) is True

    def agency_of(self, did: str) -> str | None:
        """The active agency ``did`` belongs to, or None."""
        agency_id = self._state.get(member_key(did))
        if not isinstance(agency_id, str):
            return None
        if self._state.get(active_key(agency_id)) is not True:
            return None
        return agency_id

    def agency(self, agency_id: str) -> dict[str, Any] | None:
        value = self._state.get(agency_key(agency_id))
        return value if isinstance(value, dict) else None

    def agency_has_role(self, agency_id: str, role: str) -> bool:
        return self._state.get(role_key(role, agency_id)) is True

    def has_role(self, did: str, role: str) -> bool:
        """True if ``did`` is root (for ``root``) or a key of an active agency holding ``role``."""
        if role == ROOT_ROLE:
            return self.is_root(did)
        agency_id = self.agency_of(did)
        return agency_id is not None and self.agency_has_role(agency_id, role)
