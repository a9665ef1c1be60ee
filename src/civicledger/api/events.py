"""Live events: committed blocks and contract events, from the node's writer thread to SSE.

The node calls ``EventHub.publish`` after every durable block, on its writer thread. That call
never blocks: it builds the block's messages (only if someone is listening) and hands them to the
event loop. Each subscriber has a bounded buffer; one that falls behind is cut off (its stream
ends, and the browser's EventSource reconnects with ``Last-Event-ID``), so a slow reader can
cost the node nothing but the buffer.

Every message's SSE id is its block height, so ``Last-Event-ID`` always names a height: a
reconnecting subscriber is first sent the blocks after it, read from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError
from civicledger.ledger.block import SignedBlockHeader, SignedTreeHead
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx
from civicledger.node.chain import Chain, CommittedBlock

MAX_TXS_PER_BLOCK_MESSAGE = 100


@dataclass(frozen=True, slots=True)
class Message:
    event: str
    """``block`` or ``event``."""
    height: int
    data: str
    contract: str | None = None
    """For contract events: the contract that emitted it, for per-contract filtering."""


def block_messages(
    header: SignedBlockHeader,
    tree_head: SignedTreeHead,
    txs: Iterable[tuple[SignedTx, Receipt]],
) -> list[Message]:
    """The ``block`` message of one block followed by its contract events, in ledger order."""
    h = header.header
    summaries: list[dict[str, object]] = []
    events: list[Message] = []
    for tx, receipt in txs:
        if len(summaries) < MAX_TXS_PER_BLOCK_MESSAGE:
            summaries.append(
                {
                    "tx_id": receipt.tx_id,
                    "signer": tx.body.signer,
                    "contract": tx.body.contract,
                    "method": tx.body.method,
                    "status": receipt.status,
                }
            )
        for event in receipt.events:
            payload = {
                "height": h.height,
                "tx_id": receipt.tx_id,
                "contract": event.contract,
                "name": event.name,
                "data": event.data,
            }
            data = canonical_json(payload).decode()
            events.append(Message("event", h.height, data, event.contract))
    block = {
        "height": h.height,
        "time_ms": h.time_ms,
        "tx_count": h.tx_count,
        "log_size": h.log_size,
        "hash": h.hash().hex(),
        "producer": h.producer,
        "tree_head": tree_head.model_dump(mode="json"),
        "txs": summaries,
    }
    return [Message("block", h.height, canonical_json(block).decode()), *events]


def committed_messages(block: CommittedBlock) -> list[Message]:
    txs = ((item.prepared.tx, item.receipt) for item in block.included)
    return block_messages(block.header, block.tree_head, txs)


def stored_messages(chain: Chain, first: int, last: int) -> list[Message]:
    """Messages of blocks ``first..last`` (inclusive), read from the ledger."""
    messages: list[Message] = []
    for height in range(first, last + 1):
        header = chain.block(height)
        if header is None:
            break
        stored = chain.block_txs(height)
        txs = ((s.tx, s.receipt) for s in stored)
        messages.extend(block_messages(header, chain.tree_head(height), txs))
    return messages


class SubscriberOverflow(CivicError):  # noqa: N818  (a condition, not a failure of ours)
    """The subscriber fell too far behind, or the server is stopping: its stream ends."""

    reason = "subscriber_overflow"


class Subscription:
    """One listener's bounded buffer; used on the event-loop thread only."""

    def __init__(self, contract: str | None, limit: int) -> None:
        self.contract = contract
        self._limit = limit
        self._items: deque[Message] = deque()
        self._ready = asyncio.Event()
        self._overflowed = False
        self._ended = False

    def offer(self, messages: Sequence[Message]) -> None:
        wanted = [m for m in messages if m.event == "block" or self.contract in (None, m.contract)]
        if len(self._items) + len(wanted) > self._limit:
            self._overflowed = True
            self._items.clear()
        else:
            self._items.extend(wanted)
        self._ready.set()

    def end(self) -> None:
        """End this subscriber's stream (the server is stopping)."""
        self._ended = True
        self._ready.set()

    async def next_batch(self) -> list[Message]:
        await self._ready.wait()
        self._ready.clear()
        if self._overflowed or self._ended:
            raise SubscriberOverflow("the subscriber fell behind or the server is stopping")
        batch = list(self._items)
        self._items.clear()
        return batch


class EventHub:
    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._subscribers: set[Subscription] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Deliver to subscribers on ``loop`` (the server's), or stop delivering (None)."""
        self._loop = loop

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def publish(self, block: CommittedBlock) -> None:
        """Called on the node's writer thread: must never block."""
        loop = self._loop
        if loop is None or not self._subscribers:
            return
        messages = committed_messages(block)
        # RuntimeError: the loop closed under us, as the server shuts down.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._fan_out, messages)

    def end_streams(self) -> None:
        """End every open stream, from any thread: a stopping server need not wait for them."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.end()

    def _fan_out(self, messages: list[Message]) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(messages)

    async def stream(
        self, chain: Chain, *, after: int | None, contract: str | None, replay_chunk: int
    ) -> AsyncIterator[Message]:
        """Messages for one subscriber: missed blocks after ``after`` first, then live ones."""
        subscription = Subscription(contract, self._queue_size)
        self._subscribers.add(subscription)
        try:
            sent = after
            if after is not None:
                while sent is not None and sent < chain.height:
                    first, last = sent + 1, min(sent + replay_chunk, chain.height)
                    replay = await asyncio.to_thread(stored_messages, chain, first, last)
                    for message in replay:
                        if subscription.contract in (None, message.contract) or (
                            message.event == "block"
                        ):
                            yield message
                    sent = last
            while True:
                for message in await subscription.next_batch():
                    if sent is not None and message.height <= sent:
                        continue
                    yield message
        except SubscriberOverflow:
            return
        finally:
            self._subscribers.discard(subscription)
