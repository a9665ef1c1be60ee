"""Stateless admission checks, run in worker processes so signature checks use every core.

Threads do not help here: half of a check is Python (parsing, validation, canonical bytes) and
serialises on the GIL (measured: 2 threads gave 1.1x). A worker process does the whole check and
returns only the canonical body bytes, the signature and the id; the node rebuilds the
transaction from those without repeating any check (``rebuild``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

from civicledger.errors import RejectReason, TxRejected
from civicledger.ledger.tx import MAX_TX_BYTES, SignedTx, TxBody, decode_tx, signer_key


@dataclass(frozen=True, slots=True)
class Checked:
    body_bytes: bytes
    signature: bytes
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str
    message: str


def check_stateless(chain_id: str, tx: SignedTx | bytes) -> SignedTx:
    """Size, parsing, body validation, chain id and signature; raises TxRejected."""
    signed = decode_tx(tx) if isinstance(tx, bytes) else tx
    if not isinstance(tx, bytes) and len(signed.envelope_bytes()) > MAX_TX_BYTES:
        # Wire bytes are measured by ``decode_tx``; an object gets the same limit on the
        # canonical envelope that would be stored, or it could never be decoded again.
        raise TxRejected(
            RejectReason.OVERSIZE,
            f"transaction is {len(signed.envelope_bytes())} bytes; the limit is {MAX_TX_BYTES}",
        )
    if signed.body.chain_id != chain_id:
        raise TxRejected(
            RejectReason.WRONG_CHAIN,
            f"transaction is for chain {signed.body.chain_id!r}; this is {chain_id!r}",
        )
    signed.verify_signature()
    return signed


def check_batch(chain_id: str, raws: Sequence[bytes]) -> list[Checked | Refused]:
    """Run in a worker process: check each raw transaction."""
    out: list[Checked | Refused] = []
    for raw in raws:
        try:
            tx = check_stateless(chain_id, raw)
        except TxRejected as e:
            out.append(Refused(e.reason, e.message))
        else:
            out.append(Checked(tx.body_bytes, tx.signature, tx.tx_id))
    return out


def rebuild(checked: Checked) -> SignedTx:
    """A SignedTx from bytes a worker already parsed, validated and verified."""
    body = TxBody.model_construct(**json.loads(checked.body_bytes))
    return SignedTx(
        body, checked.body_bytes, checked.signature, checked.tx_id, signer_key(body.signer)
    )


def refused_error(refused: Refused) -> TxRejected:
    return TxRejected(RejectReason(refused.reason), refused.message)


WORKER_NICENESS = 10


def _lower_priority() -> None:
    os.nice(WORKER_NICENESS)


def worker_pool(workers: int) -> Executor:
    """Verify workers, started fresh (``spawn``: forking a process that runs threads is unsafe).

    They run at a lower scheduling priority: the block producer is the one serial stage, so it
    must never wait for a core while workers check signatures ahead of it (measured: without
    this the producer ran at a third of its speed whenever admission was busy).
    """
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
    )
