"""The genesis file: a city's chain id, its root authority, producing nodes and first agencies."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from civicledger.crypto.encoding import canonical_json, parse_json, sha256
from civicledger.crypto.keys import PublicKey
from civicledger.errors import CivicError, GenesisError

_ROLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
AGENCY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


def check_did_key(value: str) -> str:
    """Pydantic validator: ``value`` must be an Ed25519 did:key (ValueError otherwise)."""
    try:
        PublicKey.from_did(value)
    except CivicError as e:
        raise ValueError(f"{value[:60]!r} is not an Ed25519 did:key") from e
    return value


class GenesisAgency(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    id: str = Field(pattern=AGENCY_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    keys: tuple[str, ...] = Field(min_length=1)
    roles: tuple[str, ...] = ()

    @field_validator("keys")
    @classmethod
    def _keys_are_did_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        for key in keys:
            check_did_key(key)
        return keys

    @field_validator("roles")
    @classmethod
    def _roles_are_names(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        for role in roles:
            if not _ROLE_RE.match(role) or role == "root":
                raise ValueError(f"invalid role name {role!r}")
        return roles


class Genesis(BaseModel):
    """Everything a node needs to start the chain; its hash seeds the state hash."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    chain_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    city: str = Field(min_length=1, max_length=200)
    time_ms: int = Field(ge=0)
    root_authorities: tuple[str, ...] = Field(min_length=1)
    """did:keys of the city's root authority: they register agencies and grant roles."""
    producers: tuple[str, ...] = Field(min_length=1)
    """did:keys of the nodes allowed to sign blocks."""
    agencies: tuple[GenesisAgency, ...] = ()

    @field_validator("root_authorities", "producers")
    @classmethod
    def _are_did_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        for key in keys:
            check_did_key(key)
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate keys")
        return keys

    @field_validator("agencies")
    @classmethod
    def _unique_agencies(cls, agencies: tuple[GenesisAgency, ...]) -> tuple[GenesisAgency, ...]:
        ids = [a.id for a in agencies]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate agency ids")
        keys = [k for a in agencies for k in a.keys]
        if len(set(keys)) != len(keys):
            raise ValueError("a key belongs to two agencies")
        return agencies

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    def hash(self) -> bytes:
        return sha256(self.canonical_bytes())

    @classmethod
    def from_json_bytes(cls, data: bytes) -> Genesis:
        try:
            parse_json(data)  # refuses floats and duplicate keys before pydantic sees it
            return cls.model_validate_json(data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise GenesisError(f"genesis {where}: {first['msg']}") from e
        except CivicError as e:
            raise GenesisError(f"genesis is not valid JSON: {e}") from e

    @classmethod
    def load(cls, path: Path) -> Genesis:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise GenesisError(f"cannot read genesis file {path}: {e.strerror}") from e
        return cls.from_json_bytes(data)
