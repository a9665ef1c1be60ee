"""The deterministic cutter: the stream's messages in, the chain's blocks out. Pure.

Every node feeds the same messages (JetStream stream order) into its own ``Cutter`` and so
closes the same blocks, whatever nodes published which cuts, how often, or in which
interleaving. The rule:

- a transaction message joins the pending list;
- a *cut* message ``{"through": S, "node": did}`` closes a block iff it is validly signed (purpose
  ``cut``) by a genesis producer and some pending transaction has a sequence <= S; the block is
  every pending transaction with sequence <= S, in sequence order; every other cut is ignored;
- the block's time is the cut message's stream timestamp in ms (the chain still clamps it to
  ``prev + 1``) and its producer is the cut's signer.

Invariants:
- after a block whose last transaction has sequence T, every pending transaction has sequence
  > T; so a node that stored (last cut sequence C, T) resumes by feeding from T + 1 and skipping
  cuts up to C, and reaches exactly the state it had;
- a message whose sequence is not above the last one fed is ignored (redelivery is harmless).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url
from civicledger.crypto.keys import PrivateKey, PublicKey, signing_message
from civicledger.errors import CivicError

CUT_PURPOSE = "cut"


class Kind(StrEnum):
    TX = "tx"
    CUT = "cut"


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message of the chain's stream, as every node reads it."""

    seq: int
    """Stream sequence, assigned by the stream leader."""
    kind: Kind
    data: bytes
    time_ms: int
    """The stream's own timestamp of the message (ms), stored with it and the same everywhere."""


class _Frozen(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Cut(_Frozen):
    through: int = Field(ge=1)
    """The stream sequence of the last transaction message the cutter had consumed."""
    node: str

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump())


class SignedCut(_Frozen):
    cut: Cut
    signature: str

    @classmethod
    def sign(cls, chain_id: str, through: int, key: PrivateKey) -> SignedCut:
        cut = Cut(through=through, node=key.public.did)
        signature = b64url(key.sign(signing_message(chain_id, CUT_PURPOSE, cut.canonical_bytes())))
        return cls(cut=cut, signature=signature)

    def wire(self) -> bytes:
        return canonical_json(self.model_dump())

    def msg_id(self) -> str:
        """JetStream de-duplication id: nodes cutting at the same point publish one message."""
        return f"cut-{self.cut.through}"

    def valid(self, chain_id: str, producers: frozenset[str]) -> bool:
        """Signed by a genesis producer for this chain (a bool: an invalid cut is ignored)."""
        if self.cut.node not in producers:
            return False
        try:
            PublicKey.from_did(self.cut.node).verify(
                signing_message(chain_id, CUT_PURPOSE, self.cut.canonical_bytes()),
                from_b64url(self.signature),
            )
        except CivicError:
            return False
        return True


def decode_cut(data: bytes) -> SignedCut | None:
    """The cut in ``data``, or None when it is not one (ignored by every node alike)."""
    try:
        return SignedCut.model_validate_json(data)
    except ValidationError:
        return None


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """A block the stream closed: what every node executes, in this order."""

    cut_seq: int
    through: int
    time_ms: int
    producer: str
    txs: tuple[tuple[int, bytes], ...]
    """(stream sequence, wire bytes) of each transaction, in sequence order."""


@dataclass
class Cutter:
    chain_id: str
    producers: frozenset[str]
    last_cut_seq: int = 0
    """Stream sequence of the last cut that closed a block."""
    through: int = 0
    """The last transaction sequence in a block: every transaction up to it is in one."""
    position: int = 0
    """The last sequence fed."""
    pending: list[tuple[int, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.position = max(self.position, self.through)

    def feed(self, message: StreamMessage) -> BlockPlan | None:
        if message.seq <= self.position:
            return None
        self.position = message.seq
        if message.kind is Kind.TX:
            if message.seq > self.through:
                self.pending.append((message.seq, message.data))
            return None
        if message.seq <= self.last_cut_seq or not self.pending:
            return None
        cut = decode_cut(message.data)
        if cut is None or cut.cut.through < self.pending[0][0]:
            return None
        if not cut.valid(self.chain_id, self.producers):
            return None
        through = cut.cut.through
        taken = [item for item in self.pending if item[0] <= through]
        self.pending = [item for item in self.pending if item[0] > through]
        self.last_cut_seq = message.seq
        self.through = taken[-1][0]
        return BlockPlan(message.seq, self.through, message.time_ms, cut.cut.node, tuple(taken))


__all__ = ["BlockPlan", "Cut", "Cutter", "Kind", "SignedCut", "StreamMessage", "decode_cut"]
