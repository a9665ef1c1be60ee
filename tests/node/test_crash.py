"""kill -9 a real node process mid-load, many times: nothing it confirmed is ever lost.

``crash_load.py`` runs the embedded node in a subprocess with several signers submitting
continuously and records each receipt it was given (fsynced). Each round waits for it to be
up (which also proves the previous round's ``kill -9`` released the directory lock), lets it run
for a random 0.3-1.5 s, and kills it with SIGKILL. Afterwards the ledger must hold every
recorded transaction at the recorded place, with contiguous heights and leaves, each signer's
nonces exactly 1..n, and pass the full re-execution of ``verify_chain``.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import pytest

from civicledger.contracts.registry import default_registry
from civicledger.ledger.tx import decode_tx
from civicledger.node.verify import verify_chain
from conftest import City, make_city

LOADER = Path(__file__).with_name("crash_load.py")
READY_TIMEOUT_S = 30.0


def _start(config: Path, log: Path) -> subprocess.Popen[str]:
    """Start the loader and wait until it says ``ready``: the node is open and loading."""
    with log.open("a") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(LOADER), str(config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    line = proc.stdout.readline() if readable else ""  # "" also when the loader died
    if line.strip() != "ready":
        proc.kill()
        proc.wait()
        pytest.fail(
            f"the loader did not come up (exit {proc.returncode}): {log.read_text()[-2000:]}"
        )
    return proc


def _records(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="ascii")
    # A kill can cut the last write short; an unterminated line was never fsynced, never promised.
    lines = text.split("\n")[:-1]
    out = []
    for line in lines:
        tx_id, height, leaf = line.split(" ")
        out.append((tx_id, int(height), int(leaf)))
    return out


def _crash_rounds(tmp_path: Path, rounds: int, seed: int) -> None:
    city: City = make_city(tmp_path / "city", default_registry())
    record = tmp_path / "committed.txt"
    log = tmp_path / "loader.log"
    config = tmp_path / "config.json"
    signers = [city.clerk, city.clerk2, city.archivist]
    config.write_text(
        json.dumps(
            {
                "data_dir": str(city.data_dir),
                "producer_seed": city.producer.seed.hex(),
                "signer_seeds": [k.seed.hex() for k in signers],
                "record": str(record),
            }
        )
    )
    rng = random.Random(seed)
    recorded_before = 0
    for round_no in range(rounds):
        proc = _start(config, log)
        time.sleep(rng.uniform(0.3, 1.5))
        assert proc.poll() is None, (
            f"round {round_no}: the loader exited by itself: {log.read_text()[-2000:]}"
        )
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert proc.stdout is not None
        proc.stdout.close()
        recorded = len(_records(record))
        assert recorded > recorded_before, f"round {round_no} committed nothing"
        recorded_before = recorded

    _check_ledger(city, _records(record), signers)

    # The last kill released the lock too: the node opens and carries on from the recorded head.
    with city.open_node() as node:
        nonce = node.chain.last_nonce(city.clerk.public.did) + 1
        tx = city.tx(city.clerk, "notary", "anchor", {"digest": "ab" * 32}, nonce=nonce)
        assert node.submit(tx, timeout=10).ok


def _check_ledger(city: City, records: list[tuple[str, int, int]], signers: list) -> None:
    ids = [tx_id for tx_id, _, _ in records]
    assert len(ids) == len(set(ids)), "a transaction was confirmed twice"

    with closing(sqlite3.connect(f"file:{city.db_path}?mode=ro", uri=True)) as conn:
        heights = [h for (h,) in conn.execute("SELECT height FROM blocks ORDER BY height")]
        assert heights == list(range(len(heights))), "block heights are not contiguous"
        rows = conn.execute(
            "SELECT leaf_index, tx_id, height, envelope, receipt FROM txs ORDER BY leaf_index"
        ).fetchall()
        per_block = dict(
            conn.execute("SELECT height, count(*) FROM txs GROUP BY height").fetchall()
        )
        headers = [
            json.loads(bytes(h))["header"]
            for (h,) in conn.execute("SELECT header FROM blocks ORDER BY height")
        ]

    assert [leaf for leaf, *_ in rows] == list(range(len(rows))), "log leaves are not contiguous"
    assert len({bytes(tx_id) for _, tx_id, *_ in rows}) == len(rows), "a tx id appears twice"
    for header in headers[1:]:
        assert per_block.get(header["height"], 0) == header["tx_count"] > 0
    assert headers[-1]["log_size"] == len(rows)

    stored = {
        bytes(tx_id).hex(): (height, leaf, json.loads(bytes(receipt)))
        for leaf, tx_id, height, _, receipt in rows
    }
    for tx_id, height, leaf in records:
        assert tx_id in stored, f"confirmed transaction {tx_id} is not in the ledger"
        got_height, got_leaf, receipt = stored[tx_id]
        assert (got_height, got_leaf) == (height, leaf)
        assert (receipt["tx_id"], receipt["status"]) == (tx_id, "ok")

    nonces: dict[str, list[int]] = defaultdict(list)
    for *_, envelope, _ in rows:
        body = decode_tx(bytes(envelope)).body
        nonces[body.signer].append(body.nonce)
    assert set(nonces) == {k.public.did for k in signers}
    for signer, seen in nonces.items():
        assert seen == list(range(1, len(seen) + 1)), f"nonces of {signer} are not 1..n in order"

    report = verify_chain(city.data_dir, registry=city.registry)
    assert (report.height, report.transactions) == (heights[-1], len(rows))


def test_kill_9_mid_load_loses_nothing(tmp_path: Path) -> None:
    _crash_rounds(tmp_path, rounds=8, seed=20240611)


@pytest.mark.soak
def test_kill_9_mid_load_loses_nothing_soak(tmp_path: Path) -> None:
    _crash_rounds(tmp_path, rounds=40, seed=7)
