"""``Node``: what the API, the portal and the agency desks need of a running node.

Both the embedded node (``node/embedded.py``, the default) and a cluster node
(``node/cluster/node.py``) provide it, so everything above ``node/`` serves either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Protocol

from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx
from civicledger.node.chain import Chain, CommittedBlock

BlockListener = Callable[[CommittedBlock], None]

log = logging.getLogger(__name__)


class BlockListeners:
    """The listeners a node calls after every durable block, from its one writing thread.

    The tuple is replaced, never mutated, so adding or removing a listener from another thread
    never disturbs a notification in progress; a listener that raises is logged and the others
    still run.
    """

    def __init__(self) -> None:
        self._listeners: tuple[BlockListener, ...] = ()

    def add(self, listener: BlockListener) -> None:
        self._listeners = (*self._listeners, listener)

    def remove(self, listener: BlockListener) -> None:
        self._listeners = tuple(known for known in self._listeners if known is not listener)

    def notify(self, block: CommittedBlock) -> None:
        for listener in self._listeners:
            try:
                listener(block)
            except Exception:
                log.exception("block listener failed")


class Node(Protocol):
    chain: Chain
    """This node's copy of the ledger (reads from any thread)."""

    def submit(self, tx: SignedTx | bytes, timeout: float = 60.0) -> Receipt:
        """Submit and wait for the receipt; raises TxRejected with the reason if refused."""
        ...

    def submit_nowait(self, tx: SignedTx | bytes) -> Future[Receipt]:
        """Admit a transaction (TxRejected at once if refused) and return its future."""
        ...

    def submit_many(self, raws: Sequence[bytes], chunk: int = 500) -> list[Future[Receipt]]:
        """Submit wire transactions in bulk; one future per transaction, in order."""
        ...

    def on_block(self, listener: BlockListener) -> None:
        """Call ``listener`` after every durable block; it must be quick and never block."""
        ...

    def remove_block_listener(self, listener: BlockListener) -> None: ...

    @property
    def mempool_size(self) -> int:
        """Transactions admitted and not yet in a block."""
        ...

    def close(self) -> None: ...


__all__ = ["BlockListener", "BlockListeners", "Node"]
