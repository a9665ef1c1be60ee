"""``verify_chain`` trusts nothing stored: every kind of tampering is found and named."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from civicledger.crypto.encoding import canonical_json
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import ChainVerificationError
from civicledger.ledger.block import SignedBlockHeader, SignedTreeHead, TreeHead
from civicledger.ledger.tx import decode_tx
from civicledger.node.chain import DB_NAME
from civicledger.node.verify import verify_chain
from conftest import City, Ledger, digest, make_city

ROGUE = PrivateKey.from_seed(b"r" * 32)
HEIGHT = 5


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> City:
    """Five blocks: governance (with a key removal, i.e. a state delete), anchors, a failure."""
    city = make_city(tmp_path_factory.mktemp("verify") / "city")
    chain = city.open_chain()
    ledger = Ledger(city, chain)
    root = {"agency": "city-hall", "key": city.outsider.public.did}
    ledger.block(ledger.tx(city.root, "governance", "add_key", root))
    ledger.block(
        ledger.tx(city.outsider, "notary", "anchor", {"digest": digest("a")}),
        ledger.tx(city.archivist, "notary", "anchor", {"digest": digest("a")}),  # already_anchored
        ledger.tx(city.clerk, "tally", "add", {"amount": 2}),
    )
    ledger.block(ledger.tx(city.root, "governance", "remove_key", root))
    ledger.block(*(ledger.tx(city.clerk2, "tally", "add", {"amount": n}) for n in (1, 2, 3, 4)))
    ledger.block(ledger.tx(city.district, "tally", "add", {"amount": 7}))
    assert chain.height == HEIGHT
    chain.close()
    return city


@pytest.fixture
def copy(template: City, tmp_path: Path) -> City:
    target = tmp_path / "copy"
    target.mkdir()
    for path in template.data_dir.glob(DB_NAME + "*"):
        shutil.copy(path, target / path.name)
    return City(**{**vars(template), "data_dir": target})


def _sql(city: City, statement: str, *params: Any) -> None:
    with closing(sqlite3.connect(city.db_path, isolation_level=None)) as conn:
        changed = conn.execute(statement, params).rowcount
    assert changed == 1, f"tamper touched {changed} rows: {statement}"


def _row(city: City, sql: str, *params: Any) -> Any:
    with closing(sqlite3.connect(city.db_path)) as conn:
        return conn.execute(sql, params).fetchone()


def _edit_json(
    city: City, table: str, column: str, where: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    (raw,) = _row(city, f"SELECT {column} FROM {table} WHERE {where}")
    doc = json.loads(bytes(raw))
    edit(doc)
    _sql(city, f"UPDATE {table} SET {column} = ? WHERE {where}", canonical_json(doc))


def test_an_untouched_ledger_verifies(copy: City) -> None:
    seen: list[tuple[int, int]] = []
    report = verify_chain(
        copy.data_dir, registry=copy.registry, progress=lambda h, n: seen.append((h, n))
    )
    assert (report.height, report.transactions, report.chain_id) == (HEIGHT, 10, "testville")
    assert seen == [(h, HEIGHT) for h in range(1, HEIGHT + 1)]
    header = SignedBlockHeader.model_validate_json(
        bytes(_row(copy, "SELECT header FROM blocks WHERE height = 5")[0])
    )
    assert (report.state_hash, report.log_root, report.log_size) == (
        header.header.state_hash,
        header.header.log_root,
        header.header.log_size,
    )


def test_verification_changes_nothing(copy: City) -> None:
    def dump() -> list[Any]:
        with closing(sqlite3.connect(copy.db_path)) as conn:
            return [
                conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("blocks", "txs", "state", "log_nodes", "log_meta", "meta")
            ]

    before = dump()
    verify_chain(copy.data_dir, registry=copy.registry)
    assert dump() == before


# -- tampering -----------------------------------------------------------------------------------


def _receipt_status(city: City) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["status"], doc["reason"], doc["message"] = "ok", None, None

    _edit_json(city, "txs", "receipt", "leaf_index = 2", edit)  # the already_anchored failure


def _receipt_result(city: City) -> None:
    _edit_json(city, "txs", "receipt", "leaf_index = 3", lambda d: d.update(result=1000))


def _envelope_args(city: City) -> None:
    _edit_json(
        city, "txs", "envelope", "leaf_index = 3", lambda d: d["body"]["args"].update(amount=20)
    )


def _envelope_args_and_id(city: City) -> None:
    """Change the args and fix up the tx id column so it matches the new body."""
    _envelope_args(city)
    (raw,) = _row(city, "SELECT envelope FROM txs WHERE leaf_index = 3")
    _sql(city, "UPDATE txs SET tx_id = ? WHERE leaf_index = 3", decode_tx(bytes(raw)).tx_id)


def _envelope_whitespace(city: City) -> None:
    (raw,) = _row(city, "SELECT envelope FROM txs WHERE leaf_index = 4")
    _sql(
        city,
        "UPDATE txs SET envelope = ? WHERE leaf_index = 4",
        json.dumps(json.loads(bytes(raw)), indent=1).encode(),
    )


def _envelopes_swapped(city: City) -> None:
    one = _row(city, "SELECT envelope FROM txs WHERE leaf_index = 5")[0]
    two = _row(city, "SELECT envelope FROM txs WHERE leaf_index = 6")[0]
    _sql(city, "UPDATE txs SET envelope = ? WHERE leaf_index = 5", two)
    _sql(city, "UPDATE txs SET envelope = ? WHERE leaf_index = 6", one)


def _header_field(city: City) -> None:
    _edit_json(city, "blocks", "header", "height = 3", lambda d: d["header"].update(tx_count=2))


def _resigned_header(
    key: PrivateKey, *, producer: str | None = None, tree_head_too: bool = False
) -> Callable[[City], None]:
    def tamper(city: City) -> None:
        (raw, raw_head) = _row(city, "SELECT header, tree_head FROM blocks WHERE height = 3")
        signed = SignedBlockHeader.model_validate_json(bytes(raw))
        changes: dict[str, Any] = {"state_hash": "00" * 32}
        if producer is not None:
            changes["producer"] = producer
        header = signed.header.model_copy(update=changes)
        forged = SignedBlockHeader.sign(header, key)
        _sql(
            city,
            "UPDATE blocks SET header = ?, hash = ? WHERE height = 3",
            canonical_json(forged.model_dump()),
            header.hash(),
        )
        if tree_head_too:
            head = SignedTreeHead.model_validate_json(bytes(raw_head)).tree_head
            new_head = SignedTreeHead.sign(
                TreeHead.model_validate({**head.model_dump(), "signer": header.producer}), key
            )
            _sql(
                city,
                "UPDATE blocks SET tree_head = ? WHERE height = 3",
                canonical_json(new_head.model_dump()),
            )

    return tamper


def _tree_head_root(city: City) -> None:
    _edit_json(
        city,
        "blocks",
        "tree_head",
        "height = 2",
        lambda d: d["tree_head"].update(root_hash="00" * 32),
    )


def _state_value(city: City) -> None:
    _sql(city, "UPDATE state SET value = ? WHERE key = 'tally/total'", b"1000")


def _state_inserted(city: City) -> None:
    _sql(city, "INSERT INTO state(key, value) VALUES ('governance/root/did:key:zEvil', ?)", b"true")


def _state_deleted(city: City) -> None:
    _sql(city, "DELETE FROM state WHERE key = 'notary/doc/' || ?", digest("a"))


def _log_node(level: int, idx: int) -> Callable[[City], None]:
    return lambda city: _sql(
        city, "UPDATE log_nodes SET hash = ? WHERE level = ? AND idx = ?", b"\x00" * 32, level, idx
    )


def _genesis_meta(city: City) -> None:
    _edit_json(city, "meta", "value", "key = 'genesis'", lambda d: d.update(city="Elsewhere"))


TAMPERS: list[Any] = [
    pytest.param(_receipt_status, "stored receipt of [0-9a-f]{64} differs", id="receipt status"),
    pytest.param(_receipt_result, "stored receipt of [0-9a-f]{64} differs", id="receipt result"),
    pytest.param(_envelope_args, "block 2: stored tx id [0-9a-f]{64} is wrong", id="envelope args"),
    pytest.param(_envelope_args_and_id, "signature does not verify", id="envelope args and tx id"),
    pytest.param(
        _envelope_whitespace,
        "block 3: a stored transaction is not canonical",
        id="envelope not canonical",
    ),
    pytest.param(_envelopes_swapped, "block 4: stored tx id", id="envelopes swapped"),
    pytest.param(
        lambda c: _sql(c, "DELETE FROM txs WHERE leaf_index = 7"),
        "block 4: tx [0-9a-f]{64} would be dropped",
        id="tx row deleted",
    ),
    pytest.param(
        lambda c: _sql(c, "UPDATE txs SET height = 5 WHERE leaf_index = 7"),
        "block 4: tx [0-9a-f]{64} would be dropped",
        id="tx row moved",
    ),
    pytest.param(_state_value, r"stored state key \('tally/total',\) differs", id="state value"),
    pytest.param(
        _state_inserted,
        r"stored state key \('governance/root/did:key:zEvil',\) differs",
        id="state row added",
    ),
    pytest.param(_state_deleted, "stored state key .*notary/doc/", id="state row deleted"),
    pytest.param(
        _log_node(0, 4), r"stored log node \(level, index\) \(0, 4\) differs", id="log leaf"
    ),
    pytest.param(
        _log_node(2, 1), r"stored log node \(level, index\) \(2, 1\) differs", id="log inner node"
    ),
    pytest.param(
        lambda c: _sql(c, "DELETE FROM log_nodes WHERE level = 1 AND idx = 0"),
        r"stored log node \(level, index\) \(1, 0\) differs",
        id="log node deleted",
    ),
    pytest.param(
        lambda c: _sql(c, "DELETE FROM blocks WHERE height = 3"),
        "block 3 is missing",
        id="block row deleted",
    ),
    pytest.param(
        lambda c: _sql(c, "DELETE FROM blocks WHERE height = 5"),
        "differs",
        id="head block row deleted",
    ),
    pytest.param(_header_field, "block 3: stored hash is not the header's", id="header field"),
    pytest.param(
        _resigned_header(ROGUE),
        "block 3: header signature",
        id="header re-signed by a non-producer key",
    ),
    pytest.param(
        _resigned_header(ROGUE, producer=ROGUE.public.did),
        "block 3: tree head does not match the header",
        id="header re-signed by a non-producer naming itself",
    ),
    pytest.param(
        _resigned_header(ROGUE, producer=ROGUE.public.did, tree_head_too=True),
        "not trusted",
        id="header and tree head re-signed by a non-producer",
    ),
    pytest.param(
        lambda c: _resigned_header(c.producer)(c),
        "block 3: re-execution differs in state_hash",
        id="header re-signed by the producer itself",
    ),
    pytest.param(
        lambda c: _sql(c, "UPDATE blocks SET hash = ? WHERE height = 2", b"\x00" * 32),
        "block 2: stored hash is not the header's",
        id="block hash column",
    ),
    pytest.param(_tree_head_root, "tree head signature", id="tree head"),
    pytest.param(_genesis_meta, "genesis", id="genesis file"),
]


@pytest.mark.parametrize(("tamper", "match"), TAMPERS)
def test_tampering_is_found(copy: City, tamper: Callable[[City], None], match: str) -> None:
    tamper(copy)
    with pytest.raises(ChainVerificationError, match=match):
        verify_chain(copy.data_dir, registry=copy.registry)


EXTRA_ROWS: list[Any] = [
    pytest.param(
        "INSERT INTO txs(leaf_index, tx_id, height, envelope, receipt) "
        "SELECT 99, randomblob(32), 99, envelope, receipt FROM txs WHERE leaf_index = 0",
        id="a tx row in no block",
    ),
    pytest.param("UPDATE blocks SET first_leaf = 0 WHERE height = 4", id="a block's first leaf"),
    pytest.param("UPDATE log_meta SET value = 8 WHERE key = 'size'", id="the log size"),
]


@pytest.mark.parametrize("statement", EXTRA_ROWS)
def test_rows_outside_the_hashes_are_checked_too(copy: City, statement: str) -> None:
    """Rows a reader trusts (a tx lookup, the log size) must match re-execution as well."""
    _sql(copy, statement)
    with pytest.raises(ChainVerificationError, match="differs"):
        verify_chain(copy.data_dir, registry=copy.registry)


def test_verification_reads_one_snapshot_while_a_node_writes(tmp_path: Path) -> None:
    city = make_city(tmp_path / "live")
    stop = threading.Event()
    with city.open_node() as node:

        def load() -> None:
            nonce = 0
            while not stop.is_set():
                nonce += 1
                node.submit(
                    city.tx(city.clerk, "tally", "add", {"amount": 1}, nonce=nonce), timeout=10
                )

        writer = threading.Thread(target=load)
        writer.start()
        try:
            reports = [verify_chain(city.data_dir, registry=city.registry) for _ in range(3)]
        finally:
            stop.set()
            writer.join()
    assert reports[-1].height >= reports[0].height
    assert verify_chain(city.data_dir, registry=city.registry).transactions == city.nonce(
        city.clerk
    )
