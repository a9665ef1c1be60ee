"""``ClusterNode``: one agency's node of a cluster ordered by a NATS JetStream stream.

A transaction's way through it:
1. ``submit``: the stateless checks (``admission.check_stateless``), a nonce and expiry check
   against committed state, the contract's argument model; then the envelope is published to
   ``civic.<chain>.tx`` with ``Nats-Msg-Id`` = the tx id, so the same transaction sent to two
   nodes is stored once.
2. every node reads the stream in order (an ordered consumer on the event-loop thread hands the
   messages to the applier thread) and feeds them to its ``Cutter`` (``blocks.py``); nodes
   publish *cut* messages when their oldest pending transaction waited ``block_interval``.
3. a cut that closes a block is executed by the applier thread (``Chain.stage_block`` with the
   cutter as producer and the cut's stream time as block time), signed with THIS node's key,
   and written in one SQLite transaction together with the stream position.
4. the submitter's future resolves with the receipt once the LOCAL node committed it (or with
   ``TxRejected`` when the executor dropped it); the node then publishes its attestation.
5. attestations of every node are read from ``civic.<chain>.attest``: finality, divergence.

Threads: the caller's; ``civic-nats`` (asyncio loop: nats-py, publishing, consuming); and
``civic-applier`` (the only writer of the chain and of the attestation book).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import tempfile
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from civicledger.contracts.executor import PreparedTx
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, LedgerError, NodeError, RejectReason, TxRejected
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx, decode_tx
from civicledger.node.admission import check_stateless
from civicledger.node.chain import DB_NAME, Chain
from civicledger.node.cluster import stream
from civicledger.node.cluster.attest import BOOK_NAME, AttestationBook, Fault, SignedAttestation
from civicledger.node.cluster.blocks import BlockPlan, Cutter, SignedCut, StreamMessage
from civicledger.node.cluster.config import ClusterConfig
from civicledger.node.cluster.snapshot import (
    NotFinal,
    SnapshotInfo,
    fetch_snapshot,
    install_snapshot,
    verify_snapshot,
)
from civicledger.node.lock import DirectoryLock
from civicledger.node.protocol import BlockListener, BlockListeners

log = logging.getLogger(__name__)

META_CUT_SEQ = "stream_cut_seq"
REPAIR_QUORUM_WAIT_S = 15.0
WATCHDOG_S = 2.0
MAX_TRACKED = 1000
"""Blocks awaiting finality (for the finality histogram) and faults kept in memory."""
SILENT_AFTER_BLOCKS = 3
"""A peer whose latest attestation is this many blocks behind this node's head is reported as
silent (down, paused or cut off from the stream): a liveness report, not a divergence."""
META_THROUGH = "stream_through"


class NodeDiverged(NodeError):  # noqa: N818  (reads as the state: "node diverged")
    reason = "node_diverged"


class StreamTruncated(NodeError):  # noqa: N818
    reason = "stream_truncated"


FINALITY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class ClusterStats:
    """Counters the metrics read (written by the applier thread only)."""

    attestations: int = 0
    divergences: int = 0
    finality_counts: list[int] = field(default_factory=lambda: [0] * len(FINALITY_BUCKETS_S))
    """Per bucket (not cumulative): blocks whose commit → quorum took at most that long."""
    finality_count: int = 0
    finality_sum: float = 0.0

    def observe_finality(self, seconds: float) -> None:
        for i, bound in enumerate(FINALITY_BUCKETS_S):
            if seconds <= bound:
                self.finality_counts[i] += 1
                break
        self.finality_count += 1
        self.finality_sum += seconds


@dataclass(frozen=True, slots=True)
class _Att:
    seq: int
    data: bytes


def read_position(chain: Chain) -> tuple[int, int]:
    """(last cut sequence, last transaction sequence in a block) stored with the head block."""
    cut = chain.meta(META_CUT_SEQ)
    through = chain.meta(META_THROUGH)
    return int(cut or b"0"), int(through or b"0")


class ClusterNode:
    """Runs a Chain from the cluster's stream. Use as a context manager."""

    def __init__(  # noqa: PLR0915  (one place that states every field the threads share)
        self,
        data_dir: Path,
        node_key: PrivateKey,
        config: ClusterConfig,
        *,
        registry: ContractRegistry | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self._lock_file = DirectoryLock(self.data_dir)
        self._lock_file.acquire()
        try:
            self.chain = Chain(self.data_dir, registry)
        except BaseException:
            self._lock_file.release()
            raise
        genesis = self.chain.genesis
        self.producers = frozenset(genesis.producers)
        if node_key.public.did not in self.producers:
            self.chain.close()
            self._lock_file.release()
            raise NodeError("this node's key is not a block producer in the genesis file")
        self._key = node_key
        self.did = node_key.public.did
        self.quorum = config.quorum_of(len(self.producers))
        self.names = stream.Names.of(self.chain.chain_id, config)
        self.max_block_txs = config.max_block_txs
        self.block_interval = config.block_interval_ms / 1000
        # The lowest-ranked producer cuts first; the others wait longer, so the usual case is
        # one cut per block, and any node still cuts when that one is down.
        rank = sorted(self.producers).index(self.did)
        self._cut_wait = self.block_interval * (1 + 2 * rank)
        self.book = AttestationBook(
            self.data_dir / BOOK_NAME, self.chain.chain_id, self.producers, self.quorum
        )
        cut_seq, through = read_position(self.chain)
        self._cutter = Cutter(
            self.chain.chain_id, self.producers, last_cut_seq=cut_seq, through=through
        )
        self.stats = ClusterStats()
        self.faulty: list[Fault] = []
        self.final_height = 0
        self.diverged = self.book.diverged_at is not None
        self._commit_times: dict[int, float] = {}
        self._arrivals: dict[int, float] = {}
        self._last_cut: tuple[int, float] = (0, 0.0)
        self._futures: dict[bytes, list[Future[Receipt]]] = {}
        self._futures_lock = threading.Lock()
        self._listeners = BlockListeners()
        self._inbox: queue.SimpleQueue[StreamMessage | _Att | None] = queue.SimpleQueue()
        self._closing = False
        self._failed: str | None = None
        self._loop = asyncio.new_event_loop()
        self._nc: NatsClient | None = None
        self._subs: dict[str, JetStreamContext.PushSubscription] = {}
        self._seen: dict[str, float] = {}
        self._watchdog: asyncio.Future[None] | None = None
        self._js: JetStreamContext | None = None
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="civic-nats", daemon=True
        )
        self._loop_thread.start()
        try:
            self._run(self._start(), start_timeout)
        except BaseException:
            self._stop_loop()
            self.book.close()
            self.chain.close()
            self._lock_file.release()
            raise
        self._applier = threading.Thread(target=self._apply_loop, name="civic-applier")
        self._applier.start()

    # -- lifecycle ----------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self._nc = await stream.connect(self.config, f"civic-{self.did[-12:]}")
        self._js = self._nc.jetstream()
        await stream.ensure_streams(self._js, self.names, self.config)
        first, last = await stream.stream_bounds(self._js, self.names.stream)
        resume = self._cutter.through + 1
        if last >= resume and first > resume:
            raise StreamTruncated(
                f"the stream starts at {first}; this node needs {resume}: "
                "repair it from a peer's snapshot (civic node repair --from URL)"
            )
        self._subs["stream"] = await self._subscribe_stream(resume)
        self._subs["attest"] = await self._subscribe_attest(self.book.last_seq + 1)
        self._watchdog = asyncio.ensure_future(self._watch())
        if self.chain.height > 0 and not self.diverged:
            # A crash between a block's commit and its attestation would leave it unattested
            # by this node for good; re-publishing is harmless (same Nats-Msg-Id).
            head = SignedAttestation.of(self.chain.head, self._key)
            await self._publish_attestation(head)

    async def _subscribe_stream(self, start: int) -> JetStreamContext.PushSubscription:
        assert self._js is not None
        return await stream.subscribe_from(
            self._js, self.names.log_filter, self.names.stream, start, self._on_stream
        )

    async def _subscribe_attest(self, start: int) -> JetStreamContext.PushSubscription:
        assert self._js is not None
        return await stream.subscribe_from(
            self._js, self.names.attest, self.names.attest_stream, start, self._on_attest
        )

    async def _on_stream(self, msg: Msg) -> None:
        self._seen["stream"] = time.monotonic()
        self._inbox.put(stream.stream_message(msg, self.names))

    async def _on_attest(self, msg: Msg) -> None:
        self._seen["attest"] = time.monotonic()
        self._inbox.put(_Att(msg.metadata.sequence.stream, msg.data))

    async def _watch(self) -> None:
        """Re-create a consumer that stopped delivering while its stream has more.

        nats-py's ordered consumer re-creates itself after a gap, but that request can fail
        while JetStream elects a new leader (a server was killed), and then it stays silent.
        Redelivery is harmless: the cutter and the book ignore sequences they have seen.
        """
        while True:
            await asyncio.sleep(WATCHDOG_S)
            if self._js is None or self.diverged:
                continue
            checks = (
                ("stream", self.names.stream, self._cutter.position, self._subscribe_stream),
                ("attest", self.names.attest_stream, self.book.last_seq, self._subscribe_attest),
            )
            for key, name, position, subscribe in checks:
                if time.monotonic() - self._seen.get(key, 0.0) < WATCHDOG_S:
                    continue
                try:
                    _, last = await stream.stream_bounds(self._js, name)
                    if last <= position:
                        continue
                    log.warning(
                        "consumer of %s stalled at %d of %d; re-creating", name, position, last
                    )
                    with contextlib.suppress(Exception):
                        await self._subs[key].unsubscribe()
                    self._subs[key] = await subscribe(position + 1)
                    self._seen[key] = time.monotonic()
                except Exception as e:  # noqa: BLE001  (retried at the next tick)
                    log.warning("cannot check consumer of %s: %s", name, e)

    def close(self) -> None:
        """Stop consuming, finish the block being applied, and close."""
        if self._closing:
            return
        self._closing = True
        self._inbox.put(None)
        self._applier.join()
        self._stop_loop()
        with self._futures_lock:
            waiting = [f for fs in self._futures.values() for f in fs]
            self._futures.clear()
        for future in waiting:
            _settle(future, error=NodeError("the node stopped before the transaction committed"))
        self.book.close()
        self.chain.close()
        self._lock_file.release()

    def _stop_loop(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                self._run(stream.close(self._nc), 10)
        with contextlib.suppress(Exception):
            self._run(_cancel_tasks(), 10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(10)
        if not self._loop.is_running():
            self._loop.close()

    def __enter__(self) -> ClusterNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def on_block(self, listener: BlockListener) -> None:
        """Call ``listener`` (from the applier thread) after every durable block."""
        self._listeners.add(listener)

    def remove_block_listener(self, listener: BlockListener) -> None:
        self._listeners.remove(listener)

    @property
    def mempool_size(self) -> int:
        """Transactions read from the stream and not yet in a block."""
        return len(self._cutter.pending)

    @property
    def serving(self) -> bool:
        return not self.diverged and self._failed is None

    @property
    def stream_seq(self) -> int:
        return self._cutter.last_cut_seq

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, tx: SignedTx | bytes, timeout: float = 60.0) -> Receipt:
        return self.submit_nowait(tx).result(timeout)

    def submit_many(self, raws: Sequence[bytes], chunk: int = 500) -> list[Future[Receipt]]:
        """Submit wire transactions; a refused one's future raises its TxRejected."""
        del chunk  # publishing is asynchronous already; kept for the Node protocol
        futures: list[Future[Receipt]] = []
        for raw in raws:
            try:
                futures.append(self.submit_nowait(raw))
            except TxRejected as e:
                failed: Future[Receipt] = Future()
                failed.set_exception(e)
                futures.append(failed)
        return futures

    def submit_nowait(self, tx: SignedTx | bytes) -> Future[Receipt]:
        if self._closing:
            raise NodeError("the node is shutting down")
        if not self.serving:
            raise NodeDiverged("this node's state diverged from the cluster; it is not serving")
        signed = check_stateless(self.chain.chain_id, tx)
        stored = self.chain.tx(signed.tx_id)
        if stored is not None:
            done: Future[Receipt] = Future()
            done.set_result(stored.receipt)
            return done
        body = signed.body
        if body.nonce <= self.chain.last_nonce(body.signer):
            raise TxRejected(RejectReason.NONCE_REPLAYED, f"nonce {body.nonce} already used")
        head_time = self.chain.head.header.time_ms
        if body.expires_at <= head_time:
            raise TxRejected(
                RejectReason.EXPIRED, f"expired at {body.expires_at}; chain time is {head_time}"
            )
        self.chain.prepare(signed)  # contract, method and argument model: TxRejected here
        future: Future[Receipt] = Future()
        with self._futures_lock:
            self._futures.setdefault(signed.tx_id, []).append(future)
        asyncio.run_coroutine_threadsafe(self._publish_tx(signed, future), self._loop)
        return future

    async def _publish_tx(self, signed: SignedTx, future: Future[Receipt]) -> None:
        assert self._js is not None
        try:
            ack = await stream.publish(
                self._js,
                self.names.tx,
                signed.envelope_bytes(),
                signed.tx_id_hex,
                self.names.stream,
            )
        except Exception as e:  # noqa: BLE001  (any failure must reach the submitter)
            self._forget(signed.tx_id, future)
            _settle(future, error=NodeError(f"the stream did not take the transaction: {e}"))
            return
        if ack.duplicate:
            # Sent before (to this node or another): it resolves when its block commits, or
            # has already.
            stored = self.chain.tx(signed.tx_id)
            if stored is not None:
                self._forget(signed.tx_id, future)
                _settle(future, stored.receipt)

    def _forget(self, tx_id: bytes, future: Future[Receipt]) -> None:
        with self._futures_lock:
            left = [f for f in self._futures.get(tx_id, []) if f is not future]
            if left:
                self._futures[tx_id] = left
            else:
                self._futures.pop(tx_id, None)

    def _resolve(self, tx_id: bytes, receipt: Receipt | None, error: BaseException | None) -> None:
        with self._futures_lock:
            futures = self._futures.pop(tx_id, [])
        for future in futures:
            _settle(future, receipt, error=error)

    # -- applying -----------------------------------------------------------------------------

    def _apply_loop(self) -> None:
        tick = min(self.block_interval, 0.05)
        while True:
            item: StreamMessage | _Att | object | None
            try:
                item = self._inbox.get(timeout=tick)
            except queue.Empty:
                item = _TICK
            if item is None:
                return
            try:
                if isinstance(item, _Att):
                    self._on_attestation(item)
                elif isinstance(item, StreamMessage):
                    self._on_message(item)
                self._maybe_cut()
            except Exception as e:
                log.exception("cluster node stopped applying the stream")
                self._failed = str(e)
                return

    def _on_message(self, message: StreamMessage) -> None:
        if self.diverged:
            return  # a diverged node commits nothing until it is repaired
        before = len(self._cutter.pending)
        plan = self._cutter.feed(message)
        if len(self._cutter.pending) > before:
            self._arrivals[message.seq] = time.monotonic()
        if plan is not None:
            for seq, _ in plan.txs:
                self._arrivals.pop(seq, None)
            self._apply(plan)

    def _apply(self, plan: BlockPlan) -> None:
        chain = self.chain
        prepared: list[PreparedTx] = []
        for _, data in plan.txs:
            try:
                prepared.append(chain.prepare(check_stateless(chain.chain_id, data)))
            except TxRejected as e:
                # Every node reads the same bytes and skips this one alike.
                with contextlib.suppress(CivicError):
                    self._resolve(decode_tx(data).tx_id, None, e)
        meta = {
            META_CUT_SEQ: str(plan.cut_seq).encode(),
            META_THROUGH: str(plan.through).encode(),
        }
        staged, dropped = chain.stage_block(prepared, plan.time_ms, self._key, plan.producer)
        if staged is None:
            chain.write_meta(meta)
            for gone in dropped:
                self._resolve(gone.prepared.tx.tx_id, None, gone.error)
            return
        block = chain.write_block(staged, meta)
        height = block.header.header.height
        self._commit_times[height] = time.monotonic()
        if len(self._commit_times) > MAX_TRACKED:
            del self._commit_times[min(self._commit_times)]
        for done in block.included:
            self._resolve(done.prepared.tx.tx_id, done.receipt, None)
        for gone in block.dropped:
            self._resolve(gone.prepared.tx.tx_id, None, gone.error)
        self._listeners.notify(block)
        attestation = SignedAttestation.of(block.header, self._key)
        asyncio.run_coroutine_threadsafe(self._publish_attestation(attestation), self._loop)
        self._evaluate(height)

    async def _publish_attestation(self, attestation: SignedAttestation) -> None:
        assert self._js is not None
        try:
            await stream.publish(
                self._js,
                self.names.attest,
                attestation.wire(),
                attestation.msg_id(),
                self.names.attest_stream,
            )
        except CivicError:
            log.exception("attestation of block %d not published", attestation.attestation.height)

    def _maybe_cut(self) -> None:
        pending = self._cutter.pending
        if not pending or self.diverged:
            return
        now = time.monotonic()
        oldest = self._arrivals.get(pending[0][0], now)
        full = len(pending) >= self.max_block_txs
        if not full and now - oldest < self._cut_wait:
            return
        through = pending[min(len(pending), self.max_block_txs) - 1][0]
        last_through, last_time = self._last_cut
        if through == last_through and now - last_time < max(1.0, 10 * self.block_interval):
            return
        self._last_cut = (through, now)
        cut = SignedCut.sign(self.chain.chain_id, through, self._key)
        asyncio.run_coroutine_threadsafe(self._publish_cut(cut), self._loop)

    async def _publish_cut(self, cut: SignedCut) -> None:
        assert self._js is not None
        try:
            await stream.publish(
                self._js, self.names.cut, cut.wire(), cut.msg_id(), self.names.stream
            )
        except CivicError:
            log.warning("cut through %d not published; will retry", cut.cut.through)

    # -- attestations -------------------------------------------------------------------------

    def _on_attestation(self, item: _Att) -> None:
        stored, fault = self.book.add(item.seq, item.data)
        if fault is not None:
            self._report(fault)
        if stored is None:
            return
        self.stats.attestations += 1
        if stored.attestation.height <= self.chain.height:
            self._evaluate(stored.attestation.height)

    def _evaluate(self, height: int) -> None:
        own = self.chain.block(height) if height != self.chain.height else self.chain.head
        if own is None:
            return
        verdict = self.book.verdict(height, own.header.hash().hex(), self.did)
        known = {(f.node, f.height) for f in self.faulty}
        if verdict.diverged:
            # The others agree among themselves: this node is the faulty one, not they.
            self.faulty = [f for f in self.faulty if f.height != height or f.node == self.did]
            if (self.did, height) not in known:
                self._report(Fault(self.did, height, "diverged_from_quorum"))
        else:
            for node in verdict.dissenting:
                if (node, height) not in known:
                    self._report(Fault(node, height, "header_mismatch"))
        if verdict.diverged and not self.diverged:
            self.diverged = True
            self.book.mark_diverged(height)
            log.error(
                "node %s diverged at block %d: a quorum of other nodes attested another header",
                self.did,
                height,
            )
        if verdict.final and height > self.final_height:
            self.final_height = height
            committed = self._commit_times.pop(height, None)
            if committed is not None:
                self.stats.observe_finality(time.monotonic() - committed)

    def _report(self, fault: Fault) -> None:
        self.faulty = [*self.faulty[-(MAX_TRACKED - 1) :], fault]
        self.stats.divergences += 1
        log.error("divergence: node %s at block %d (%s)", fault.node, fault.height, fault.reason)

    def is_final(self, height: int) -> bool:
        own = self.chain.block(height)
        return own is not None and self.book.is_final(height, own.header.hash().hex())

    def peers(self) -> list[dict[str, Any]]:
        """Each other producer: its latest attestation, whether it agrees with us, how many
        blocks it is behind our head, and whether that makes it silent."""
        latest = self.book.latest_by_node()
        bad = {f.node for f in self.faulty}
        height = self.chain.height
        peers = []
        for node in sorted(self.producers - {self.did}):
            attested = latest.get(node, -1)
            behind = max(height - attested, 0)
            peers.append(
                {
                    "node": node,
                    "attested_height": attested,
                    "agrees": node not in bad,
                    "behind": behind,
                    "silent": behind >= SILENT_AFTER_BLOCKS,
                }
            )
        return peers


async def _cancel_tasks() -> None:
    """End the client's background tasks, so closing the loop leaves none pending."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


_TICK = object()
"""Stands for "nothing arrived": the applier still checks whether to cut."""


def _settle(
    future: Future[Receipt], receipt: Receipt | None = None, *, error: BaseException | None = None
) -> None:
    with contextlib.suppress(InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(Receipt, receipt))


async def _sync_book(config: ClusterConfig, names: stream.Names, book: AttestationBook) -> None:
    """Read the attest stream into ``book`` up to its current end."""
    nc = await stream.connect(config, "civic-repair")
    try:
        js = nc.jetstream()
        _, last = await stream.stream_bounds(js, names.attest_stream)
        if book.last_seq >= last:
            return
        done = asyncio.Event()

        async def take(msg: Msg) -> None:
            seq = msg.metadata.sequence.stream
            book.add(seq, msg.data)
            if seq >= last:
                done.set()

        sub = await stream.subscribe_from(
            js, names.attest, names.attest_stream, book.last_seq + 1, take
        )
        await asyncio.wait_for(done.wait(), 60)
        await sub.unsubscribe()
    finally:
        await stream.close(nc)


def repair(
    data_dir: Path,
    peer_url: str,
    config: ClusterConfig,
    *,
    registry: ContractRegistry | None = None,
    quorum_wait_s: float = REPAIR_QUORUM_WAIT_S,
) -> SnapshotInfo:
    """Replace a stopped node's ledger with a peer's snapshot, verified against the attestations
    in the attest stream (a quorum on its head header) and by replay from genesis.

    The genesis (chain id, producers) comes from the node's own ledger when it has one; a new
    node takes it from the snapshot, whose head must still be final by those producers' quorum.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = DirectoryLock(data_dir)
    lock.acquire()
    try:
        with tempfile.TemporaryDirectory(prefix="civic-repair-", dir=data_dir) as scratch:
            fetched = Path(scratch) / "snapshot.sqlite"
            fetch_snapshot(peer_url, fetched)
            genesis = _genesis_of(data_dir / DB_NAME if (data_dir / DB_NAME).exists() else fetched)
            if _genesis_of(fetched) != genesis:
                raise LedgerError("the snapshot is of another chain")
            producers = frozenset(genesis.producers)
            book = AttestationBook(
                data_dir / BOOK_NAME, genesis.chain_id, producers, config.quorum_of(len(producers))
            )
            try:
                names = stream.Names.of(genesis.chain_id, config)
                deadline = time.monotonic() + quorum_wait_s
                while True:
                    # The peer's newest block may still be collecting its attestations.
                    asyncio.run(_sync_book(config, names, book))
                    try:
                        info = verify_snapshot(fetched, book, registry)
                        break
                    except NotFinal:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
                install_snapshot(data_dir, fetched)
                book.mark_diverged(None)
            finally:
                book.close()
    finally:
        lock.release()
    log.warning("repaired from %s: block %d (%s)", peer_url, info.height, info.header_hash)
    return info


def start_or_repair(
    data_dir: Path,
    node_key: PrivateKey,
    config: ClusterConfig,
    *,
    registry: ContractRegistry | None = None,
) -> ClusterNode:
    """Start the node; if it has no ledger or the stream no longer holds where it stopped,
    repair it from the first of ``config.peers`` that gives a verified snapshot, then start."""
    try:
        return ClusterNode(data_dir, node_key, config, registry=registry)
    except (StreamTruncated, LedgerError) as e:
        missing = not (Path(data_dir) / DB_NAME).exists()
        if not config.peers or not (missing or isinstance(e, StreamTruncated)):
            raise
        cause: CivicError = e
    for peer in config.peers:
        try:
            repair(data_dir, peer, config, registry=registry)
        except CivicError as e:
            log.warning("no usable snapshot from %s: %s", peer, e)
            cause = e
            continue
        return ClusterNode(data_dir, node_key, config, registry=registry)
    raise NodeError(f"no peer could repair this node: {cause}") from cause


def _genesis_of(path: Path) -> Genesis:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'genesis'").fetchone()
    except sqlite3.Error as e:
        raise LedgerError(f"{path} is not a ledger: {e}") from e
    finally:
        conn.close()
    if row is None:
        raise LedgerError(f"{path} has no genesis")
    return Genesis.from_json_bytes(bytes(row[0]))


__all__ = [
    "FINALITY_BUCKETS_S",
    "ClusterNode",
    "ClusterStats",
    "NodeDiverged",
    "StreamTruncated",
    "read_position",
    "repair",
    "start_or_repair",
]
