"""State: the write-set digest, buffered views over SQLite, and replay agreeing byte for byte."""

from __future__ import annotations

import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import LedgerError
from civicledger.ledger.state import (
    BlockState,
    StateStore,
    next_state_hash,
    write_set_digest,
)
from civicledger.node.chain import Chain
from civicledger.node.verify import verify_chain
from conftest import City, Ledger, digest, make_city

_KEYS = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["a", "ab", "b", "é", "\uffff", "\U0001f600", "_sys/nonce/x"]),
)
_WRITE_SETS = st.dictionaries(_KEYS, st.one_of(st.none(), st.binary(max_size=6)), max_size=8)


@settings(max_examples=150, deadline=None)
@given(_WRITE_SETS, st.randoms(use_true_random=False))
def test_digest_is_independent_of_write_order(writes: dict[str, bytes | None], rnd: Any) -> None:
    items = list(writes.items())
    rnd.shuffle(items)
    assert write_set_digest(dict(items)) == write_set_digest(writes)


@settings(max_examples=150, deadline=None)
@given(_WRITE_SETS, _WRITE_SETS)
def test_different_write_sets_have_different_digests(
    a: dict[str, bytes | None], b: dict[str, bytes | None]
) -> None:
    if a != b:
        assert write_set_digest(a) != write_set_digest(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"a": b"bc"}, {"ab": b"c"}),  # key/value boundary
        ({"a": None}, {"a": b""}),  # a delete is not an empty value
        ({"a": None}, {}),  # a delete is a write
        ({"a": b"1", "b": b"2"}, {"a": b"2", "b": b"1"}),
        ({"\xff": b""}, {"\xc3\xbf": b""}),  # the same UTF-8 bytes read two ways stay distinct
    ],
)
def test_ambiguous_looking_write_sets_differ(
    a: dict[str, bytes | None], b: dict[str, bytes | None]
) -> None:
    assert write_set_digest(a) != write_set_digest(b)


def test_digest_layout_matches_the_documented_encoding() -> None:
    """Sorted by UTF-8 key; key and value each prefixed by a u32 BE length; delete = 0xFFFFFFFF."""

    def part(key: str, value: bytes | None) -> bytes:
        raw = key.encode()
        size = struct.pack(">I", 0xFFFFFFFF) if value is None else struct.pack(">I", len(value))
        return struct.pack(">I", len(raw)) + raw + size + (value or b"")

    writes = {"\U0001f600": b"x", "\uffff": None, "b": b"2", "a": b"1"}
    expected = sha256(
        part("a", b"1") + part("b", b"2") + part("\uffff", None) + part("\U0001f600", b"x")
    )
    assert write_set_digest(writes) == expected
    previous = bytes(range(32))
    assert next_state_hash(previous, writes) == sha256(
        b"CivicLedger/state/v1" + previous + expected
    )
    assert next_state_hash(bytes(32), writes) != next_state_hash(previous, writes)


# -- buffered views against a model ---------------------------------------------------------------

_VIEW_KEYS = ["p/a", "p/b", "p/é", "p/\uffff", "p/\U0001f600", "q/a"]
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(_VIEW_KEYS), st.integers(0, 9)),
        st.tuples(st.just("delete"), st.sampled_from(_VIEW_KEYS), st.none()),
        st.tuples(st.sampled_from(["commit_tx", "abort_tx", "commit_block"]), st.none(), st.none()),
    ),
    max_size=40,
)


@pytest.fixture
def memory_db() -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as conn:
        yield conn


@settings(max_examples=100, deadline=None)
@given(_OPS, st.sampled_from([0, 2, 100]))
def test_views_match_a_model_through_commits_and_aborts(
    ops: list[tuple[str, str | None, int | None]], cache_size: int
) -> None:
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as conn:
        store = StateStore(conn, cache_size=cache_size)
        committed: dict[str, int] = {}
        block = BlockState(store)
        block_model: dict[str, int | None] = {}
        tx = block.begin_tx()
        tx_model: dict[str, int | None] = {}
        for op, key, value in ops:
            if op == "put":
                assert key is not None
                tx.put(key, value)
                tx_model[key] = value
            elif op == "delete":
                assert key is not None
                tx.delete(key)
                tx_model[key] = None
            elif op == "commit_tx":
                tx.commit()
                block_model.update(tx_model)
                tx, tx_model = block.begin_tx(), {}
            elif op == "abort_tx":
                tx, tx_model = block.begin_tx(), {}
            else:
                # As the producer does: later blocks see the writes as pending, then durable.
                store.stage_pending(block.writes)
                pending_view = {**committed, **block_model}
                next_block = BlockState(store).begin_tx()
                for k in _VIEW_KEYS:
                    assert next_block.get(k) == pending_view.get(k)
                store.apply(block.writes)
                store.committed()
                for k, v in block_model.items():
                    if v is None:
                        committed.pop(k, None)
                    else:
                        committed[k] = v
                block, block_model = BlockState(store), {}
                tx, tx_model = block.begin_tx(), {}
            view = {**committed, **block_model, **tx_model}
            for k in _VIEW_KEYS:
                assert tx.get(k) == view.get(k)
            expected = sorted(
                ((k, v) for k, v in view.items() if v is not None and k.startswith("p/")),
                key=lambda kv: kv[0].encode(),
            )
            assert list(tx.scan("p/")) == expected
            assert list(tx.scan("p/", limit=2)) == expected[:2]
            for after in ("p/a", "p/é", "p/\uffff"):
                later = [(k, v) for k, v in expected if k.encode() > after.encode()]
                assert list(tx.scan("p/", after=after)) == later
                assert list(tx.scan("p/", limit=1, after=after)) == later[:1]


def test_values_are_canonical_and_reads_are_fresh_copies(memory_db: sqlite3.Connection) -> None:
    store = StateStore(memory_db)
    tx = BlockState(store).begin_tx()
    tx.put("k", {"b": [1], "a": "é"})
    assert tx.writes["k"] == canonical_json({"a": "é", "b": [1]})
    value = tx.get("k")
    value["b"].append(2)
    assert tx.get("k") == {"a": "é", "b": [1]}
    with pytest.raises(LedgerError, match="delete"):
        tx.put("k", None)


# -- replay: any chain re-executes to the same bytes ---------------------------------------------

_AGENCIES = ["city-hall", "archive", "district-office", "parks", "water"]
_EXTRA = {label: PrivateKey.from_seed(sha256(label.encode())) for label in ("k1", "k2", "k3")}


def _key(city: City, label: str) -> PrivateKey:
    return _EXTRA[label] if label in _EXTRA else getattr(city, label)


_KEY_LABELS = st.sampled_from(["outsider", "k1", "k2", "k3", "clerk", "district"])
_GOVERNANCE = st.one_of(
    st.tuples(
        st.just("register_agency"),
        st.sampled_from(_AGENCIES),
        st.lists(_KEY_LABELS, min_size=1, max_size=2),
    ),
    st.tuples(st.sampled_from(["add_key", "remove_key"]), st.sampled_from(_AGENCIES), _KEY_LABELS),
    st.tuples(
        st.sampled_from(["grant_role", "revoke_role"]),
        st.sampled_from(_AGENCIES),
        st.sampled_from(["notary", "auditor"]),
    ),
    st.tuples(st.just("deactivate_agency"), st.sampled_from(_AGENCIES), st.none()),
)
_ANCHOR = st.tuples(st.just("anchor"), st.sampled_from(["a", "b", "c", "d"]), st.none())
# Mostly signers who may act, so most blocks commit; the rest are refused or dropped.
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["root", "root", "root", "clerk", "k1"]), _GOVERNANCE),
        st.tuples(
            st.sampled_from(["clerk", "clerk2", "archivist", "district", "k1", "k2"]), _ANCHOR
        ),
    ),
    min_size=4,
    max_size=20,
)


def _signed(ledger: Ledger, signer: str, action: tuple[str, Any, Any]) -> Any:
    city = ledger.city
    key = _key(city, signer)
    method, target, extra = action
    if method == "anchor":
        return ledger.tx(key, "notary", "anchor", {"digest": digest(target), "label": target})
    args: dict[str, Any] = {"agency": target}
    if method == "register_agency":
        args = {
            "id": target,
            "name": target.title(),
            "keys": [_key(city, k).public.did for k in extra],
        }
    elif method in ("add_key", "remove_key"):
        args["key"] = _key(city, extra).public.did
    elif method in ("grant_role", "revoke_role"):
        args["role"] = extra
    return ledger.tx(key, "governance", method, args)


_TABLES = {
    "blocks": "SELECT height, hash, header, tree_head, first_leaf FROM blocks ORDER BY height",
    "txs": "SELECT leaf_index, tx_id, height, envelope, receipt FROM txs ORDER BY leaf_index",
    "state": "SELECT key, value FROM state ORDER BY key",
    "log_nodes": "SELECT level, idx, hash FROM log_nodes ORDER BY level, idx",
    "log_meta": "SELECT key, value FROM log_meta ORDER BY key",
    "meta": "SELECT key, value FROM meta ORDER BY key",
}


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in _TABLES.items()}


@settings(max_examples=40, deadline=None)
@given(_STEPS, st.lists(st.integers(1, 4), min_size=1, max_size=8))
def test_replay_and_replicas_agree_byte_for_byte(
    steps: list[tuple[str, tuple[str, Any, Any]]], cuts: list[int]
) -> None:
    with tempfile.TemporaryDirectory(prefix="civic-replay-") as scratch:
        city = make_city(Path(scratch) / "a")
        chain = city.open_chain()
        ledger = Ledger(city, chain)
        blocks = []
        position = 0
        for cut in cuts * len(steps):
            if position >= len(steps):
                break
            batch = [_signed(ledger, s, a) for s, a in steps[position : position + cut]]
            position += cut
            committed = ledger.block(*batch)
            if committed.included:
                blocks.append(committed)
        head = chain.head.header
        included = [i.receipt.status for b in blocks for i in b.included]
        event(f"blocks: {min(len(blocks), 5)}+")
        event(f"failed receipts: {min(included.count('failed'), 3)}+")
        event(f"ok receipts: {min(included.count('ok'), 3)}+")

        report = verify_chain(city.data_dir, registry=city.registry)
        assert (report.height, report.state_hash, report.log_root, report.log_size) == (
            head.height,
            head.state_hash,
            head.log_root,
            head.log_size,
        )

        replica = Chain.create_from_genesis_block(
            Path(scratch) / "b",
            city.genesis,
            chain.block(0) or _missing(),
            chain.tree_head(0),
            city.registry,
        )
        try:
            for height in range(1, head.height + 1):
                stored = chain.block_txs(height)
                replica.apply_block(
                    chain.block(height) or _missing(),
                    chain.tree_head(height),
                    [s.tx for s in stored],
                )
            assert replica.head == chain.head
        finally:
            replica.close()
            chain.close()
        assert _dump(city.db_path) == _dump(Path(scratch) / "b" / "ledger.sqlite")
        assert head.height == len(blocks)


def _missing() -> Any:
    raise AssertionError("a committed block is missing")


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON_VALUES, st.text(), st.integers(min_value=0, max_value=2**53 - 1)))
def test_a_stored_value_reads_back_equal_through_every_fast_path(value: Any) -> None:
    """Reads take shortcuts for true, digits and plain strings; each must equal a full parse."""
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as conn:
        store = StateStore(conn, cache_size=10)
        block = BlockState(store)
        tx = block.begin_tx()
        if value is None:
            tx.delete("k")
        else:
            tx.put("k", value)
        tx.commit()
        store.apply(block.writes)
        assert BlockState(store).begin_tx().get("k") == value
