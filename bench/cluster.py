"""Committed tx/s of a 3-node cluster over 3 NATS servers, against one embedded node, same run.

Both sides get the SAME pre-signed notary ``anchor`` transactions (one nonce sequence per
clerk key of the trial city's city hall) over the same HTTP API, from the same load generator:
``L`` lanes, each a keep-alive connection with one ``POST /api/v1/tx?wait=true`` in flight, so a
lane's nonces reach the ledger in order. What differs is behind the API:

- ``embedded``: one ``civic node run`` process (the default node, no server) on a copy of
  node-1's fresh ledger (the same genesis; node-1's key is one of its producers);
- ``cluster``: ``LocalCluster``: 3 NATS servers (stream R3) and 3 ``civic node run --cluster``
  processes; lane ``i`` talks to node ``i mod 3``. A 200 means the node that took the request
  committed the block to its own SQLite; it does NOT mean final.

Time to finality: a watcher polls node-1's ``/api/v1/cluster/status`` every few ms and records
when each ``final_height`` was first seen; for every transaction, finality = that moment for
its block minus the moment its 200 came back (client-observed commit → quorum attestation).
The nodes' own ``civic_cluster_finality_seconds`` histograms (commit → quorum, per node) are
printed next to it.

On a 2-core machine the 3 NATS servers, 3 nodes and the load generator share the cores, the
embedded node gets them alone: the ratio is what this box can say, not a deployment figure.

Usage: python bench/cluster.py [--lanes 12] [--txs-per-lane 40] [--block-interval-ms 50]
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from civicledger.ledger.tx import SignedTx
from civicledger.node.cluster.local import LocalCluster, anchor_tx
from civicledger.node.cluster.nats_servers import free_ports

CIVIC = [sys.executable, "-c", "from civicledger.cli.app import main; main()"]


@dataclass
class Run:
    name: str
    txs: int
    seconds: float
    acks: dict[str, tuple[float, int]]
    """tx id → (perf_counter when its 200 arrived, block height)."""
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.txs / self.seconds


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(name: str, lanes: list[list[SignedTx]], urls: list[str]) -> Run:
    """Each lane on its own thread and connection, one request in flight; all must be ``ok``."""
    acks: dict[str, tuple[float, int]] = {}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(len(lanes) + 1)

    def lane(index: int, txs: list[SignedTx]) -> None:
        url = urls[index % len(urls)] + "/api/v1/tx"
        with httpx.Client(timeout=60) as http:
            start_gate.wait()
            for tx in txs:
                sent = time.perf_counter()
                response = http.post(url, params={"wait": "true"}, content=tx.envelope_bytes())
                now = time.perf_counter()
                if response.status_code != 200 or response.json()["receipt"]["status"] != "ok":
                    with lock:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                    return
                with lock:
                    acks[tx.tx_id_hex] = (now, int(response.json()["receipt"]["height"]))
                    latencies.append(now - sent)

    threads = [threading.Thread(target=lane, args=(i, txs)) for i, txs in enumerate(lanes)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{name}: {len(errors)} lanes failed, first: {errors[0]}")
    return Run(name, len(acks), elapsed, acks, latencies)


class FinalityWatcher:
    """Polls a node's cluster status; remembers when each final height was first seen."""

    def __init__(self, url: str, period_s: float = 0.005) -> None:
        self.url = url + "/api/v1/cluster/status"
        self.period_s = period_s
        self.seen: list[tuple[int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FinalityWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def final_at(self, height: int) -> float | None:
        return next((t for h, t in self.seen if h >= height), None)

    def wait_final(self, height: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.final_at(height) is None and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        last = -1
        with httpx.Client(timeout=5) as http:
            while not self._stop.is_set():
                try:
                    final = int(http.get(self.url).json()["final_height"])
                except (httpx.HTTPError, ValueError, KeyError):
                    final = last
                if final > last:
                    self.seen.append((final, time.perf_counter()))
                    last = final
                time.sleep(self.period_s)


def metric_histogram(url: str, name: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram on the node's ``/metrics``; (nan, 0) if absent."""
    text = httpx.get(url + "/metrics", timeout=5).text
    total, count = float("nan"), 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_sum"):
            total = float(line.split()[-1])
        elif line.startswith(f"{name}_count"):
            count = float(line.split()[-1])
    return total, count


def wait_up(url: str, proc: subprocess.Popen[bytes], path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"node at {url} exited at start")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"node at {url} did not answer {path}")


def embedded_run(root: Path, cluster: LocalCluster, lanes: list[list[SignedTx]]) -> Run:
    """The same transactions through one embedded node (no NATS) behind the same API."""
    city = root / "embedded"
    node1 = cluster.node("node-1").root
    city.mkdir()
    shutil.copy(node1 / "genesis.json", city / "genesis.json")
    shutil.copytree(node1 / "keys", city / "keys")
    shutil.copytree(root / "pristine-node-1-data", city / "data")
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    with (city / "node.log").open("ab") as log:
        proc = subprocess.Popen(
            [*CIVIC, "--dir", str(city), "node", "run", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_up(url, proc, "/api/v1/blocks")
        return drive("embedded", lanes, [url])
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, default=12)
    parser.add_argument("--txs-per-lane", type=int, default=40)
    parser.add_argument("--block-interval-ms", type=int, default=50)
    args = parser.parse_args()

    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before the run")
    with tempfile.TemporaryDirectory(prefix="civic-bench-cluster-") as tmp:
        root = Path(tmp)
        cluster = LocalCluster(
            root / "cluster", 3, clerks=args.lanes, block_interval_ms=args.block_interval_ms
        )
        cluster.create()
        shutil.copytree(cluster.node("node-1").root / "data", root / "pristine-node-1-data")
        lanes = [
            [
                anchor_tx(cluster.key(name), cluster.chain_id, nonce, tag="bench")
                for nonce in range(1, args.txs_per_lane + 1)
            ]
            for name in cluster.clerk_names()
        ]
        total = sum(len(lane) for lane in lanes)
        print(f"{total} pre-signed notary anchors: {args.lanes} lanes x {args.txs_per_lane}")

        embedded = embedded_run(root, cluster, lanes)

        cluster.start()
        try:
            watcher = FinalityWatcher(cluster.url("node-1")).start()
            clustered = drive("cluster", lanes, cluster.urls)
            top = max(height for _, height in clustered.acks.values())
            watcher.wait_final(top)
            watcher.stop()
            histograms = {
                name: metric_histogram(cluster.url(name), "civic_cluster_finality_seconds")
                for name in cluster.node_names()
            }
            statuses = cluster.wait_converged(min_height=top)
        finally:
            cluster.stop()

    finality = [
        final - acked
        for acked, height in clustered.acks.values()
        if (final := watcher.final_at(height)) is not None
    ]
    print()
    print(f"{'run':<10} {'tx/s':>8} {'ratio':>7} {'p50 ms':>8} {'p95 ms':>8}")
    for run in (embedded, clustered):
        print(
            f"{run.name:<10} {run.rate:>8.0f} {run.rate / embedded.rate:>7.2f} "
            f"{percentile(run.latencies, 0.5) * 1000:>8.1f} "
            f"{percentile(run.latencies, 0.95) * 1000:>8.1f}"
        )
    print("(tx/s: committed on the node that took the request; ratio: to embedded, same run)")
    print()
    if finality:
        print(
            f"time to finality (200 -> quorum seen at node-1), {len(finality)} txs: "
            f"median {statistics.median(finality) * 1000:.0f} ms, "
            f"p95 {percentile(finality, 0.95) * 1000:.0f} ms, "
            f"= {statistics.median(finality) / percentile(clustered.latencies, 0.5):.2f}x "
            "the median commit latency"
        )
    else:
        print("time to finality: no block became final while watched")
    for name, (seconds, count) in histograms.items():
        mean = seconds / count * 1000 if count else float("nan")
        print(f"  {name} civic_cluster_finality_seconds: {count:.0f} blocks, mean {mean:.0f} ms")
    heads = {(s["height"], s["header_hash"]) for s in statuses.values()}
    print(f"all nodes at the same head: {len(heads) == 1} (height {next(iter(heads))[0]})")


if __name__ == "__main__":
    main()
