"""The explorer's block page: an attestations panel on a cluster node, nothing on the embedded one.

The cluster test runs one ``ClusterNode`` in this process over one real ``nats-server``; the
trial city has one producer, so its own attestation is the quorum (1 of 1) and blocks become
final once it has read its own attestation back from the stream.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from civicledger.api.server import BackgroundServer
from civicledger.keystore import Keystore
from civicledger.node.cluster.config import ClusterConfig
from civicledger.node.cluster.local import CITY_HALL, LocalCluster, anchor_tx
from civicledger.node.cluster.nats_servers import NatsCluster
from civicledger.node.cluster.node import ClusterNode
from civicledger.node.embedded import EmbeddedNode
from civicledger.web import create_site
from nats_fixtures import nats_single_fixture  # noqa: F401  (a fixture)


def _one_node_city(root: Path) -> LocalCluster:
    local = LocalCluster(root, 1, clerks=0)
    local.create()
    return local


def test_embedded_block_page_has_no_attestations_panel(tmp_path: Path) -> None:
    local = _one_node_city(tmp_path / "trial")
    node_dir = local.node("node-1").root
    key = Keystore(node_dir / "keys").load("node")
    with EmbeddedNode(node_dir / "data", key) as node:
        receipt = node.submit(anchor_tx(local.key(CITY_HALL), local.chain_id, 1))
        with BackgroundServer(create_site(node)) as server:
            page = httpx.get(f"{server.url}/blocks/{receipt.height}", params={"lang": "en"})
    assert page.status_code == 200
    assert "Block header" in page.text
    assert 'id="attestations"' not in page.text
    assert "Attestations" not in page.text


@pytest.mark.cluster
def test_cluster_block_page_shows_attestations_quorum_and_final(
    tmp_path: Path, nats_single: NatsCluster
) -> None:
    local = _one_node_city(tmp_path / "trial")
    node_dir = local.node("node-1").root
    key = Keystore(node_dir / "keys").load("node")
    config = ClusterConfig(nats_urls=nats_single.urls, replicas=1, block_interval_ms=20)
    with ClusterNode(node_dir / "data", key, config) as node:
        receipt = node.submit(anchor_tx(local.key(CITY_HALL), local.chain_id, 1))
        deadline = time.monotonic() + 30
        while not node.is_final(receipt.height):
            assert time.monotonic() < deadline, "the block never became final"
            time.sleep(0.05)
        with BackgroundServer(create_site(node)) as server:
            en = httpx.get(f"{server.url}/blocks/{receipt.height}", params={"lang": "en"})
            ko = httpx.get(f"{server.url}/blocks/{receipt.height}", params={"lang": "ko"})
    assert en.status_code == 200
    page = en.text
    assert 'id="attestations"' in page
    assert f'data-node="{key.public.did}" data-agrees="true"' in page
    assert "1 agree; 1 needed" in page
    final = page[page.index('class="attest-final"') :]
    assert final.startswith('class="attest-final">Yes<')
    assert 'data-agrees="false"' not in page
    assert "블록 검증 서명" in ko.text
    assert "확정됨" in ko.text
