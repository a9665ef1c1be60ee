"""``CivicClient.finality`` / ``wait_final`` against a served three-node cluster on real NATS."""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_core_city import NODES, make_cluster_city

from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.client import CivicClient
from civicledger.node.cluster.nats_servers import NatsCluster
from nats_fixtures import nats_single_fixture  # noqa: F401  (fixture)


@pytest.mark.cluster
def test_the_client_sees_a_committed_block_become_final(
    tmp_path: Path, nats_single: NatsCluster
) -> None:
    city = make_cluster_city(tmp_path / "nodes", nats_single.urls)
    nodes = [city.start(name) for name in NODES]
    try:
        with (
            BackgroundServer(create_app(nodes[1])) as server,
            CivicClient(server.url, city.genesis, poll_interval=0.05) as client,
        ):
            receipt = client.submit(city.add_tx(amount=5))
            height = receipt.height
            majority = client.wait_final(height, timeout=30.0)
            assert majority.final
            assert majority.quorum == 2
            assert len(majority.attesters) >= 2
            assert set(majority.attesters) <= set(city.genesis.producers)
            header = nodes[0].chain.block(height)
            assert header is not None
            assert majority.header_hash == header.header.hash().hex()
            everyone = client.wait_final(height, timeout=30.0, quorum=3)
            assert (everyone.final, everyone.quorum) == (True, 3)
            assert sorted(everyone.attesters) == sorted(n.did for n in nodes)
            assert everyone.ignored == ()
            assert client.finality(height).final
    finally:
        for node in nodes:
            node.close()
