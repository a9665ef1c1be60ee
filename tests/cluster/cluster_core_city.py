"""A city with three producing nodes (``node-a``, ``node-b``, ``node-c``), each with its own
copy of the same genesis ledger, and helpers to run ``ClusterNode``s over real NATS servers."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.tx import SignedTx, sign_tx
from civicledger.node.chain import DB_NAME, Chain
from civicledger.node.cluster.config import ClusterConfig
from civicledger.node.cluster.node import ClusterNode, repair
from civicledger.node.cluster.snapshot import SnapshotInfo
from conftest import CHAIN_ID, FAR_FUTURE_MS, GENESIS_TIME_MS, city_key, city_registry

NODES = ("node-a", "node-b", "node-c")


@dataclass
class ClusterCity:
    root: Path
    genesis: Genesis
    keys: dict[str, PrivateKey]
    urls: list[str]
    replicas: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)

    def config(self, **options: Any) -> ClusterConfig:
        values: dict[str, Any] = {
            "nats_urls": self.urls,
            "replicas": self.replicas,
            "block_interval_ms": 20,
            **self.options,
            **options,
        }
        return ClusterConfig(**values)

    def data_dir(self, name: str) -> Path:
        return self.root / name

    def start(self, name: str, **options: Any) -> ClusterNode:
        return ClusterNode(
            self.data_dir(name), self.keys[name], self.config(**options), registry=city_registry()
        )

    def repair(self, name: str, peer_url: str, quorum_wait_s: float = 15.0) -> SnapshotInfo:
        return repair(
            self.data_dir(name),
            peer_url,
            self.config(),
            registry=city_registry(),
            quorum_wait_s=quorum_wait_s,
        )

    def add_tx(self, amount: int = 1, signer: str = "clerk") -> SignedTx:
        key = self.keys[signer]
        nonce = self.nonces.get(signer, 0) + 1
        self.nonces[signer] = nonce
        return sign_tx(
            key,
            chain_id=CHAIN_ID,
            nonce=nonce,
            contract="tally",
            method="add",
            args={"amount": amount},
            expires_at=FAR_FUTURE_MS,
        )


def make_cluster_city(root: Path, urls: list[str], replicas: int = 1) -> ClusterCity:
    keys = {label: city_key(label) for label in (*NODES, "root", "clerk", "clerk2")}
    genesis = Genesis(
        chain_id=CHAIN_ID,
        city="Testville",
        time_ms=GENESIS_TIME_MS,
        root_authorities=(keys["root"].public.did,),
        producers=tuple(keys[n].public.did for n in NODES),
    )
    first = root / NODES[0]
    Chain.create(first, genesis, keys[NODES[0]], city_registry()).close()
    for name in NODES[1:]:
        (root / name).mkdir(parents=True)
        shutil.copy(first / DB_NAME, root / name / DB_NAME)
    return ClusterCity(root, genesis, keys, urls, replicas)


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def heads(nodes: list[ClusterNode]) -> set[tuple[int, str, str]]:
    """(height, header hash, state hash) of each node's head; one element when they agree."""
    return {
        (n.chain.height, n.chain.head.header.hash().hex(), n.chain.head.header.state_hash)
        for n in nodes
    }


def same_height(nodes: list[ClusterNode], height: int | None = None) -> Callable[[], bool]:
    def check() -> bool:
        heights = {n.chain.height for n in nodes}
        return len(heights) == 1 and (height is None or heights == {height})

    return check
