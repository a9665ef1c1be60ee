"""What the client's reads return; each type's docstring says how much of it was verified."""

from __future__ import annotations

from dataclasses import dataclass

from civicledger.crypto.encoding import JsonValue
from civicledger.ledger.block import BlockHeader, SignedBlockHeader, SignedTreeHead
from civicledger.ledger.proofs import InclusionBundle
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx


@dataclass(frozen=True, slots=True)
class ProvenTx:
    """A transaction and its receipt, proven to be in the log under a verified tree head.

    ``bundle`` is the proof itself: save it (``bundle.model_dump_json()``) and anyone can check
    it offline with ``civic proof verify FILE --genesis genesis.json``.
    """

    tx: SignedTx
    receipt: Receipt
    bundle: InclusionBundle

    @property
    def tree_head(self) -> SignedTreeHead:
        return self.bundle.tree_head


@dataclass(frozen=True, slots=True)
class VerifiedBlock:
    """A block whose header a genesis producer signed, with all its transactions and receipts.

    The transactions and receipts hash to the header's roots, each transaction's signature holds,
    each receipt names its transaction and place, and the header's log size and root are the
    block's tree head, which is consistent with the client's view of the log.
    """

    signed_header: SignedBlockHeader
    tree_head: SignedTreeHead
    txs: tuple[tuple[SignedTx, Receipt], ...]

    @property
    def header(self) -> BlockHeader:
        return self.signed_header.header


@dataclass(frozen=True, slots=True)
class BlockPage:
    """Block headers, newest first: each signed by a genesis producer, each linked to the next.

    They are authentic blocks of the chain, but the page is not tied to the client's view of
    the log (only heights it already holds a tree head for are compared); ``block(height)``
    checks one block completely.
    """

    headers: tuple[SignedBlockHeader, ...]
    next_before: int | None
    """Pass as ``before`` to get the next (older) page; None at the start of the chain."""


@dataclass(frozen=True, slots=True)
class UnprovenResult:
    """A contract query's answer, NOT verified: the node could say anything here.

    The ledger has no state root with per-key proofs yet, so state reads cannot be proven.
    Where it matters, prove the transactions that wrote the state instead.
    """

    height: int
    """The block the node says it answered at."""
    result: JsonValue
