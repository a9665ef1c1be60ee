"""ClusterNodes in one process over real NATS servers: ordering, dedup, finality, catch-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_core_city import NODES, ClusterCity, heads, make_cluster_city, wait_for

from civicledger.node.cluster.nats_servers import NatsCluster
from civicledger.node.cluster.node import ClusterNode
from nats_fixtures import nats_cluster_fixture, nats_single_fixture  # noqa: F401  (fixtures)

pytestmark = pytest.mark.cluster


@pytest.fixture
def city1(tmp_path: Path, nats_single: NatsCluster) -> ClusterCity:
    return make_cluster_city(tmp_path / "nodes", nats_single.urls, replicas=1)


@pytest.fixture
def nodes(city1: ClusterCity) -> Iterator[list[ClusterNode]]:
    started = [city1.start(name) for name in NODES]
    try:
        yield started
    finally:
        for node in started:
            node.close()


def _agree_at_every_height(nodes: list[ClusterNode]) -> None:
    top = nodes[0].chain.height
    for height in range(top + 1):
        headers = {n.chain.block(height) for n in nodes}
        hashes = {h.header.hash() for h in headers if h is not None}
        assert len(hashes) == 1, f"nodes differ at block {height}"


def test_every_node_commits_the_same_blocks(city1: ClusterCity, nodes: list[ClusterNode]) -> None:
    # One signer's transactions go through one node: the stream keeps each node's publishing
    # order, not an order across nodes (a nonce gap is dropped, as on a single node).
    signers = ("clerk", "clerk2", "root")
    futures = [nodes[i % 3].submit_nowait(city1.add_tx(signer=signers[i % 3])) for i in range(40)]
    receipts = [f.result(30) for f in futures]
    assert all(r.ok for r in receipts)
    top = max(n.chain.height for n in nodes)
    wait_for(lambda: {n.chain.height for n in nodes} == {top}, what="same height")
    assert len(heads(nodes)) == 1
    _agree_at_every_height(nodes)
    totals = {n.chain.query("tally", "total", {}) for n in nodes}
    assert totals == {40}


def test_the_same_tx_sent_to_two_nodes_is_committed_once(
    city1: ClusterCity, nodes: list[ClusterNode]
) -> None:
    tx = city1.add_tx(amount=5)
    first = nodes[0].submit_nowait(tx)
    second = nodes[1].submit_nowait(tx)
    assert first.result(30).tx_id == second.result(30).tx_id
    wait_for(lambda: {n.chain.height for n in nodes} == {nodes[0].chain.height})
    for node in nodes:
        assert node.chain.query("tally", "total", {}) == 5
        rows = list(node.chain.raw_rows("SELECT count(*) FROM txs"))
        assert rows == [(1,)]


def test_blocks_become_final_with_a_quorum_of_attestations(
    city1: ClusterCity, nodes: list[ClusterNode]
) -> None:
    receipt = nodes[0].submit(city1.add_tx(), timeout=30)
    wait_for(lambda: all(n.final_height >= receipt.height for n in nodes), what="finality")
    for node in nodes:
        assert node.is_final(receipt.height)
        atts = node.book.at(receipt.height)
        assert len({a.attestation.header_hash for a in atts}) == 1
        assert len(atts) >= node.quorum
        assert not node.faulty


def test_a_node_started_later_catches_up(city1: ClusterCity) -> None:
    a, b = city1.start("node-a"), city1.start("node-b")
    try:
        for _ in range(10):
            a.submit(city1.add_tx(), timeout=30)
        c = city1.start("node-c")
        try:
            wait_for(lambda: c.chain.height == a.chain.height, what="catch-up")
            assert len(heads([a, b, c])) == 1
        finally:
            c.close()
    finally:
        a.close()
        b.close()


def test_a_restarted_node_resumes_from_its_stream_position(city1: ClusterCity) -> None:
    nodes = [city1.start(name) for name in NODES]
    try:
        nodes[0].submit(city1.add_tx(), timeout=30)
        nodes[2].close()
        for _ in range(5):
            nodes[0].submit(city1.add_tx(), timeout=30)
        nodes[2] = city1.start("node-c")
        wait_for(lambda: nodes[2].chain.height == nodes[0].chain.height, what="resume")
        assert len(heads(nodes)) == 1
        assert nodes[2].chain.query("tally", "total", {}) == 6
    finally:
        for node in nodes:
            node.close()


def test_three_servers_and_the_stream_leader_killed_under_load(
    tmp_path: Path, nats_cluster: NatsCluster
) -> None:
    city = make_cluster_city(tmp_path / "nodes", nats_cluster.urls, replicas=3)
    nodes = [city.start(name) for name in NODES]
    try:
        signers = ("clerk", "clerk2", "root")
        first = [nodes[i].submit_nowait(city.add_tx(signer=signers[i])) for i in range(3)]
        assert all(f.result(30).ok for f in first)
        leader = nats_cluster.stream_leader(nodes[0].names.stream)
        nats_cluster.kill(leader)
        futures = [
            nodes[i % 3].submit_nowait(city.add_tx(signer=signers[i % 3])) for i in range(30)
        ]
        assert all(f.result(60).ok for f in futures)
        wait_for(lambda: len({n.chain.height for n in nodes}) == 1, timeout=30)
        assert len(heads(nodes)) == 1
        _agree_at_every_height(nodes)
        assert {n.chain.query("tally", "total", {}) for n in nodes} == {33}
        wait_for(lambda: all(n.final_height == n.chain.height for n in nodes), timeout=30)
    finally:
        for node in nodes:
            node.close()
