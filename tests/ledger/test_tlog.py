"""The SQLite transparency log agrees with the pure RFC 9162 reference and survives restarts."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.crypto.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from civicledger.errors import EncodingError, LedgerError, ProofError
from civicledger.ledger.tlog import TransparencyLog

# transparency-dev/merkle testonly/constants.go: LeafInputs() and RootHashes() for sizes 0..8.
LEAF_INPUTS = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(x)
    for x in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(":memory:")) as c:
        yield c


def _check_against_reference(log: TransparencyLog, hashes: list[bytes]) -> None:
    """Every root, inclusion proof and consistency proof equals the pure reference's."""
    assert log.size == len(hashes)

    @functools.cache
    def subtree(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(hashes[start:end])

    roots = [root_from_leaf_hashes(hashes[:n]) for n in range(len(hashes) + 1)]
    assert log.root() == roots[-1]
    for size in range(len(hashes) + 1):
        assert log.root(size) == roots[size]
        for index in range(size):
            path = log.inclusion_proof(index, size)
            assert path == inclusion_proof(index, size, subtree)
            verify_inclusion(hashes[index], index, size, path, roots[size])
        for old in range(size + 1):
            proof = log.consistency_proof(old, size)
            assert proof == consistency_proof(old, size, subtree)
            verify_consistency(old, size, roots[old], roots[size], proof)


def test_published_roots(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    assert log.root() == EMPTY_ROOT
    for size, data in enumerate(LEAF_INPUTS, start=1):
        assert log.append_leaves([data]) == size - 1
        assert log.root() == ROOTS[size]
    assert [log.root(n) for n in range(9)] == ROOTS
    _check_against_reference(log, [leaf_hash(d) for d in LEAF_INPUTS])


def test_stores_every_complete_subtree_once(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    log.append_leaves(LEAF_INPUTS[:3])
    log.append_leaves(LEAF_INPUTS[3:])
    rows = conn.execute("SELECT level, COUNT(*) FROM log_nodes GROUP BY level").fetchall()
    assert rows == [(0, 8), (1, 4), (2, 2), (3, 1)]
    assert conn.execute("SELECT value FROM log_meta WHERE key = 'size'").fetchone() == (8,)
    assert conn.execute("SELECT hash FROM log_nodes WHERE level = 3").fetchone() == (ROOTS[8],)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.binary(max_size=4), max_size=9), min_size=1, max_size=6))
def test_log_agrees_with_reference_at_every_size(batches: list[list[bytes]]) -> None:
    with closing(sqlite3.connect(":memory:")) as c:
        log = TransparencyLog(c)
        hashes: list[bytes] = []
        for batch in batches:
            assert log.append_leaves(batch) == len(hashes)
            hashes.extend(leaf_hash(d) for d in batch)
            c.commit()
        _check_against_reference(log, hashes)
        for i, lh in enumerate(hashes):
            assert log.leaf_hash(i) == lh


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.binary(max_size=4), min_size=1, max_size=40),
    st.lists(st.binary(max_size=4), min_size=1, max_size=40),
)
def test_append_never_invalidates_old_proofs(first: list[bytes], more: list[bytes]) -> None:
    with closing(sqlite3.connect(":memory:")) as c:
        log = TransparencyLog(c)
        log.append_leaves(first)
        old_size, old_root = log.size, log.root()
        old_paths = [log.inclusion_proof(i) for i in range(old_size)]
        log.append_leaves(more)
        assert log.root(old_size) == old_root
        for i, path in enumerate(old_paths):
            verify_inclusion(leaf_hash(first[i]), i, old_size, path, old_root)
            assert log.inclusion_proof(i, old_size) == path
        verify_consistency(
            old_size, log.size, old_root, log.root(), log.consistency_proof(old_size)
        )


def test_irregular_batches_up_to_100_leaves(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    hashes: list[bytes] = []
    for batch_size in [1, 2, 5, 0, 8, 16, 3, 33, 1, 31]:
        batch = [len(hashes) + i for i in range(batch_size)]
        log.append_leaves([n.to_bytes(2, "big") for n in batch])
        hashes.extend(leaf_hash(n.to_bytes(2, "big")) for n in batch)
        conn.commit()
    assert log.size == 100
    _check_against_reference(log, hashes)


def test_roots_survive_close_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    with closing(sqlite3.connect(db)) as c:
        log = TransparencyLog(c)
        log.append_leaves(LEAF_INPUTS[:5])
        c.commit()
        log.append_leaves(LEAF_INPUTS[5:])
        c.commit()
        before = log.inclusion_proof(5)
    with closing(sqlite3.connect(db)) as c:
        log = TransparencyLog(c)
        assert log.size == 8
        assert [log.root(n) for n in range(9)] == ROOTS
        assert log.inclusion_proof(5) == before
        # Appending after a reopen continues from the reloaded frontier.
        log.append_leaves([b"ninth"])
        hashes = [leaf_hash(d) for d in [*LEAF_INPUTS, b"ninth"]]
        assert log.root() == root_from_leaf_hashes(hashes)


def test_uncommitted_appends_vanish_on_reopen(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    with closing(sqlite3.connect(db)) as c:
        log = TransparencyLog(c)
        log.append_leaves(LEAF_INPUTS[:3])
        c.commit()
        log.append_leaves(LEAF_INPUTS[3:])
        assert c.in_transaction  # The log neither commits nor rolls back.
        with closing(sqlite3.connect(db)) as other:
            assert TransparencyLog(other).size == 3
    with closing(sqlite3.connect(db)) as c:
        assert TransparencyLog(c).root() == ROOTS[3]


def test_reload_after_rollback_restores_the_frontier(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    log.append_leaves(LEAF_INPUTS[:5])
    conn.commit()
    frontier = log.frontier
    log.append_leaves(LEAF_INPUTS[5:])
    assert log.root() == ROOTS[8]
    conn.rollback()
    log.reload()
    assert log.size == 5
    assert log.frontier == frontier
    assert log.root() == ROOTS[5]
    # The same leaves can be appended again: nothing of the rolled-back batch lingers.
    assert log.append_leaves(LEAF_INPUTS[5:]) == 5
    assert log.root() == ROOTS[8]


def test_failed_insert_leaves_frontier_untouched(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    log.append_leaves(LEAF_INPUTS[:2])
    # Plant the node the next append would write, so the insert hits the primary key.
    conn.execute("INSERT INTO log_nodes VALUES (0, 2, ?)", (ROOTS[0],))
    with pytest.raises(LedgerError, match="cannot append"):
        log.append_leaves(LEAF_INPUTS[2:4])
    assert log.size == 2
    assert log.root() == ROOTS[2]


def test_constructor_does_not_commit(tmp_path: Path) -> None:
    db = tmp_path / "log.sqlite"
    with closing(sqlite3.connect(db)) as c:
        log = TransparencyLog(c)
        log.append_leaves([b"a"])
        c.rollback()
        log.reload()
        assert log.size == 0
        assert log.root() == EMPTY_ROOT


def test_empty_batch_is_a_no_op(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    assert log.append_leaves([]) == 0
    assert log.append_leaf_hashes([]) == 0
    assert log.size == 0


def test_append_leaf_hashes_rejects_bad_hashes(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    with pytest.raises(EncodingError):
        log.append_leaf_hashes([leaf_hash(b"a"), b"short"])
    assert log.size == 0
    assert conn.execute("SELECT COUNT(*) FROM log_nodes").fetchone() == (0,)


# An adversarial table of requests outside the log, each a ProofError.
BAD_REQUESTS = [
    ("root beyond size", lambda log: log.root(9)),
    ("negative root size", lambda log: log.root(-1)),
    ("leaf beyond size", lambda log: log.leaf_hash(8)),
    ("negative leaf", lambda log: log.leaf_hash(-1)),
    ("inclusion index == size", lambda log: log.inclusion_proof(8, 8)),
    ("inclusion size beyond log", lambda log: log.inclusion_proof(0, 9)),
    ("inclusion in empty tree", lambda log: log.inclusion_proof(0, 0)),
    ("consistency old > new", lambda log: log.consistency_proof(5, 4)),
    ("consistency new beyond log", lambda log: log.consistency_proof(4, 9)),
    ("consistency negative old", lambda log: log.consistency_proof(-1, 4)),
    ("subtree empty range", lambda log: log.subtree(3, 3)),
    ("subtree beyond size", lambda log: log.subtree(4, 9)),
    ("subtree reversed", lambda log: log.subtree(5, 2)),
]


@pytest.mark.parametrize("request_", [r[1] for r in BAD_REQUESTS], ids=[r[0] for r in BAD_REQUESTS])
def test_bad_requests_raise(conn: sqlite3.Connection, request_: object) -> None:
    log = TransparencyLog(conn)
    log.append_leaves(LEAF_INPUTS)
    assert callable(request_)
    with pytest.raises(ProofError):
        request_(log)


def test_subtree_of_unaligned_range(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    log.append_leaves(LEAF_INPUTS)
    hashes = [leaf_hash(d) for d in LEAF_INPUTS]
    for start in range(8):
        for end in range(start + 1, 9):
            assert log.subtree(start, end) == root_from_leaf_hashes(hashes[start:end])


# Tampered or inconsistent storage is a LedgerError, found on load or on use.
CORRUPTIONS = [
    ("size ahead of leaves", "UPDATE log_meta SET value = 9"),
    ("size behind leaves", "UPDATE log_meta SET value = 7"),
    ("negative size", "UPDATE log_meta SET value = -1"),
    ("size not an integer", "UPDATE log_meta SET value = 'eight'"),
    ("peak missing", "DELETE FROM log_nodes WHERE level = 3"),
    ("peak truncated", "UPDATE log_nodes SET hash = substr(hash, 1, 31) WHERE level = 3"),
    ("peak not a blob", "UPDATE log_nodes SET hash = 'x' WHERE level = 3"),
]


@pytest.mark.parametrize("sql", [c[1] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_corrupt_storage_is_refused_on_load(conn: sqlite3.Connection, sql: str) -> None:
    TransparencyLog(conn).append_leaves(LEAF_INPUTS)
    conn.execute(sql)
    with pytest.raises(LedgerError):
        TransparencyLog(conn)


def test_missing_interior_node_is_refused_on_use(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    log.append_leaves(LEAF_INPUTS)
    conn.execute("DELETE FROM log_nodes WHERE level = 1 AND idx = 1")
    with pytest.raises(LedgerError, match=r"\(1, 1\) is missing"):
        log.inclusion_proof(0)


def test_closed_connection_is_a_ledger_error() -> None:
    c = sqlite3.connect(":memory:")
    log = TransparencyLog(c)
    c.close()
    with pytest.raises(LedgerError):
        log.append_leaves([b"a"])
    with pytest.raises(LedgerError):
        log.reload()


def test_frontier_matches_compact_range_from_storage(conn: sqlite3.Connection) -> None:
    log = TransparencyLog(conn)
    for n in range(1, 20):
        log.append_leaves([n.to_bytes(1, "big")])
        peaks = [
            conn.execute(
                "SELECT hash FROM log_nodes WHERE level = ? AND idx = ?", (lv, ix)
            ).fetchone()[0]
            for lv, ix in CompactRange.peaks(n)
        ]
        assert log.frontier == CompactRange(n, peaks)
