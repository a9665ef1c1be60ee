"""API submit throughput from a second process on loopback, against in-process submits.

Both figures come from the same run on the same machine, so the ratio is what to compare:
- the baseline: this process submits N pre-signed wire transactions with
  ``EmbeddedNode.submit_nowait`` from one thread (the same stateless check in the caller's
  thread that the API route does), then waits for every receipt; no server is running;
- the API: a server process runs a fresh city's node and ``create_app`` under uvicorn on
  127.0.0.1; this process is the load generator, posting pre-signed envelopes over several
  keep-alive connections to ``POST /api/v1/tx``, with ``wait=true`` (each answer is a durable
  receipt) and with ``wait=false`` (202 on admission; committed once the signed tree head's
  size says so).

Printed per mode and connection count: committed tx/s, its ratio to the baseline, request
latency p50/p99, and CPU time per transaction in each server thread and in the load generator
(where the time goes). Every receipt is checked ``ok`` and the log size checked against the
count sent. On a 2-core machine the server process (node and HTTP on one GIL) and the load
generator compete for the cores during the API runs; the baseline runs alone.

Usage: python bench/api_submit.py [--txs 6000] [--seconds 5] [--concurrency 1,8,32]
       [--client httpx|raw]
``--client raw`` replaces httpx with a minimal HTTP/1.1 client on asyncio streams, to show how
much of the API figure is the load generator's own cost. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import platform
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import uvicorn

from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.tx import sign_tx
from civicledger.node.embedded import EmbeddedNode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger_throughput import CHAIN_ID, make_city  # bench/ is not a package

WARMUP_TXS = 500
"""Sent (and committed) before any timing, in-process and over the API."""
THREAD_GROUPS = ("civic-http", "civic-producer", "civic-writer", "AnyIO worker", "MainThread")
"""Threads whose CPU time is reported, by name prefix: the uvicorn event loop, the block
producer, the block writer, the threadpool of synchronous routes, and the process's main thread."""


# -- shared helpers ---------------------------------------------------------------------------


def thread_cpu() -> dict[str, float]:
    """CPU seconds so far of this process's live threads, summed by name prefix, plus 'process'."""
    out = {"process": time.process_time()}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        try:
            seconds = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except OSError:
            continue  # the thread ended in between
        group = next((g for g in THREAD_GROUPS if thread.name.startswith(g)), "other")
        out[group] = out.get(group, 0.0) + seconds
    return out


def cpu_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def sign_all(clerks: Sequence[PrivateKey], count: int) -> list[bytes]:
    """Wire envelopes of ``count`` notary anchors; transaction ``i`` is signer ``i % S``'s
    ``i // S + 1``-th, so sending them in order (with fewer in flight than signers) never
    sends a nonce before the one it follows has been admitted."""
    signers = len(clerks)
    expires = int(time.time() * 1000) + 3_600_000
    return [
        sign_tx(
            clerks[i % signers],
            chain_id=CHAIN_ID,
            nonce=i // signers + 1,
            contract="notary",
            method="anchor",
            args={"digest": hashlib.sha256(b"api-doc-%d" % i).hexdigest(), "label": "permit"},
            expires_at=expires,
        ).envelope_bytes()
        for i in range(count)
    ]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- the in-process baseline ------------------------------------------------------------------


@dataclass
class Baseline:
    rate: float
    admit_rate: float
    txs: int
    cpu: dict[str, float]


def in_process_baseline(txs: int, signers: int) -> Baseline:
    with tempfile.TemporaryDirectory(prefix="civic-bench-api-base-") as tmp:
        data, node_key, clerks = make_city(Path(tmp), signers)
        raws = sign_all(clerks, WARMUP_TXS + txs)
        with EmbeddedNode(data, node_key) as node:
            for future in [node.submit_nowait(raw) for raw in raws[:WARMUP_TXS]]:
                future.result()
            cpu_before = thread_cpu()
            start = time.perf_counter()
            futures = [node.submit_nowait(raw) for raw in raws[WARMUP_TXS:]]
            admitted = time.perf_counter() - start
            receipts = [f.result() for f in futures]
            elapsed = time.perf_counter() - start
            cpu = cpu_delta(thread_cpu(), cpu_before)
            size = node.chain.tree_head().tree_head.tree_size
        bad = sum(not r.ok for r in receipts)
        if bad or size != len(raws):
            raise SystemExit(f"baseline: {bad} receipts not ok, log size {size} != {len(raws)}")
        return Baseline(txs / elapsed, txs / admitted, txs, cpu)


# -- the server process -----------------------------------------------------------------------


def server_process(data_dir: str, seed: bytes, conn: Connection) -> None:
    """Run in a spawned process: the node and its API until told to stop (or the parent dies)."""
    with EmbeddedNode(Path(data_dir), PrivateKey.from_seed(seed)) as node:
        with BackgroundServer(create_app(node)) as server:
            conn.send(server.url)
            while True:
                try:
                    message = conn.recv()
                except EOFError:
                    break
                if message == "cpu":
                    conn.send(thread_cpu())
                else:
                    break
        with contextlib.suppress(OSError):  # unless the parent is gone
            conn.send(node.chain.tree_head().tree_head.tree_size)


@dataclass
class Server:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    url: str

    def cpu(self) -> dict[str, float]:
        self.conn.send("cpu")
        cpu: dict[str, float] = self.conn.recv()
        return cpu

    def stop(self) -> int | None:
        """Stop the server and its node; the final log size, or None if it did not answer."""
        size = None
        try:
            self.conn.send("stop")
            if self.conn.poll(30):
                size = self.conn.recv()
        except (OSError, EOFError):
            pass
        self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        self.conn.close()
        return size


def start_server(data_dir: Path, node_key: PrivateKey) -> Server:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    # Not a daemon: a daemon may not start processes, and the node's verify workers
    # (``submit_many``) are processes. It stops when told to, or when its pipe closes.
    process = context.Process(target=server_process, args=(str(data_dir), node_key.seed, theirs))
    process.start()
    theirs.close()
    if ours.poll(60):
        try:
            return Server(process, ours, ours.recv())
        except EOFError:
            pass  # the process died before it listened; its traceback is on stderr
    process.terminate()
    process.join(10)
    ours.close()
    raise SystemExit("the server process did not start")


# -- load generators --------------------------------------------------------------------------

Post = Callable[[bytes], Awaitable[tuple[int, bytes]]]
"""Send one envelope, return (HTTP status, body)."""


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the lightest load we can make,
    to tell the server's cost from httpx's. It assumes what uvicorn sends (Content-Length)."""

    def __init__(self, host: str, port: int, target: str) -> None:
        self.host, self.port = host, port
        self.head = (
            f"POST {target} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            "content-type: application/json\r\ncontent-length: "
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(self.head + b"%d\r\n\r\n" % len(body) + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


@dataclass
class TxSource:
    """The pre-signed transactions, handed out in order across all runs."""

    raws: list[bytes]
    position: int = 0

    def take(self) -> bytes | None:
        if self.position >= len(self.raws):
            return None
        self.position += 1
        return self.raws[self.position - 1]


@dataclass
class RunResult:
    mode: str
    connections: int
    sent: int = 0
    elapsed: float = 0.0
    """From the first request to the last commit (wait=false: seen in the tree head)."""
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    server_cpu: dict[str, float] = field(default_factory=dict)
    client_cpu: float = 0.0


async def tree_size(client: httpx.AsyncClient, url: str) -> int:
    response = await client.get(f"{url}/api/v1/tree-head")
    response.raise_for_status()
    size: int = response.json()["tree_head"]["tree_size"]
    return size


async def api_run(
    url: str,
    source: TxSource,
    *,
    wait: bool,
    connections: int,
    max_txs: int,
    seconds: float,
    committed_before: int,
    client_kind: str,
) -> RunResult:
    """Send up to ``max_txs`` (dispatching for at most ``seconds``) over ``connections``."""
    result = RunResult("wait=true" if wait else "wait=false", connections)
    target = f"/api/v1/tx?wait={'true' if wait else 'false'}"
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    host, port = url.removeprefix("http://").rsplit(":", 1)
    raw_conns = [RawConnection(host, int(port), target) for _ in range(connections)]
    expected_status = 200 if wait else 202
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def worker(index: int, deadline: float) -> None:
            post: Post
            if client_kind == "raw":
                post = raw_conns[index].post
            else:

                async def post(body: bytes) -> tuple[int, bytes]:
                    response = await client.post(
                        url + target, content=body, headers={"content-type": "application/json"}
                    )
                    return response.status_code, response.content

            while result.sent < max_txs and time.perf_counter() < deadline:
                raw = source.take()
                if raw is None:
                    return
                result.sent += 1
                t0 = time.perf_counter()
                status, body = await post(raw)
                result.latencies.append(time.perf_counter() - t0)
                if status != expected_status:
                    result.errors.append(f"HTTP {status}: {body[:200]!r}")
                elif wait and json.loads(body)["receipt"]["status"] != "ok":
                    result.errors.append(f"receipt not ok: {body[:200]!r}")

        cpu_client = time.process_time()
        start = time.perf_counter()
        await asyncio.gather(*(worker(i, start + seconds) for i in range(connections)))
        expected = committed_before + result.sent
        if not wait:
            give_up = time.perf_counter() + 60
            while await tree_size(client, url) < expected:
                if time.perf_counter() > give_up:
                    result.errors.append("wait=false: not all committed within 60 s")
                    break
                await asyncio.sleep(0.01)
        result.elapsed = time.perf_counter() - start
        result.client_cpu = time.process_time() - cpu_client
        size = await tree_size(client, url)
        if size != expected:
            result.errors.append(f"log size {size} != {expected} expected")
    for conn in raw_conns:
        await conn.close()
    return result


async def read_metrics(url: str) -> dict[str, float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    response.raise_for_status()
    out = {}
    for line in response.text.splitlines():
        if line.startswith("civicledger_transactions_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


# -- reporting --------------------------------------------------------------------------------


def per_tx_us(cpu: dict[str, float], key: str, txs: int) -> str:
    return f"{cpu.get(key, 0.0) / txs * 1e6:5.0f}"


def print_layout(server: Server, connections: Sequence[int], client_kind: str) -> None:
    print("process layout:")
    print(
        f"  baseline: this process (pid {os.getpid()}) alone: one submitter thread calling "
        "submit_nowait, the node's producer and writer threads; no server running"
    )
    print(
        f"  API: server process (pid {server.process.pid}): node (producer, writer threads) + "
        f"FastAPI/uvicorn on thread civic-http at {server.url}"
    )
    print(
        f"       load process (pid {os.getpid()}, this one): {client_kind} client, one asyncio "
        f"loop, {'/'.join(map(str, connections))} keep-alive connections"
    )
    print(f"       the two processes share {os.cpu_count()} cores (node and HTTP share one GIL)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=6000, help="per baseline and per API run")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="stop dispatching an API run after this"
    )
    parser.add_argument("--concurrency", default="1,8,32", help="connections, comma-separated")
    parser.add_argument("--signers", type=int, default=400)
    parser.add_argument("--client", choices=("httpx", "raw"), default="httpx")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the server process is stopped and temp dirs removed.
    signal.signal(signal.SIGTERM, _terminated)
    connections = [int(c) for c in args.concurrency.split(",")]
    signers = max(args.signers, 4 * max(connections))  # fewer in flight than signers: see sign_all

    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, uvicorn "
        f"{uvicorn.__version__} ({'httptools' if _has('httptools') else 'h11'}, "
        f"{'uvloop' if _has('uvloop') else 'asyncio'} loop), httpx {httpx.__version__}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes take cores too)")
    base_before = in_process_baseline(args.txs, signers)
    print_baseline("before the API runs", base_before)

    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="civic-bench-api-") as tmp:
        data, node_key, clerks = make_city(Path(tmp), signers)
        sign_start = time.perf_counter()
        source = TxSource(sign_all(clerks, WARMUP_TXS + 2 * len(connections) * args.txs))
        print(
            f"signed {len(source.raws)} transactions for the API runs (not timed) in "
            f"{time.perf_counter() - sign_start:.1f} s"
        )
        server = start_server(data, node_key)
        final_size = None
        try:
            print_layout(server, connections, args.client)
            committed = 0
            warm = asyncio.run(
                api_run(
                    server.url,
                    source,
                    wait=False,
                    connections=8,
                    max_txs=WARMUP_TXS,
                    seconds=60,
                    committed_before=0,
                    client_kind=args.client,
                )
            )
            committed += warm.sent
            if warm.errors:
                raise SystemExit(f"warm-up failed: {warm.errors[:3]}")
            for wait in (True, False):
                for conns in connections:
                    cpu_before = server.cpu()
                    run = asyncio.run(
                        api_run(
                            server.url,
                            source,
                            wait=wait,
                            connections=conns,
                            max_txs=args.txs,
                            seconds=args.seconds,
                            committed_before=committed,
                            client_kind=args.client,
                        )
                    )
                    run.server_cpu = cpu_delta(server.cpu(), cpu_before)
                    committed += run.sent
                    results.append(run)
                    if run.errors:
                        print(f"  {run.mode} x{conns}: {len(run.errors)} errors: {run.errors[:3]}")
            metrics = asyncio.run(read_metrics(server.url))
        finally:
            final_size = server.stop()

    base_after = in_process_baseline(args.txs, signers)
    print_baseline("after the API runs", base_after)
    base = (base_before.rate + base_after.rate) / 2
    print(
        f"load average after: {os.getloadavg()[0]:.2f}; baseline for the ratios (the mean): "
        f"{base:,.0f} tx/s"
    )
    print_results(base, results)
    ok = metrics.get('civicledger_transactions_committed_total{status="ok"}', 0)
    failed = metrics.get('civicledger_transactions_committed_total{status="failed"}', 0)
    rejected = sum(v for k, v in metrics.items() if "rejected_total" in k)
    sent = WARMUP_TXS + sum(r.sent for r in results)
    errors = sum(len(r.errors) for r in results)
    verdict = (
        "all committed ok"
        if ok == sent == final_size and not failed and not rejected and not errors
        else "MISMATCH"
    )
    print(
        f"check: sent {sent} over the API; server metrics: {ok:.0f} ok, {failed:.0f} failed, "
        f"{rejected:.0f} rejected; final log size {final_size}; {errors} errors: {verdict}"
    )
    if verdict != "all committed ok":
        raise SystemExit(1)


def print_baseline(when: str, base: Baseline) -> None:
    cpu = base.cpu
    print(
        f"in-process baseline, {when}: {base.rate:,.0f} tx/s committed ({base.txs} txs, all "
        f"ok, log size checked); submit_nowait alone admitted {base.admit_rate:,.0f} tx/s; "
        f"CPU µs/tx: submitter {per_tx_us(cpu, 'MainThread', base.txs).strip()}, producer "
        f"{per_tx_us(cpu, 'civic-producer', base.txs).strip()}, writer "
        f"{per_tx_us(cpu, 'civic-writer', base.txs).strip()}, process "
        f"{per_tx_us(cpu, 'process', base.txs).strip()}"
    )


def print_results(base: float, results: Sequence[RunResult]) -> None:
    print(
        "\nmode        conns   txs    tx/s  ratio  lat p50  lat p99 | server CPU µs/tx: "
        "http  prod  writ  proc | client µs/tx"
    )
    for r in results:
        if not r.sent:
            continue
        lat = sorted(r.latencies)
        rate = r.sent / r.elapsed
        cpu = r.server_cpu
        print(
            f"{r.mode:<11} {r.connections:>5} {r.sent:>5} {rate:>7,.0f} {rate / base:>6.2f}"
            f" {percentile(lat, 0.5) * 1e3:>6.1f}ms {percentile(lat, 0.99) * 1e3:>6.1f}ms |"
            f"                  {per_tx_us(cpu, 'civic-http', r.sent)} "
            f"{per_tx_us(cpu, 'civic-producer', r.sent)} {per_tx_us(cpu, 'civic-writer', r.sent)} "
            f"{per_tx_us(cpu, 'process', r.sent)} | {r.client_cpu / r.sent * 1e6:>6.0f}"
        )
    print(
        "ratio = API committed tx/s / in-process committed tx/s. wait=true: one request in "
        "flight per connection, so tx/s <= connections / latency. wait=false: tx/s counts until "
        "the tree head shows every transaction committed; latency is the 202's."
    )
    stalled = [r for r in results if r.mode == "wait=false" and r.connections == 1 and r.latencies]
    if stalled and statistics.median(stalled[0].latencies) > 0.03:
        print(
            "note: an admission-only request takes > 30 ms on one connection: that is Nagle's "
            "algorithm meeting the client's delayed ACK (the server's sockets lack TCP_NODELAY); "
            "see docs/benchmarks.md"
        )


def _terminated(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
