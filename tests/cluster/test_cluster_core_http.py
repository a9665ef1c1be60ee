"""The cluster HTTP surface over a served ClusterNode, and what an embedded node answers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cluster_core_city import NODES, make_cluster_city, wait_for

from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.node.cluster.nats_servers import NatsCluster
from civicledger.node.embedded import EmbeddedNode
from nats_fixtures import nats_cluster_fixture, nats_single_fixture  # noqa: F401  (fixtures)

STATUS_KEYS = {
    "node",
    "height",
    "header_hash",
    "state_hash",
    "stream_seq",
    "final_height",
    "quorum",
    "serving",
    "diverged",
    "peers",
    "faulty",
    "silent",
}
PEER_KEYS = {"node", "attested_height", "agrees", "behind", "silent"}


@pytest.mark.cluster
def test_status_attestations_metrics_and_tx(tmp_path: Path, nats_single: NatsCluster) -> None:
    city = make_cluster_city(tmp_path / "nodes", nats_single.urls)
    nodes = [city.start(name) for name in NODES]
    try:
        with BackgroundServer(create_app(nodes[0])) as server:
            url = server.url
            tx = city.add_tx(amount=7)
            posted = httpx.post(
                f"{url}/api/v1/tx",
                content=tx.envelope_bytes(),
                headers={"content-type": "application/json"},
                timeout=30,
            )
            assert posted.status_code == 200, posted.text
            height = posted.json()["receipt"]["height"]
            wait_for(lambda: all(n.final_height >= height for n in nodes), what="finality")
            status = httpx.get(f"{url}/api/v1/cluster/status").json()
            assert set(status) == STATUS_KEYS
            assert status["node"] == nodes[0].did
            assert status["height"] >= height
            assert status["quorum"] == 2
            assert (status["serving"], status["diverged"], status["faulty"]) == (True, False, [])
            assert {p["node"] for p in status["peers"]} == {nodes[1].did, nodes[2].did}
            assert all(set(p) == PEER_KEYS for p in status["peers"])
            atts = httpx.get(f"{url}/api/v1/blocks/{height}/attestations").json()
            assert atts["final"] is True
            assert atts["quorum"] == 2
            assert len(atts["attestations"]) >= 2
            assert all(a["agrees"] for a in atts["attestations"])
            assert {a["header_hash"] for a in atts["attestations"]} == {atts["header_hash"]}
            missing = httpx.get(f"{url}/api/v1/blocks/999/attestations")
            assert missing.status_code == 404
            metrics = httpx.get(f"{url}/metrics").text
            for name in (
                "civic_cluster_stream_seq",
                "civic_cluster_final_height",
                "civic_cluster_attestations_total",
                "civic_cluster_divergences_total",
                "civic_cluster_faulty_peers",
                "civic_cluster_finality_seconds_bucket",
            ):
                assert name in metrics
            assert httpx.get(f"{url}/healthz").status_code == 200
    finally:
        for node in nodes:
            node.close()


def test_an_embedded_node_is_not_a_cluster(tmp_path: Path) -> None:
    city = make_cluster_city(tmp_path / "nodes", ["nats://127.0.0.1:1"])
    with (
        EmbeddedNode(city.data_dir("node-a"), city.keys["node-a"]) as node,
        BackgroundServer(create_app(node)) as server,
    ):
        for path in ("/api/v1/cluster/status", "/api/v1/blocks/0/attestations"):
            response = httpx.get(server.url + path)
            assert response.status_code == 404
            assert response.json()["reason"] == "not_a_cluster"
        assert "civic_cluster_" not in httpx.get(server.url + "/metrics").text
