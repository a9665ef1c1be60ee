"""Fault tests: real NATS servers and real node processes on loopback, one fault each.

Every test starts its own trial cluster (3 NATS servers, 3 ``civic node run --cluster``
processes), runs notary load through the nodes' HTTP API, injects one fault, and then checks:

- every live node reaches the same height, header hash and state hash, and sees that head final;
- the committed tx ids equal the acknowledged ones on every node, each exactly once (none lost,
  none duplicated, none invented);
- the faulty node, if there is one, is reported (``faulty`` of the healthy nodes, or its own
  ``diverged``/503).

"Corrupt a node's database" here means: while the node is stopped, delete one notary record from
its ``state`` table. The state hash chains write-sets, so nothing shows until a later transaction
reads that record: re-anchoring the same digest fails (``already_anchored``) on the healthy nodes
and succeeds on the corrupted one, so its block differs and its attestation disagrees.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.tx import SignedTx, expiry_from_now, sign_tx
from civicledger.node.cluster.local import CITY_HALL, Lane, Load, LocalCluster, anchor_tx
from nats_fixtures import require_nats_server

pytestmark = pytest.mark.cluster

LANES = 6


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    require_nats_server()
    local = LocalCluster(tmp_path / "trial", 3, clerks=LANES, block_interval_ms=100)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _load(cluster: LocalCluster, urls: list[str] | None = None, tag: str = "") -> Load:
    lanes = [
        Lane(cluster.key(name), cluster.chain_id, urls or cluster.urls, tag=tag)
        for name in cluster.clerk_names()[:LANES]
    ]
    return Load(lanes)


def _assert_consistent(
    cluster: LocalCluster, acked: list[str], names: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Same head everywhere, and every node committed exactly the acknowledged transactions."""
    live = names or cluster.node_names()
    statuses = cluster.wait_converged(live, min_height=1, timeout=60)
    assert len({(s["height"], s["header_hash"], s["state_hash"]) for s in statuses.values()}) == 1
    assert len(set(acked)) == len(acked), "a transaction was acknowledged twice"
    for name in live:
        committed = cluster.committed_tx_ids(name)
        duplicated = [tx for tx, n in Counter(committed).items() if n > 1]
        assert not duplicated, f"{name} committed {duplicated[:3]} more than once"
        assert set(committed) == set(acked), (
            f"{name}: lost {sorted(set(acked) - set(committed))[:3]}, "
            f"unexpected {sorted(set(committed) - set(acked))[:3]}"
        )
    # Final too: a quorum of agencies attested that head on every live node.
    height = next(iter(statuses.values()))["height"]
    for name in live:
        _wait_for(
            lambda name=name: cluster.status(name)["final_height"] >= height,
            f"{name} to see block {height} final",
        )
    return statuses


def _did(cluster: LocalCluster, name: str) -> str:
    return str(cluster.wait_ready(name)["node"])


def _peer(status: dict[str, Any], did: str) -> dict[str, Any] | None:
    return next((p for p in status["peers"] if p["node"] == did), None)


def _reporting_silent(cluster: LocalCluster, name: str, did: str) -> dict[str, Any] | None:
    """``name``'s status if it reports ``did`` as silent, else None."""
    status = cluster.status(name)
    return status if did in status["silent"] else None


def _wait_for(condition: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_kill_nats_stream_leader_during_load(cluster: LocalCluster) -> None:
    stream = "CIVIC_" + "".join(c if c.isalnum() else "_" for c in cluster.chain_id.upper())
    load = _load(cluster).start()
    load.wait_acked(20)
    leader = cluster.nats.stream_leader(stream)
    cluster.nats.kill(leader)
    before = len(load.acked)
    load.wait_acked(before + 30, timeout=60)
    load.stop()
    assert not load.errors, load.errors
    new_leader = cluster.nats.stream_leader(stream, timeout=30)
    assert new_leader != leader
    statuses = _assert_consistent(cluster, load.acked)
    for status in statuses.values():
        assert status["serving"] is True
        assert status["diverged"] is False
        assert status["faulty"] == []
    cluster.nats.restart(leader)


def test_kill_node_and_restart(cluster: LocalCluster) -> None:
    victim = "node-3"
    victim_did = _did(cluster, victim)
    healthy = [n for n in cluster.node_names() if n != victim]
    load = _load(cluster, [cluster.url(n) for n in healthy]).start()
    load.wait_acked(15)
    cluster.kill(victim, signal.SIGKILL)
    before = len(load.acked)
    load.wait_acked(before + 30)
    # While it is down, the healthy nodes report it silent: its attestations stop short.
    for name in healthy:
        status = _wait_for(
            lambda name=name: _reporting_silent(cluster, name, victim_did),
            f"{name} to report the killed node silent",
        )
        peer = _peer(status, victim_did)
        assert peer is not None, status["peers"]
        assert peer["attested_height"] < status["height"]
    cluster.restart(victim)
    load.set_urls(cluster.urls)
    load.wait_acked(len(load.acked) + 15)
    load.stop()
    assert not load.errors, load.errors
    statuses = _assert_consistent(cluster, load.acked)
    assert statuses[victim]["serving"] is True
    assert statuses[victim]["diverged"] is False
    peer = _wait_for(
        lambda: (
            (p := _peer(cluster.status(healthy[0]), victim_did))
            and p["attested_height"] >= statuses[victim]["height"]
            and p
        ),
        "the restarted node's attestations",
    )
    assert peer["agrees"] is True
    assert peer["silent"] is False


def test_pause_node_and_resume(cluster: LocalCluster) -> None:
    victim = "node-2"
    victim_did = _did(cluster, victim)
    healthy = [n for n in cluster.node_names() if n != victim]
    load = _load(cluster, [cluster.url(n) for n in healthy]).start()
    load.wait_acked(15)
    cluster.pause(victim)
    try:
        load.wait_acked(len(load.acked) + 30)
        status = _wait_for(
            lambda: _reporting_silent(cluster, healthy[0], victim_did),
            "the paused node reported silent",
        )
        peer = _peer(status, victim_did)
        assert peer is not None, status["peers"]
        assert peer["attested_height"] < status["height"]
        # Blocks keep becoming final without it: 2 of 3 is the quorum.
        assert status["final_height"] > peer["attested_height"]
    finally:
        cluster.resume(victim)
    load.set_urls(cluster.urls)
    load.wait_acked(len(load.acked) + 15)
    load.stop()
    assert not load.errors, load.errors
    statuses = _assert_consistent(cluster, load.acked)
    assert statuses[victim]["diverged"] is False


def _status_or_none(cluster: LocalCluster, name: str) -> dict[str, Any] | None:
    try:
        return cluster.status(name, timeout=3)
    except (httpx.HTTPError, ValueError):
        return None


def _state_key(db: Path, digest: str) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT key FROM state WHERE key LIKE ?", (f"%doc/{digest}",)
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_corrupt_node_database(cluster: LocalCluster) -> None:
    victim = "node-3"
    victim_did = _did(cluster, victim)
    healthy = [n for n in cluster.node_names() if n != victim]
    key: PrivateKey = cluster.key(CITY_HALL)
    lane = Lane(key, cluster.chain_id, [cluster.url("node-1")], tag="corrupt")
    first = anchor_tx(key, cluster.chain_id, 1, tag="corrupt")
    lane.nonce = 1
    receipt = lane.send(first)
    assert receipt["status"] == "ok", receipt
    cluster.wait_converged(min_height=receipt["height"])
    digest = first.body.args["digest"]
    cluster.stop_node(victim)
    cluster.corrupt_state(victim, _state_key(cluster.node(victim).db_path, digest))
    cluster.start_node(victim)
    # The same digest again: refused by the contract everywhere except on the corrupted node.
    lane.nonce = 2
    again = lane.send(_reanchor(key, cluster.chain_id, 2, digest))
    assert again["status"] == "failed", again
    assert again["reason"] == "already_anchored", again
    more = [lane.send_next() for _ in range(3)]
    assert all(r["status"] == "ok" for r in more)

    diverged = _wait_for(
        lambda: (s := _status_or_none(cluster, victim)) is not None and s["diverged"] and s,
        "the corrupted node to report itself diverged",
        timeout=45,
    )
    assert diverged["serving"] is False
    refused = httpx.get(cluster.url(victim) + "/api/v1/blocks", timeout=5)
    assert refused.status_code == 503
    assert refused.json()["reason"] == "node_diverged"
    assert httpx.get(cluster.url(victim) + "/healthz", timeout=5).status_code == 503
    for name in healthy:
        faulty = _wait_for(
            lambda name=name: [
                f for f in cluster.status(name)["faulty"] if f["node"] == victim_did
            ],
            f"{name} to list the corrupted node as faulty",
        )
        assert faulty[0]["height"] >= again["height"]
    _assert_consistent(cluster, lane.acked, healthy)

    # Repaired from a healthy peer's snapshot, it serves again with the others' head.
    cluster.stop_node(victim)
    cluster.repair(victim, healthy[0])
    cluster.start_node(victim)
    more.append(lane.send_next())
    statuses = _assert_consistent(cluster, lane.acked)
    assert statuses[victim]["diverged"] is False
    assert statuses[victim]["serving"] is True
    assert httpx.get(cluster.url(victim) + "/healthz", timeout=5).status_code == 200


def _reanchor(key: PrivateKey, chain_id: str, nonce: int, digest: str) -> SignedTx:
    return sign_tx(
        key,
        chain_id=chain_id,
        nonce=nonce,
        contract="notary",
        method="anchor",
        args={"digest": digest, "label": "again"},
        expires_at=expiry_from_now(600),
    )


def _post_together(urls: list[str], tx: SignedTx) -> list[httpx.Response]:
    """POST the same envelope to each URL, released at the same instant."""
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(len(urls))

    def post(url: str) -> None:
        with httpx.Client(timeout=30) as http:
            barrier.wait()
            envelope = tx.envelope_bytes()
            answers.append(http.post(url + "/api/v1/tx", params={"wait": "true"}, content=envelope))

    threads = [threading.Thread(target=post, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return answers


def test_same_transaction_to_two_nodes_at_once(cluster: LocalCluster) -> None:
    key = cluster.key(CITY_HALL)
    urls = [cluster.url("node-1"), cluster.url("node-2")]
    acked: list[str] = []
    for nonce in range(1, 11):
        tx = anchor_tx(key, cluster.chain_id, nonce, tag="twice")
        answers = _post_together(urls, tx)
        assert len(answers) == 2
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        receipts = [a.json()["receipt"] for a in answers]
        assert receipts[0] == receipts[1]
        assert receipts[0]["status"] == "ok"
        acked.append(tx.tx_id_hex)
    statuses = _assert_consistent(cluster, acked)
    for status in statuses.values():
        assert status["faulty"] == []
