"""``civic cluster up`` / ``status`` and the trial-cluster layout of ``LocalCluster``.

The layout tests need no server and run in the default suite; the ``up`` test starts the real
command (3 NATS servers and 3 node processes) and is marked ``cluster``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from civicledger.errors import NodeError
from civicledger.ledger.genesis import Genesis
from civicledger.node.chain import Chain
from civicledger.node.cluster.config import ClusterConfig
from civicledger.node.cluster.local import CITY_HALL, Lane, LocalCluster, read_manifest
from civicledger.node.cluster.nats_servers import free_ports
from nats_fixtures import require_nats_server

CIVIC = [sys.executable, "-c", "from civicledger.cli.app import main; main()"]


def test_layout_lists_every_node_as_producer_with_one_genesis_block(tmp_path: Path) -> None:
    local = LocalCluster(tmp_path / "trial", 4, clerks=2)
    local.create()
    genesis = local.genesis
    assert len(genesis.producers) == 4
    hall = next(a for a in genesis.agencies if a.id == CITY_HALL)
    assert hall.roles == ("notary",)
    assert len(hall.keys) == 3
    assert local.key("clerk-02").public.did in hall.keys
    blocks = []
    for node in local.nodes.values():
        assert Genesis.load(node.root / "genesis.json") == genesis
        chain = Chain(node.root / "data")
        try:
            head = chain.block(0)
            assert head is not None
            blocks.append(head.header)
        finally:
            chain.close()
    assert all(block == blocks[0] for block in blocks)
    assert blocks[0].producer == genesis.producers[0]


def test_layout_is_reused_and_ports_are_kept(tmp_path: Path) -> None:
    base = free_ports(1)[0]
    first = LocalCluster(tmp_path / "trial", 2, port_base=base, clerks=0)
    first.create()
    again = LocalCluster(tmp_path / "trial", 2, clerks=0)
    again.create()
    assert again.urls == first.urls
    assert again.genesis == first.genesis
    manifest = read_manifest(tmp_path / "trial")
    assert [n["port"] for n in manifest["nodes"]] == [base, base + 1]


def test_node_configs_are_valid_cluster_files(tmp_path: Path) -> None:
    local = LocalCluster(tmp_path / "trial", 3, quorum=2, clerks=0)
    local.create()
    local._write_configs()
    for index, node in enumerate(local.nodes.values()):
        config = ClusterConfig.load(node.config_path)
        assert config.replicas == 3
        assert config.quorum == 2
        assert config.nats_urls[0] == local.nats.urls[index]
        assert node.url not in config.peers
        assert len(config.peers) == 2


def test_corrupt_state_changes_one_entry_and_refuses_a_missing_key(tmp_path: Path) -> None:
    local = LocalCluster(tmp_path / "trial", 1, clerks=0)
    local.create()
    with pytest.raises(NodeError, match="no state entry"):
        local.corrupt_state("node-1", "nope/not-there")
    conn = sqlite3.connect(local.node("node-1").db_path)
    try:
        key = conn.execute("SELECT key FROM state ORDER BY key LIMIT 1").fetchone()[0]
    finally:
        conn.close()
    local.corrupt_state("node-1", key, b"{}")
    conn = sqlite3.connect(local.node("node-1").db_path)
    try:
        value = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()[0]
    finally:
        conn.close()
    assert bytes(value) == b"{}"


def test_status_without_cluster_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CIVIC, "cluster", "status", "--dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "no_cluster" in done.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.cluster
def test_cluster_up_serves_status_and_stops_everything(tmp_path: Path) -> None:
    require_nats_server()
    root = tmp_path / "trial"
    base = free_ports(1)[0]
    up = subprocess.Popen(
        [*CIVIC, "cluster", "up", "--nodes", "3", "--dir", str(root), "--port-base", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        urls = [f"http://127.0.0.1:{base + i}" for i in range(3)]
        deadline = time.monotonic() + 90
        statuses: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(statuses) < 3:
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            statuses = []
            for url in urls:
                try:
                    response = httpx.get(url + "/api/v1/cluster/status", timeout=2)
                except httpx.HTTPError:
                    break
                if response.status_code != 200:
                    break
                statuses.append(response.json())
            time.sleep(0.5)
        assert len(statuses) == 3
        assert len({s["node"] for s in statuses}) == 3
        manifest = json.loads((root / "local-cluster.json").read_text())
        assert [n["url"] for n in manifest["nodes"]] == urls
        shown = subprocess.run(
            [*CIVIC, "cluster", "status", "--dir", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        for url in urls:
            assert url in shown.stdout
        assert "down" not in shown.stdout
        nats_pids = [int(p.read_text()) for p in sorted((root / "nats").glob("*/nats.pid"))]
        assert len(nats_pids) == 3
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    for pid in nats_pids:
        assert not _alive(pid), f"nats-server {pid} still running"
    for url in urls:
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/api/v1/cluster/status", timeout=2)


@pytest.mark.cluster
def test_a_stopped_trial_cluster_starts_again_with_its_ledger(tmp_path: Path) -> None:
    require_nats_server()
    first = LocalCluster(tmp_path / "trial", 3, clerks=1)
    first.start()
    try:
        lane = Lane(first.key("clerk-01"), first.chain_id, first.urls)
        acked = [lane.send_next()["tx_id"] for _ in range(3)]
        before = first.wait_converged(min_height=1)
    finally:
        first.stop()
    again = LocalCluster(tmp_path / "trial", 3)
    again.start()
    try:
        lane = Lane(again.key("clerk-01"), again.chain_id, again.urls, nonce=3)
        acked.append(lane.send_next()["tx_id"])
        height = next(iter(before.values()))["height"]
        after = again.wait_converged(min_height=height + 1)
        for name in again.node_names():
            assert sorted(again.committed_tx_ids(name)) == sorted(acked)
        assert all(s["diverged"] is False for s in after.values())
    finally:
        again.stop()
