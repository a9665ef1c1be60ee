"""Declaring contracts: transactions and queries with typed arguments and an explicit policy.

A contract is a class with a ``name`` whose methods are decorated with ``@transaction`` or
``@query``. Each transaction names the pydantic model of its arguments and the ``Policy`` that
decides who may call it; there is no default policy, so forgetting one is an error (fail closed).

Contract code must be deterministic: it reads time only from ``ctx.time_ms`` (the block's time),
never the clock, randomness, the network or files; it iterates state only via ``ctx.scan``,
whose order is defined (key bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, NoReturn, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from civicledger.contracts.authority import ROOT_ROLE, Authority
from civicledger.errors import ContractError
from civicledger.ledger.genesis import check_did_key
from civicledger.ledger.receipt import Event
from civicledger.ledger.state import TxState


class Args(BaseModel):
    """Base for argument models: strict (no silent coercion), immutable, no unknown fields."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


HASH_PATTERN = r"^[0-9a-f]{64}$"
"""A SHA-256 in lowercase hex: how a document, a reference or a pseudonym goes on the ledger."""
DidKey = Annotated[str, AfterValidator(check_did_key)]
"""An argument that must be a well-formed did:key (an Ed25519 public key)."""


class NoArgs(Args):
    pass


class Policy(Protocol):
    """Decides whether ``signer`` may call a method with ``args``, asking ``authority``."""

    @property
    def description(self) -> str: ...

    def allows(self, authority: Authority, signer: str, args: Args) -> bool: ...


@dataclass(frozen=True)
class _Public:
    description: str = "anyone with a valid signature"

    def allows(self, authority: Authority, signer: str, args: Args) -> bool:
        return True


@dataclass(frozen=True)
class _HasRole:
    role: str
    description: str = ""

    def allows(self, authority: Authority, signer: str, args: Args) -> bool:
        return authority.has_role(signer, self.role)


@dataclass(frozen=True)
class _AgencyMember:
    description: str = "a key of any active agency"

    def allows(self, authority: Authority, signer: str, args: Args) -> bool:
        return authority.agency_of(signer) is not None


@dataclass(frozen=True)
class _RootOrOwnAgency:
    field_name: str
    description: str = ""

    def allows(self, authority: Authority, signer: str, args: Args) -> bool:
        if authority.is_root(signer):
            return True
        target = getattr(args, self.field_name, None)
        return target is not None and authority.agency_of(signer) == target


PUBLIC: Policy = _Public()
ROOT: Policy = _HasRole(ROOT_ROLE, "the city's root authority")
AGENCY_MEMBER: Policy = _AgencyMember()


def has_role(role: str) -> Policy:
    return _HasRole(role, f"an agency holding the role {role!r}")


def root_or_own_agency(field_name: str) -> Policy:
    """Root, or a key of the agency named by ``args.<field_name>`` (self-service key rotation)."""
    return _RootOrOwnAgency(field_name, f"root, or a key of the agency in {field_name!r}")


@dataclass
class TxContext:
    """What a transaction sees: the block, the signer, its contract's state, and events to emit."""

    contract: str
    height: int
    time_ms: int
    """The block's time; the only clock a contract may read."""
    signer: str
    tx_id: str
    state: TxState
    authority: Authority
    events: list[Event] = field(default_factory=list)
    chain_id: str = ""
    """The chain the transaction was signed for (checked against the node's genesis before
    execution): lets a contract bind data to this chain, e.g. a ballot's proof context."""

    def _key(self, key: str) -> str:
        return f"{self.contract}/{key}"

    def get(self, key: str) -> Any:
        return self.state.get(self._key(key))

    def put(self, key: str, value: Any) -> None:
        self.state.put(self._key(key), value)

    def delete(self, key: str) -> None:
        self.state.delete(self._key(key))

    def scan(self, prefix: str, limit: int = 1000, after: str = "") -> Iterator[tuple[str, Any]]:
        """This contract's keys under ``prefix`` (after the key ``after``), in key byte order.

        Keys come back without the contract's namespace, as ``put`` takes them.
        """
        base = self._key("")
        start = self._key(after) if after else ""
        for key, value in self.state.scan(self._key(prefix), limit, start):
            yield key[len(base) :], value

    def read(self, contract: str, key: str) -> Any:
        """Read another contract's state (read-only: writes go only to one's own namespace)."""
        return self.state.get(f"{contract}/{key}")

    def emit(self, event: str, /, **data: Any) -> None:
        """Announce a fact; ``data`` must be JSON (checked when the receipt is encoded)."""
        self.events.append(Event.model_construct(contract=self.contract, name=event, data=data))

    def fail(self, reason: str, message: str) -> NoReturn:
        raise ContractError(message, reason=reason)


@dataclass(frozen=True)
class QueryContext:
    """What a query sees: committed state at the head, read-only."""

    contract: str
    height: int
    time_ms: int
    state: TxState
    authority: Authority

    def get(self, key: str) -> Any:
        return self.state.get(f"{self.contract}/{key}")

    def scan(self, prefix: str, limit: int = 1000, after: str = "") -> Iterator[tuple[str, Any]]:
        base = f"{self.contract}/"
        start = base + after if after else ""
        for key, value in self.state.scan(base + prefix, limit, start):
            yield key[len(base) :], value

    def read(self, contract: str, key: str) -> Any:
        return self.state.get(f"{contract}/{key}")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    kind: Literal["transaction", "query"]
    args_model: type[Args]
    policy: Policy | None
    fn: Callable[..., Any]
    doc: str


_F = TypeVar("_F", bound=Callable[..., Any])


def transaction(args: type[Args], *, policy: Policy) -> Callable[[_F], _F]:
    """Declare a state-changing method callable by signers that ``policy`` allows."""

    def mark(fn: _F) -> _F:
        fn.__civic_method__ = ("transaction", args, policy)  # type: ignore[attr-defined]
        return fn

    return mark


def query(args: type[Args] = NoArgs) -> Callable[[_F], _F]:
    """Declare a read-only method; anyone may call it (the ledger is public to its readers)."""

    def mark(fn: _F) -> _F:
        fn.__civic_method__ = ("query", args, None)  # type: ignore[attr-defined]
        return fn

    return mark


class Contract:
    """Base of every contract. Subclasses set ``name`` and declare methods."""

    name: ClassVar[str]
    methods: ClassVar[dict[str, MethodSpec]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        methods: dict[str, MethodSpec] = {}
        for attr, fn in sorted(vars(cls).items()):
            marker = getattr(fn, "__civic_method__", None)
            if marker is None:
                continue
            kind, args_model, policy = marker
            doc = (fn.__doc__ or "").strip().splitlines()
            methods[attr] = MethodSpec(attr, kind, args_model, policy, fn, doc[0] if doc else "")
        cls.methods = methods
