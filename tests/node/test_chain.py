"""The chain: creation, atomic commits, and ``apply_block`` refusing what it cannot reproduce."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from civicledger.crypto.keys import PrivateKey
from civicledger.errors import (
    CivicError,
    GenesisError,
    LedgerError,
    RejectReason,
    SignatureError,
    TxRejected,
)
from civicledger.ledger.block import BlockHeader, SignedBlockHeader, SignedTreeHead
from civicledger.ledger.tx import SignedTx
from civicledger.node import chain as chain_module
from civicledger.node.chain import Chain, genesis_header
from civicledger.node.verify import verify_chain
from conftest import City, Ledger, digest, make_city

ROGUE = PrivateKey.from_seed(b"r" * 32)


def test_opening_a_missing_ledger_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger"):
        Chain(tmp_path)


def test_create_refuses_a_second_ledger_and_a_non_producer_key(city: City) -> None:
    with pytest.raises(LedgerError, match="already exists"):
        Chain.create(city.data_dir, city.genesis, city.producer)
    with pytest.raises(GenesisError, match="not one of the genesis producers"):
        Chain.create(city.data_dir.parent / "other", city.genesis, city.rogue)


def test_a_replica_checks_the_genesis_block_against_the_file(city: City, chain: Chain) -> None:
    signed, head = chain.block(0), chain.tree_head(0)
    assert signed is not None
    assert signed.header == genesis_header(city.genesis, city.producer.public.did)
    other = city.genesis.model_copy(update={"city": "Elsewhere"})
    with pytest.raises(GenesisError, match="does not match the genesis file"):
        Chain.create_from_genesis_block(city.data_dir.parent / "r1", other, signed, head)
    forged = SignedBlockHeader.sign(
        signed.header.model_copy(update={"producer": ROGUE.public.did}), ROGUE
    )
    with pytest.raises(GenesisError, match="not signed by a genesis producer"):
        Chain.create_from_genesis_block(city.data_dir.parent / "r2", city.genesis, forged, head)
    other_head = SignedTreeHead.sign(
        head.tree_head.model_copy(update={"time_ms": 5}), city.producer
    )
    with pytest.raises(GenesisError, match="tree head does not match"):
        Chain.create_from_genesis_block(
            city.data_dir.parent / "r3", city.genesis, signed, other_head
        )


def test_a_block_of_only_dropped_transactions_writes_nothing(city: City, ledger: Ledger) -> None:
    before = city.snapshot()
    block = ledger.block(city.tx(city.clerk, "tally", "add", {"amount": 1}, nonce=5))
    assert block.included == []
    assert [d.error.reject_reason for d in block.dropped] == [RejectReason.NONCE_OUT_OF_ORDER]
    assert city.snapshot() == before
    assert ledger.chain.height == 0


def test_a_reopened_chain_resumes_from_its_head(city: City, ledger: Ledger) -> None:
    for n in range(3):
        ledger.block(ledger.tx(city.clerk, "tally", "add", {"amount": n + 1}))
    head = ledger.chain.head
    ledger.chain.close()
    reopened = city.open_chain()
    try:
        assert reopened.head == head
        assert reopened.last_nonce(city.clerk.public.did) == 3
        assert reopened.query("tally", "total", {}) == 6
        assert reopened.block(4) is None
        with pytest.raises(LedgerError, match="no block at height 4"):
            reopened.tree_head(4)
        assert reopened.tx(b"\x00" * 32) is None
        with pytest.raises(LedgerError, match="SELECT"):
            list(reopened.raw_rows("DELETE FROM blocks"))
    finally:
        reopened.close()


def test_a_failed_commit_leaves_the_previous_block_as_head(
    city: City, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail the very last write of a block: everything before it in the transaction rolls back."""
    ledger.block(ledger.tx(city.clerk, "tally", "add", {"amount": 1}))
    before = city.snapshot()
    real_insert = chain_module._insert_block

    def failing_insert(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setattr(chain_module, "_insert_block", failing_insert)
    tx = city.tx(city.clerk, "tally", "add", {"amount": 10}, nonce=2)
    with pytest.raises(LedgerError, match="block 2 could not be written: disk I/O error"):
        ledger.chain.produce_block([ledger.chain.prepare(tx)], 0, city.producer)
    assert city.snapshot() == before
    assert ledger.chain.height == 1
    assert ledger.chain.last_nonce(city.clerk.public.did) == 1

    monkeypatch.setattr(chain_module, "_insert_block", real_insert)
    block = ledger.chain.produce_block([ledger.chain.prepare(tx)], 0, city.producer)
    assert block is not None
    assert block.included[0].receipt.result == 11  # the failed attempt left nothing in the cache
    assert ledger.chain.query("tally", "total", {}) == 11
    assert verify_chain(city.data_dir, registry=city.registry).height == 2


# -- apply_block ---------------------------------------------------------------------------------


def _resign(
    signed: SignedBlockHeader, key: PrivateKey, **changes: Any
) -> tuple[SignedBlockHeader, SignedTreeHead]:
    header = signed.header.model_copy(update=changes)
    return SignedBlockHeader.sign(header, key), SignedTreeHead.sign(header.tree_head(), key)


Block = tuple[SignedBlockHeader, SignedTreeHead, list[SignedTx]]


def _other_chain_tx(city: City, block: Block) -> list[SignedTx]:
    return [
        *block[2][:-1],
        city.tx(city.clerk, "tally", "add", {"amount": 1}, nonce=3, chain_id="elsewhere"),
    ]


APPLY_REFUSALS: list[Any] = [
    pytest.param(
        lambda c, b: (
            SignedBlockHeader(
                header=b[0].header.model_copy(update={"tx_count": 9}), signature=b[0].signature
            ),
            b[1],
            b[2],
        ),
        SignatureError,
        "header signature",
        id="field changed, not re-signed",
    ),
    pytest.param(
        lambda c, b: (*_resign(b[0], ROGUE, producer=ROGUE.public.did), b[2]),
        SignatureError,
        "not trusted",
        id="re-signed by a non-producer",
    ),
    pytest.param(
        lambda c, b: (_resign(b[0], ROGUE, producer=ROGUE.public.did)[0], b[1], b[2]),
        LedgerError,
        "tree head does not match",
        id="header by a non-producer, genuine tree head",
    ),
    pytest.param(
        lambda c, b: (*_resign(b[0], c.producer, state_hash="00" * 32), b[2]),
        LedgerError,
        "re-execution differs in state_hash",
        id="producer lies about the state",
    ),
    pytest.param(
        lambda c, b: (*_resign(b[0], c.producer, receipts_root="00" * 32), b[2]),
        LedgerError,
        "re-execution differs in receipts_root",
        id="producer lies about receipts",
    ),
    pytest.param(
        lambda c, b: (*_resign(b[0], c.producer, height=3), b[2]),
        LedgerError,
        "does not follow",
        id="skips a height",
    ),
    pytest.param(
        lambda c, b: (*_resign(b[0], c.producer, prev_hash="00" * 32), b[2]),
        LedgerError,
        "does not follow",
        id="wrong previous hash",
    ),
    pytest.param(
        lambda c, b: (*_resign(b[0], c.producer, time_ms=c.genesis.time_ms + 1000), b[2]),
        LedgerError,
        "time",
        id="block time not after the previous block",
    ),
    pytest.param(
        lambda c, b: (b[0], b[1], b[2][:-1]),
        LedgerError,
        "re-execution differs in tx_count",
        id="a transaction left out",
    ),
    pytest.param(
        lambda c, b: (b[0], b[1], b[2][::-1]),
        LedgerError,
        "would be dropped",
        id="transactions reordered",
    ),
    pytest.param(
        lambda c, b: (b[0], b[1], _other_chain_tx(c, b)),
        LedgerError,
        "another chain",
        id="a transaction of another chain",
    ),
    pytest.param(
        lambda c, b: (
            b[0],
            b[1],
            [
                *b[2][:-1],
                SignedTx(
                    *(getattr(b[2][-1], f) for f in ("body", "body_bytes")),
                    bytes(64),
                    b[2][-1].tx_id,
                    b[2][-1].signer_key,
                ),
            ],
        ),
        TxRejected,
        "signature does not verify",
        id="a transaction with a bad signature",
    ),
]


@pytest.mark.parametrize(("tamper", "error", "match"), APPLY_REFUSALS)
def test_apply_block_refuses_and_then_accepts_the_genuine_block(
    tmp_path: Path, tamper: Any, error: type[CivicError], match: str
) -> None:
    source = make_city(tmp_path / "source")
    producer = Ledger(source, source.open_chain())
    producer.block(producer.tx(source.archivist, "notary", "anchor", {"digest": digest("one")}))
    producer.block(*(producer.tx(source.clerk, "tally", "add", {"amount": n}) for n in (1, 2, 3)))
    chain = producer.chain
    blocks: list[Block] = []
    for h in (1, 2):
        signed = chain.block(h)
        assert signed is not None
        blocks.append((signed, chain.tree_head(h), [s.tx for s in chain.block_txs(h)]))

    genesis_block = chain.block(0)
    assert genesis_block is not None
    replica = Chain.create_from_genesis_block(
        tmp_path / "replica", source.genesis, genesis_block, chain.tree_head(0), source.registry
    )
    try:
        replica.apply_block(*blocks[0])
        head = replica.head
        with pytest.raises(error, match=match):
            replica.apply_block(*tamper(source, blocks[1]))
        assert replica.head == head
        assert replica.last_nonce(source.clerk.public.did) == 0
        replica.apply_block(*blocks[1])
        assert replica.head == chain.head
        assert replica.query("tally", "total", {}) == 6
    finally:
        replica.close()
        chain.close()


def test_block_header_refuses_malformed_fields() -> None:
    fields: dict[str, Any] = {
        "chain_id": "testville",
        "height": 1,
        "prev_hash": "ab" * 32,
        "time_ms": 1,
        "tx_count": 0,
        "tx_root": "",
        "receipts_root": "",
        "state_hash": "",
        "log_size": 0,
        "log_root": "",
        "producer": "x",
    }
    BlockHeader(**fields)
    for name, bad in [("height", -1), ("prev_hash", "AB" * 32), ("time_ms", True), ("extra", 1)]:
        with pytest.raises(ValueError, match=name):
            BlockHeader(**{**fields, name: bad})
