"""A node whose database was tampered with is detected, refuses to serve, and is repaired from a
peer's snapshot; a node behind a truncated stream is repaired the same way."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest
from cluster_core_city import ClusterCity, heads, make_cluster_city, wait_for

from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.errors import LedgerError
from civicledger.node.chain import DB_NAME
from civicledger.node.cluster.nats_servers import NatsCluster
from civicledger.node.cluster.node import ClusterNode, StreamTruncated
from civicledger.node.cluster.snapshot import HASH_HEADER, HEIGHT_HEADER, MEDIA_TYPE
from nats_fixtures import nats_cluster_fixture, nats_single_fixture  # noqa: F401  (fixtures)

pytestmark = pytest.mark.cluster


@pytest.fixture
def city1(tmp_path: Path, nats_single: NatsCluster) -> ClusterCity:
    return make_cluster_city(tmp_path / "nodes", nats_single.urls, replicas=1)


@contextmanager
def served(node: ClusterNode) -> Iterator[str]:
    with BackgroundServer(create_app(node)) as server:
        yield server.url


def _tamper_total(data_dir: Path, value: bytes) -> None:
    with closing(sqlite3.connect(data_dir / DB_NAME)) as conn:
        changed = conn.execute(
            "UPDATE state SET value = ? WHERE CAST(key AS TEXT) LIKE '%tally%total%'", (value,)
        ).rowcount
        conn.commit()
    assert changed == 1


def test_a_tampered_node_is_reported_refuses_to_serve_and_is_repaired(
    city1: ClusterCity,
) -> None:
    a, b, c = (city1.start(n) for n in ("node-a", "node-b", "node-c"))
    try:
        a.submit(city1.add_tx(amount=1), timeout=30)
        wait_for(lambda: c.chain.height == a.chain.height)
        c.close()
        _tamper_total(city1.data_dir("node-c"), b"1000")
        c = city1.start("node-c")
        receipt = a.submit(city1.add_tx(amount=2), timeout=30)
        wait_for(lambda: c.diverged, what="node-c to find it diverged")
        wait_for(
            lambda: all(any(f.node == c.did for f in n.faulty) for n in (a, b)),
            what="node-c reported by the others",
        )
        assert not a.diverged
        assert not b.diverged
        assert c.chain.head.header.state_hash != a.chain.head.header.state_hash
        with served(c) as url:
            blocks = httpx.get(f"{url}/api/v1/blocks")
            assert blocks.status_code == 503
            assert blocks.json()["reason"] == "node_diverged"
            assert httpx.get(f"{url}/healthz").status_code == 503
            status = httpx.get(f"{url}/api/v1/cluster/status").json()
            assert (status["diverged"], status["serving"]) == (True, False)
        with served(a) as url:
            status = httpx.get(f"{url}/api/v1/cluster/status").json()
            assert {f["node"] for f in status["faulty"]} == {c.did}
            assert next(p for p in status["peers"] if p["node"] == c.did)["agrees"] is False
            atts = httpx.get(f"{url}/api/v1/blocks/{receipt.height}/attestations").json()
            assert atts["final"] is True
            assert {x["node"]: x["agrees"] for x in atts["attestations"]}[c.did] is False
            c.close()
            info = city1.repair("node-c", url)
            assert info.height >= receipt.height
        c = city1.start("node-c")
        assert c.serving
        a.submit(city1.add_tx(amount=3), timeout=30)
        wait_for(lambda: c.chain.height == a.chain.height == b.chain.height, what="agreement")
        assert len(heads([a, b, c])) == 1
        assert c.chain.query("tally", "total", {}) == 6
    finally:
        for node in (a, b, c):
            node.close()


def test_a_snapshot_is_refused_unless_its_head_is_final(city1: ClusterCity) -> None:
    a = city1.start("node-a")  # alone: its blocks are never attested by a quorum of 2
    try:
        a.submit(city1.add_tx(), timeout=30)
        with served(a) as url:
            response = httpx.get(f"{url}/api/v1/cluster/snapshot")
            assert response.headers["content-type"] == MEDIA_TYPE
            assert int(response.headers[HEIGHT_HEADER]) == a.chain.height
            assert response.headers[HASH_HEADER] == a.chain.head.header.hash().hex()
            with pytest.raises(LedgerError, match="not attested by a quorum"):
                city1.repair("node-b", url, quorum_wait_s=0.5)
    finally:
        a.close()


def test_a_node_behind_a_truncated_stream_is_repaired_from_a_snapshot(
    city1: ClusterCity,
) -> None:
    city1.options["stream_max_msgs"] = 8
    a, b = city1.start("node-a"), city1.start("node-b")
    try:
        for _ in range(10):
            a.submit(city1.add_tx(), timeout=30)
        wait_for(lambda: b.chain.height == a.chain.height)
        with pytest.raises(StreamTruncated):
            city1.start("node-c")
        wait_for(lambda: a.final_height == a.chain.height, what="finality")
        with served(a) as url:
            city1.repair("node-c", url)
        c = city1.start("node-c")
        try:
            a.submit(city1.add_tx(), timeout=30)
            wait_for(lambda: c.chain.height == a.chain.height, what="node-c to catch up")
            assert len(heads([a, b, c])) == 1
            assert c.chain.query("tally", "total", {}) == 11
        finally:
            c.close()
    finally:
        a.close()
        b.close()
