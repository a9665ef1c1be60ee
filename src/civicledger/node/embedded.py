"""The embedded node: one process, one SQLite file, no server to install.

A transaction's way through it:
1. admission: size, parsing, chain id and signature (in the caller's thread, or in worker
   processes for ``submit_many``); contract, method and arguments; nonce and expiry against
   what is already pending. Failing any of these refuses the transaction with ``TxRejected``
   and nothing is written.
2. the mempool, in arrival order.
3. the producer thread cuts a block when ``max_block_txs`` are waiting or ``block_interval``
   has passed and executes it (nonce, expiry and policy are checked again against the state the
   block really sees); a writer thread commits it in one SQLite transaction while the producer
   executes the next block.
4. once the block is durable, each submitter's future resolves with its receipt; a dropped
   transaction's future raises the ``TxRejected`` that dropped it.

Block time is taken from the clock here, by the node, and written into the header; contracts
only ever see that header time, so replay is deterministic.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, Future, InvalidStateError, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import cast

from civicledger.contracts.executor import Included, PreparedTx
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, NodeError, RejectReason, TxRejected
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx
from civicledger.node.admission import (
    Checked,
    Refused,
    check_batch,
    check_stateless,
    rebuild,
    refused_error,
    worker_pool,
)
from civicledger.node.chain import Chain, StagedBlock
from civicledger.node.lock import DirectoryLock
from civicledger.node.protocol import BlockListener, BlockListeners

log = logging.getLogger(__name__)


class EmbeddedNode:
    """Runs a Chain with a mempool and a block-producer thread. Use as a context manager."""

    def __init__(
        self,
        data_dir: Path,
        node_key: PrivateKey,
        *,
        registry: ContractRegistry | None = None,
        max_block_txs: int = 2000,
        block_interval: float = 0.05,
        max_mempool: int = 200_000,
        verify_workers: int = 2,
    ) -> None:
        self._lock_file = DirectoryLock(Path(data_dir))
        self._lock_file.acquire()
        try:
            self.chain = Chain(Path(data_dir), registry)
        except BaseException:
            self._lock_file.release()
            raise
        if node_key.public.did not in self.chain.genesis.producers:
            self.chain.close()
            self._lock_file.release()
            raise NodeError("this node's key is not a block producer in the genesis file")
        self._key = node_key
        self.max_block_txs = max_block_txs
        self.block_interval = block_interval
        self.max_mempool = max_mempool
        self._queue: deque[tuple[PreparedTx, Future[Receipt]]] = deque()
        self._inbox: deque[tuple[Future[list[Checked | Refused]], list[Future[Receipt]]]] = deque()
        self._next_nonce: dict[str, int] = {}
        self._futures: dict[int, Future[Receipt]] = {}
        """Futures of transactions taken from the mempool, by id of their PreparedTx."""
        self._cond = threading.Condition()
        self._listeners = BlockListeners()
        self._verify_workers = verify_workers
        self._pool: Executor | None = None
        self._closing = False
        self._producer = threading.Thread(target=self._produce_loop, name="civic-producer")
        self._producer.start()

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is already admitted, then stop."""
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify_all()
        self._producer.join()
        if self._pool is not None:
            self._pool.shutdown()
        self.chain.close()
        self._lock_file.release()

    def __enter__(self) -> EmbeddedNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def on_block(self, listener: BlockListener) -> None:
        """Call ``listener`` (from the writer thread) after every durable block.

        Listeners run before the next block is written, so they must be quick and must not block.
        """
        self._listeners.add(listener)

    def remove_block_listener(self, listener: BlockListener) -> None:
        self._listeners.remove(listener)

    @property
    def mempool_size(self) -> int:
        return len(self._queue)

    # -- submitting ---------------------------------------------------------------------------

    def submit(self, tx: SignedTx | bytes, timeout: float = 60.0) -> Receipt:
        """Submit and wait for the receipt; raises TxRejected with the reason if refused."""
        return self.submit_nowait(tx).result(timeout)

    def submit_nowait(self, tx: SignedTx | bytes) -> Future[Receipt]:
        """Admit a transaction (TxRejected at once if it is refused) and return its future."""
        signed = check_stateless(self.chain.chain_id, tx)
        return self._enqueue(self.chain.prepare(signed))

    def submit_many(self, raws: Sequence[bytes], chunk: int = 500) -> list[Future[Receipt]]:
        """Submit wire transactions in bulk; returns at once with one future per transaction.

        Stateless checks run in worker processes; the producer thread then admits each checked
        chunk in the order given (so one signer's nonces stay in order) and a refused
        transaction's future raises its TxRejected. Admission happens on the producer thread
        because a second Python thread doing it would take the GIL from the producer, the
        one serial stage (measured: the producer then ran at 40% of its speed).

        The workers are started with ``spawn``, which re-imports the calling script's main
        module: a script that calls this needs the usual ``if __name__ == "__main__":`` guard.
        """
        with self._cond:
            if self._closing:
                raise NodeError("the node is shutting down")
            if self._pool is None:
                self._pool = worker_pool(self._verify_workers)
            pool = self._pool
        futures: list[Future[Receipt]] = [Future() for _ in raws]
        for start in range(0, len(raws), chunk):
            checking = pool.submit(check_batch, self.chain.chain_id, raws[start : start + chunk])
            with self._cond:
                self._inbox.append((checking, futures[start : start + chunk]))
            checking.add_done_callback(self._wake)
        return futures

    def _wake(self, _: object) -> None:
        with self._cond:
            self._cond.notify_all()

    def _admit_checked(self) -> None:
        """Move every checked chunk at the head of the inbox into the mempool (lock held)."""
        while self._inbox and self._inbox[0][0].done():
            checking, futures = self._inbox.popleft()
            try:
                results = checking.result()
            except Exception as e:  # noqa: BLE001  (a dead worker fails its chunk, not the node)
                for future in futures:
                    _settle(future, error=NodeError(f"signature check failed to run: {e}"))
                continue
            for item, future in zip(results, futures, strict=True):
                try:
                    if isinstance(item, Refused):
                        raise refused_error(item)
                    self._admit_locked(self.chain.prepare(rebuild(item)), future)
                except TxRejected as e:
                    _settle(future, error=e)

    def _enqueue(self, prepared: PreparedTx) -> Future[Receipt]:
        future: Future[Receipt] = Future()
        with self._cond:
            if self._closing:
                raise NodeError("the node is shutting down")
            self._admit_locked(prepared, future)
        return future

    def _admit_locked(self, prepared: PreparedTx, future: Future[Receipt]) -> None:
        """Nonce, expiry and capacity checks against what is pending; raises TxRejected."""
        body = prepared.tx.body
        if len(self._queue) >= self.max_mempool:
            raise TxRejected(RejectReason.MEMPOOL_FULL, "the mempool is full; retry later")
        expected = self._next_nonce.get(body.signer)
        if expected is None:
            expected = self.chain.last_nonce(body.signer) + 1
        if body.nonce < expected:
            raise TxRejected(
                RejectReason.NONCE_REPLAYED, f"nonce {body.nonce} already used or pending"
            )
        if body.nonce > expected:
            raise TxRejected(
                RejectReason.NONCE_OUT_OF_ORDER, f"nonce {body.nonce}; expected {expected}"
            )
        head_time = self.chain.head.header.time_ms
        if body.expires_at <= head_time:
            raise TxRejected(
                RejectReason.EXPIRED, f"expired at {body.expires_at}; chain time is {head_time}"
            )
        self._queue.append((prepared, future))
        self._next_nonce[body.signer] = body.nonce + 1
        if len(self._queue) == 1 or len(self._queue) >= self.max_block_txs:
            self._cond.notify_all()  # start the block timer, or cut a full block now

    # -- producing ----------------------------------------------------------------------------

    def _take_batch(self) -> list[tuple[PreparedTx, Future[Receipt]]]:
        with self._cond:
            while True:
                self._admit_checked()
                if self._queue:
                    break
                if self._closing and not self._inbox:
                    return []
                self._cond.wait(0.1 if self._inbox else None)
            deadline = time.monotonic() + self.block_interval
            while len(self._queue) < self.max_block_txs and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
                self._admit_checked()
            count = min(len(self._queue), self.max_block_txs)
            return [self._queue.popleft() for _ in range(count)]

    def _produce_loop(self) -> None:
        """Stage block N+1 while a writer thread writes block N (the write is mostly SQLite and
        fsync, which release the GIL). Receipts are released only once their block is durable.
        """
        writing: Future[bool] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="civic-writer") as writer:
            while True:
                batch = self._take_batch()
                if not batch:
                    break
                if writing is not None and writing.done():
                    writing = None  # finished (a failed write already reset the chain)
                staged = self._stage(batch)
                if writing is not None and not writing.result():
                    # Block N failed while N+1 was staged on top of it: N+1 built on state that
                    # never became durable.
                    self.chain.reset()
                    if staged is not None:
                        self._fail(staged.included, "an earlier block could not be written")
                    staged = None
                writing = writer.submit(self._write, staged) if staged is not None else None
            if writing is not None:
                writing.result()

    def _stage(self, batch: list[tuple[PreparedTx, Future[Receipt]]]) -> StagedBlock | None:
        futures = {id(prepared): future for prepared, future in batch}
        self._futures.update(futures)
        try:
            staged, dropped = self.chain.stage_block(
                [prepared for prepared, _ in batch], int(time.time() * 1000), self._key
            )
        except CivicError as e:
            log.exception("block production failed")
            self.chain.reset()
            self._fail([p for p, _ in batch], f"block could not be produced: {e}")
            return None
        if dropped:
            self._forget_pending({d.prepared.tx.body.signer for d in dropped})
        for item in dropped:
            _settle(self._futures.pop(id(item.prepared)), error=item.error)
        return staged

    def _write(self, staged: StagedBlock) -> bool:
        """On the writer thread: write the block, then release its receipts."""
        try:
            block = self.chain.write_block(staged)
        except Exception as e:
            log.exception("block could not be written")
            self._fail(staged.included, f"block could not be committed: {e}")
            return False
        for item in block.included:
            _settle(self._futures.pop(id(item.prepared)), item.receipt)
        self._listeners.notify(block)
        return True

    def _fail(self, items: Sequence[PreparedTx | Included], why: str) -> None:
        prepared = [i.prepared if isinstance(i, Included) else i for i in items]
        self._forget_pending({p.tx.body.signer for p in prepared})
        error = NodeError(why)
        for p in prepared:
            _settle(self._futures.pop(id(p)), error=error)

    def _forget_pending(self, signers: set[str]) -> None:
        """After drops, re-read these signers' next nonce from committed state on next admission."""
        with self._cond:
            for signer in signers:
                self._next_nonce.pop(signer, None)


def _settle(
    future: Future[Receipt], receipt: Receipt | None = None, *, error: BaseException | None = None
) -> None:
    """Resolve a submitter's future; one the submitter cancelled is left alone.

    A cancelled future must never stop the producer or writer thread: the transaction's fate
    does not depend on whether anyone still waits for it.
    """
    with contextlib.suppress(InvalidStateError):
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(cast(Receipt, receipt))
