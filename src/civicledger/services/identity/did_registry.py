"""The DID registry contract: agencies' ``did:civic:<agency-id>`` documents, with full history.

Only agencies are on the ledger. Citizens hold ``did:key`` identifiers in their wallets and are
never written here (no personal data on the ledger, ever); ``resolver.py`` resolves those locally.

Invariants:

- A document's ``version`` starts at 1 and grows by one with every accepted update; each version
  is kept (``ver/<agency>/<version>``) with the block height and block time that made it, so a
  verifier can ask which keys were valid at any time. Time is read only from ``ctx.time_ms``.
- A verification method's fragment ``#key-N`` is never reused, and a public key appears in a
  document at most once ever, so a method id names one key for good.
- Removing or rotating a key ends its validity at that block's time: a credential signed before
  still verifies against it (``resolve_at`` an earlier time lists it). Removing it with
  ``revoked: true`` (for a compromised key) withdraws it retroactively: it is left out of every
  document, past or present, and listed in the metadata's ``revokedMethods``, so even old
  signatures by it are refused. Revocation cannot be undone.
- Deactivation is irreversible: from that block on the document lists no keys and nothing may
  update it. Documents resolved at an earlier time still list the keys valid then (use
  ``revoke_keys: true`` when deactivating after a compromise).
- Who may update a document: the city's root authority, or a key of an active agency whose
  ``did:civic`` is among the document's controllers (by default the agency itself). Admission
  lets through only root and keys of active agencies; the controller check needs this
  contract's state, so it runs inside the transaction (failed receipt ``not_controller``).

State (under ``did_registry/``):
    doc/<agency>                the current record: methods ever added, controllers, version...
    ver/<agency>/<version:08d>  one version: height, time_ms, controllers, active method ids,
                                deactivated
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from civicledger.contracts.authority import Authority
from civicledger.contracts.base import (
    Args,
    Contract,
    Policy,
    QueryContext,
    TxContext,
    query,
    root_or_own_agency,
    transaction,
)
from civicledger.crypto.keys import PublicKey
from civicledger.errors import CivicError
from civicledger.ledger.genesis import AGENCY_ID_PATTERN

__all__ = [
    "DID_CIVIC_PATTERN",
    "DID_CIVIC_PREFIX",
    "DID_CONTEXT",
    "DID_CONTRACT",
    "MAX_TIME_MS",
    "METHOD_ID_PATTERN",
    "DidRegistry",
    "agency_of_did",
    "civic_did",
    "multibase_key",
]

DID_CONTRACT = "did_registry"
DID_CIVIC_PREFIX = "did:civic:"
DID_CIVIC_PATTERN = r"^did:civic:" + AGENCY_ID_PATTERN[1:]
METHOD_ID_PATTERN = r"^#key-[1-9][0-9]{0,8}$"
DID_CONTEXT = ("https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1")
MAX_ACTIVE_METHODS = 16
MAX_METHODS_EVER = 256
MAX_CONTROLLERS = 8
MAX_TIME_MS = 2**53 - 1

_DID_CIVIC_RE = re.compile(DID_CIVIC_PATTERN)
_AGENCY_ID_RE = re.compile(AGENCY_ID_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Purpose = Literal["assertionMethod", "authentication"]
DEFAULT_PURPOSES: list[Purpose] = ["assertionMethod", "authentication"]


def civic_did(agency: str) -> str:
    """The DID of an agency; raises ``ValueError`` for a malformed agency id."""
    if not _AGENCY_ID_RE.fullmatch(agency):
        raise ValueError(f"{agency[:70]!r} is not an agency id")
    return DID_CIVIC_PREFIX + agency


def agency_of_did(did: str) -> str:
    """The agency id in ``did:civic:<agency>``; raises ``ValueError`` for anything else."""
    if not isinstance(did, str) or not _DID_CIVIC_RE.fullmatch(did):
        raise ValueError(f"{str(did)[:80]!r} is not a did:civic identifier")
    return did[len(DID_CIVIC_PREFIX) :]


def multibase_key(value: str) -> str:
    """The ``publicKeyMultibase`` of an Ed25519 key given as a did:key or as that multibase.

    Raises ``ValueError`` (for pydantic) unless it is the one canonical encoding of a key.
    """
    did = value if value.startswith("did:key:") else "did:key:" + value
    try:
        key = PublicKey.from_did(did)
    except CivicError as e:
        raise ValueError(f"{value[:70]!r} is not an Ed25519 did:key or multibase key") from e
    return key.did[len("did:key:") :]


def _iso(time_ms: int) -> str:
    """XML datetime in UTC, whole seconds, as DID Core metadata wants; pure arithmetic."""
    return (_EPOCH + timedelta(milliseconds=time_ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unique(values: list[str], what: str) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"the same {what} is listed twice")
    return values


class _Controllers(Args):
    controllers: list[str] | None = Field(default=None, min_length=1, max_length=MAX_CONTROLLERS)
    """did:civic DIDs allowed to update the document; default: the agency itself."""

    @field_validator("controllers")
    @classmethod
    def _dids(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        for value in values:
            agency_of_did(value)
        return _unique(values, "controller")


class CreateDid(_Controllers):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    keys: list[str] = Field(min_length=1, max_length=MAX_ACTIVE_METHODS)
    """Ed25519 keys as did:key strings or multibase (``z6Mk...``); become ``#key-1``, ..."""

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        return _unique([multibase_key(k) for k in keys], "key")


class AddKey(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    key: str
    purposes: list[Purpose] = Field(
        default_factory=lambda: list(DEFAULT_PURPOSES), min_length=1, max_length=2
    )

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return multibase_key(key)

    @field_validator("purposes")
    @classmethod
    def _purposes(cls, purposes: list[Purpose]) -> list[Purpose]:
        _unique(list(purposes), "purpose")
        return purposes


class RemoveKey(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    method: str = Field(pattern=METHOD_ID_PATTERN)
    revoked: bool = False
    """True for a compromised key: even signatures made while it was valid are refused."""


class RotateKey(RemoveKey):
    key: str
    """The replacement; it gets a new ``#key-N`` and the old method's purposes."""

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return multibase_key(key)


class SetControllers(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    controllers: list[str] = Field(min_length=1, max_length=MAX_CONTROLLERS)

    @field_validator("controllers")
    @classmethod
    def _dids(cls, values: list[str]) -> list[str]:
        for value in values:
            agency_of_did(value)
        return _unique(values, "controller")


class Deactivate(Args):
    agency: str = Field(pattern=AGENCY_ID_PATTERN)
    revoke_keys: bool = False
    """Also revoke every key (after a compromise), so no old signature verifies either."""


class DidRef(Args):
    did: str = Field(pattern=DID_CIVIC_PATTERN)


class DidAt(DidRef):
    time_ms: int = Field(ge=0, le=MAX_TIME_MS)


class MethodRef(DidRef):
    method: str = Field(pattern=METHOD_ID_PATTERN)


class ListDids(Args):
    after: str = ""
    """Paginate: agency ids after this one."""
    limit: int = Field(default=100, ge=1, le=1000)


@dataclass(frozen=True)
class _RootOrAgencyKey:
    description: str = (
        "root, or a key of an active agency (which must control the DID: checked on execution)"
    )

    def allows(self, authority: Authority, signer: str, args: Args) -> bool:
        return authority.is_root(signer) or authority.agency_of(signer) is not None


ROOT_OR_AGENCY_KEY: Policy = _RootOrAgencyKey()


def _doc_key(agency: str) -> str:
    return f"doc/{agency}"


def _version_key(agency: str, version: int) -> str:
    return f"ver/{agency}/{version:08d}"


class DidRegistry(Contract):
    name = DID_CONTRACT

    @transaction(CreateDid, policy=root_or_own_agency("agency"))
    def create(self, ctx: TxContext, args: CreateDid) -> dict[str, Any]:
        """Create ``did:civic:<agency>`` with its first keys (by root or the agency itself)."""
        if ctx.get(_doc_key(args.agency)) is not None:
            ctx.fail("did_exists", f"{civic_did(args.agency)} already exists")
        record = ctx.authority.agency(args.agency)
        if record is None:
            ctx.fail("unknown_agency", f"no agency {args.agency!r} is registered")
        if record.get("active") is not True:
            ctx.fail("agency_inactive", f"agency {args.agency!r} is deactivated")
        controllers = args.controllers or [civic_did(args.agency)]
        self._check_controllers(ctx, controllers)
        doc: dict[str, Any] = {
            "agency": args.agency,
            "version": 0,
            "controllers": controllers,
            "methods": [],
            "next_key": 1,
            "created_height": ctx.height,
            "created_ms": ctx.time_ms,
            "deactivated": None,
        }
        for key in args.keys:
            self._add_method(ctx, doc, key, list(DEFAULT_PURPOSES))
        return self._save(ctx, doc, "created")

    @transaction(AddKey, policy=ROOT_OR_AGENCY_KEY)
    def add_key(self, ctx: TxContext, args: AddKey) -> dict[str, Any]:
        """Add a verification method; returns its id ``#key-N``."""
        doc = self._controlled(ctx, args.agency)
        method = self._add_method(ctx, doc, args.key, list(args.purposes))
        return {**self._save(ctx, doc, "key_added", method=method), "method": method}

    @transaction(RemoveKey, policy=ROOT_OR_AGENCY_KEY)
    def remove_key(self, ctx: TxContext, args: RemoveKey) -> dict[str, Any]:
        """End a method's validity now; ``revoked`` also withdraws it from the past."""
        doc = self._controlled(ctx, args.agency)
        self._end_method(ctx, doc, args.method, revoked=args.revoked)
        if not self._active(doc):
            ctx.fail("last_key", "a document keeps at least one key; add another or deactivate")
        return self._save(ctx, doc, "key_removed", method=args.method, revoked=args.revoked)

    @transaction(RotateKey, policy=ROOT_OR_AGENCY_KEY)
    def rotate_key(self, ctx: TxContext, args: RotateKey) -> dict[str, Any]:
        """Replace a method's key in one version: the old one ends, a new ``#key-N`` starts."""
        doc = self._controlled(ctx, args.agency)
        old = self._end_method(ctx, doc, args.method, revoked=args.revoked)
        new = self._add_method(ctx, doc, args.key, list(old["purposes"]))
        saved = self._save(
            ctx, doc, "key_rotated", method=args.method, replacement=new, revoked=args.revoked
        )
        return {**saved, "method": new}

    @transaction(SetControllers, policy=ROOT_OR_AGENCY_KEY)
    def set_controllers(self, ctx: TxContext, args: SetControllers) -> dict[str, Any]:
        """Replace the controllers (leaving the agency out hands its document to the others)."""
        doc = self._controlled(ctx, args.agency)
        self._check_controllers(ctx, args.controllers)
        doc["controllers"] = list(args.controllers)
        return self._save(ctx, doc, "controllers_set", controllers=len(args.controllers))

    @transaction(Deactivate, policy=ROOT_OR_AGENCY_KEY)
    def deactivate(self, ctx: TxContext, args: Deactivate) -> dict[str, Any]:
        """Deactivate the DID for good; ``revoke_keys`` also refuses its past signatures."""
        doc = self._controlled(ctx, args.agency)
        for method in doc["methods"]:
            if method["until_ms"] is None:
                method["until_ms"] = ctx.time_ms
                method["until_height"] = ctx.height
            if args.revoke_keys:
                method["revoked"] = True
        doc["deactivated"] = {"height": ctx.height, "time_ms": ctx.time_ms}
        return self._save(ctx, doc, "deactivated", revoke_keys=args.revoke_keys)

    @query(DidRef)
    def resolve(self, ctx: QueryContext, args: DidRef) -> Any:
        """The current DID document with its metadata, or null for an unknown DID."""
        agency = agency_of_did(args.did)
        doc = ctx.get(_doc_key(agency))
        if doc is None:
            return None
        return _resolution(doc, ctx.get(_version_key(agency, doc["version"])))

    @query(DidAt)
    def resolve_at(self, ctx: QueryContext, args: DidAt) -> Any:
        """The document as it was at ``time_ms`` (null if the DID did not exist yet)."""
        agency = agency_of_did(args.did)
        doc = ctx.get(_doc_key(agency))
        if doc is None:
            return None
        # Versions are numbered 1..N and their block times never decrease, so the version in
        # force at time_ms is the last one not later than it: a binary search over point reads.
        low, high = 0, int(doc["version"])
        while low < high:
            mid = (low + high + 1) // 2
            if ctx.get(_version_key(agency, mid))["time_ms"] <= args.time_ms:
                low = mid
            else:
                high = mid - 1
        if low == 0:
            return None
        return _resolution(doc, ctx.get(_version_key(agency, low)))

    @query(MethodRef)
    def verification_method(self, ctx: QueryContext, args: MethodRef) -> Any:
        """One method ever added to a document, with its validity interval, or null."""
        doc = ctx.get(_doc_key(agency_of_did(args.did)))
        if doc is None:
            return None
        for method in doc["methods"]:
            if method["id"] == args.method:
                return _method_view(args.did, method)
        return None

    @query(ListDids)
    def dids(self, ctx: QueryContext, args: ListDids) -> Any:
        """Registered DIDs in agency order: id, version, deactivated; paginated with ``after``."""
        after = _doc_key(args.after) if args.after else ""
        return [
            {
                "id": civic_did(doc["agency"]),
                "version": doc["version"],
                "deactivated": doc["deactivated"] is not None,
            }
            for _, doc in ctx.scan("doc/", args.limit, after)
        ]

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _controlled(ctx: TxContext, agency: str) -> dict[str, Any]:
        """The active document of ``agency``, if the signer is root or one of its controllers."""
        doc = ctx.get(_doc_key(agency))
        if not isinstance(doc, dict):
            ctx.fail("unknown_did", f"{civic_did(agency)} does not exist")
        if doc["deactivated"] is not None:
            ctx.fail("did_deactivated", f"{civic_did(agency)} is deactivated")
        if ctx.authority.is_root(ctx.signer):
            return doc
        signer_agency = ctx.authority.agency_of(ctx.signer)
        if signer_agency is None or civic_did(signer_agency) not in doc["controllers"]:
            ctx.fail("not_controller", f"{ctx.signer} does not control {civic_did(agency)}")
        return doc

    @staticmethod
    def _check_controllers(ctx: TxContext, controllers: list[str]) -> None:
        for did in controllers:
            record = ctx.authority.agency(agency_of_did(did))
            if record is None or record.get("active") is not True:
                ctx.fail("unknown_controller", f"{did} is not an active agency")

    @staticmethod
    def _active(doc: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in doc["methods"] if m["until_ms"] is None]

    def _add_method(
        self, ctx: TxContext, doc: dict[str, Any], key: str, purposes: list[str]
    ) -> str:
        if any(m["multibase"] == key for m in doc["methods"]):
            ctx.fail("key_reused", f"key {key} is or was already in this document")
        if len(doc["methods"]) >= MAX_METHODS_EVER:
            ctx.fail("too_many_keys", f"a document holds at most {MAX_METHODS_EVER} keys ever")
        if len(self._active(doc)) >= MAX_ACTIVE_METHODS:
            ctx.fail("too_many_keys", f"a document has at most {MAX_ACTIVE_METHODS} active keys")
        method_id = f"#key-{doc['next_key']}"
        doc["next_key"] += 1
        doc["methods"].append(
            {
                "id": method_id,
                "multibase": key,
                "purposes": sorted(purposes),
                "from_ms": ctx.time_ms,
                "from_height": ctx.height,
                "until_ms": None,
                "until_height": None,
                "revoked": False,
            }
        )
        return method_id

    @staticmethod
    def _end_method(
        ctx: TxContext, doc: dict[str, Any], method_id: str, *, revoked: bool
    ) -> dict[str, Any]:
        method = next((m for m in doc["methods"] if m["id"] == method_id), None)
        if method is None:
            ctx.fail("unknown_method", f"{civic_did(doc['agency'])} has no {method_id}")
        if method["until_ms"] is not None:
            ctx.fail("key_not_active", f"{method_id} was already removed")
        method["until_ms"] = ctx.time_ms
        method["until_height"] = ctx.height
        method["revoked"] = revoked
        return dict(method)

    @staticmethod
    def _save(ctx: TxContext, doc: dict[str, Any], change: str, **event: Any) -> dict[str, Any]:
        doc["version"] += 1
        doc["updated_height"] = ctx.height
        doc["updated_ms"] = ctx.time_ms
        agency = doc["agency"]
        ctx.put(_doc_key(agency), doc)
        ctx.put(
            _version_key(agency, doc["version"]),
            {
                "version": doc["version"],
                "height": ctx.height,
                "time_ms": ctx.time_ms,
                "tx_id": ctx.tx_id,
                "change": change,
                "controllers": doc["controllers"],
                "active": [m["id"] for m in DidRegistry._active(doc)],
                "deactivated": doc["deactivated"] is not None,
            },
        )
        did = civic_did(agency)
        ctx.emit(f"did_{change}", did=did, version=doc["version"], **event)
        return {"did": did, "version": doc["version"]}


def _method_view(did: str, method: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": did + method["id"],
        "type": "Multikey",
        "controller": did,
        "publicKeyMultibase": method["multibase"],
        "purposes": method["purposes"],
        "validFromMs": method["from_ms"],
        "validUntilMs": method["until_ms"],
        "revoked": method["revoked"],
    }


def _resolution(doc: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """A DID Core document and its metadata for one version of a record.

    Revoked methods are left out of every version; a deactivated version lists no keys.
    """
    did = civic_did(doc["agency"])
    active = set(version["active"])
    methods = [
        m
        for m in doc["methods"]
        if m["id"] in active and not m["revoked"] and not version["deactivated"]
    ]

    def ids(purpose: str) -> list[str]:
        return [did + m["id"] for m in methods if purpose in m["purposes"]]

    document = {
        "@context": list(DID_CONTEXT),
        "id": did,
        "controller": version["controllers"],
        "verificationMethod": [
            {
                "id": did + m["id"],
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": m["multibase"],
            }
            for m in methods
        ],
        "assertionMethod": ids("assertionMethod"),
        "authentication": ids("authentication"),
    }
    metadata = {
        "created": _iso(doc["created_ms"]),
        "updated": _iso(version["time_ms"]),
        "createdMs": doc["created_ms"],
        "updatedMs": version["time_ms"],
        "height": version["height"],
        "versionId": str(version["version"]),
        "deactivated": version["deactivated"],
        "revokedMethods": [did + m["id"] for m in doc["methods"] if m["revoked"]],
    }
    return {"didDocument": document, "didDocumentMetadata": metadata}
