"""A trial cluster on one machine: 3 NATS servers and N ``civic node run --cluster`` processes.

``LocalCluster`` is what ``civic cluster up``, the fault tests and ``bench/cluster.py`` share. It
lays out a directory::

    <root>/
      local-cluster.json   the manifest: chain id, node names, ports (``civic cluster status``)
      city/                genesis.json and the client keys (``root``, ``city-hall`` and its
                           ``clerk-NN`` keys, all with role ``notary``); no ledger
      nats/                the NATS servers' configurations, stores and logs
      node-1/ ... node-N/  one city directory per node: genesis.json, keys/node (its own key,
                           a genesis producer), data/ledger.sqlite, cluster.json, node.log

Every node's genesis block is the same bytes: node-1's key signs block 0 and the others start
from that block (``Chain.create_from_genesis_block``), as a joining agency would.

Invariants:
- each node process is started by this object and its own PID is recorded; nothing else is
  signalled (no process-group or name-based kills);
- the ports of the nodes are fixed once created (``--port-base`` or free ports), so a restarted
  node answers at the same URL; the NATS servers' ports are chosen again at each ``start``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, NodeError
from civicledger.keystore import Keystore
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.tx import SignedTx, expiry_from_now, sign_tx
from civicledger.node.chain import DB_NAME, Chain
from civicledger.node.cluster.config import ClusterConfig
from civicledger.node.cluster.nats_servers import NatsCluster, free_ports

__all__ = [
    "CITY_HALL",
    "Lane",
    "LaneError",
    "Load",
    "LocalCluster",
    "LocalNode",
    "anchor_tx",
    "read_manifest",
]

MANIFEST = "local-cluster.json"
CITY_HALL = "city-hall"
"""The trial city's one agency (role ``notary``), whose key signs the trial transactions."""
ROOT = "root"
_NODE_KEY = "node"
_READY_TIMEOUT_S = 60.0
_STATUS_PATH = "/api/v1/cluster/status"
_CIVIC = (sys.executable, "-c", "from civicledger.cli.app import main; main()")
"""The ``civic`` command of this interpreter (no reliance on ``PATH``)."""


@dataclass
class LocalNode:
    """One node of the trial cluster: its directory, port and (when running) its process."""

    name: str
    root: Path
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.root / "cluster.json"

    @property
    def db_path(self) -> Path:
        return self.root / "data" / DB_NAME

    @property
    def log_path(self) -> Path:
        return self.root / "node.log"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LocalCluster:
    """N agency nodes over a 3-server NATS cluster, all on loopback, under ``root``."""

    def __init__(
        self,
        root: Path,
        nodes: int = 3,
        *,
        nats_size: int = 3,
        port_base: int | None = None,
        quorum: int | None = None,
        block_interval_ms: int = 100,
        max_block_txs: int = 2000,
        stream_max_msgs: int = -1,
        host: str = "127.0.0.1",
        city: str = "Trial City",
        chain_id: str = "trial-1",
        clerks: int = 16,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.root = Path(root)
        self.host = host
        self.nats = NatsCluster(self.root / "nats", nats_size, host=host)
        self.quorum = quorum
        self.block_interval_ms = block_interval_ms
        self.max_block_txs = max_block_txs
        self.stream_max_msgs = stream_max_msgs
        self.city = city
        self.chain_id = chain_id
        self.clerks = clerks
        manifest = self._read_manifest()
        if manifest is not None:
            self.chain_id = str(manifest["chain_id"])
            self.clerks = int(manifest.get("clerks", 0))
            ports = [int(n["port"]) for n in manifest["nodes"]]
        elif port_base is not None:
            ports = list(range(port_base, port_base + nodes))
        else:
            ports = free_ports(nodes, host)
        self.nodes: dict[str, LocalNode] = {
            f"node-{i + 1}": LocalNode(f"node-{i + 1}", self.root / f"node-{i + 1}", port, host)
            for i, port in enumerate(ports)
        }

    # -- layout --------------------------------------------------------------------------------

    @property
    def city_dir(self) -> Path:
        return self.root / "city"

    @property
    def genesis(self) -> Genesis:
        return Genesis.load(self.city_dir / "genesis.json")

    def key(self, name: str = CITY_HALL) -> PrivateKey:
        """A client key of the trial city (``city-hall`` has the ``notary`` role; ``root``)."""
        return Keystore(self.city_dir / "keys").load(name)

    def clerk_names(self) -> list[str]:
        """Extra keys of city hall (role ``notary``), one per concurrent load lane."""
        return [f"clerk-{i + 1:02d}" for i in range(self.clerks)]

    def node_names(self) -> list[str]:
        return list(self.nodes)

    def url(self, name: str) -> str:
        return self._node(name).url

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes.values()]

    def node(self, name: str) -> LocalNode:
        return self._node(name)

    def created(self) -> bool:
        return (self.root / MANIFEST).is_file()

    def create(self) -> None:
        """Keys, genesis (every node a producer) and each node's block 0; once per directory."""
        if self.created():
            return
        if (self.root / "city").exists():
            raise CivicError(
                f"{self.root} holds a partial cluster; remove it", reason="city_exists"
            )
        node_keys = {name: PrivateKey.generate() for name in self.nodes}
        root_key, hall_key = PrivateKey.generate(), PrivateKey.generate()
        clerk_keys = {name: PrivateKey.generate() for name in self.clerk_names()}
        genesis = Genesis.model_validate(
            {
                "chain_id": self.chain_id,
                "city": self.city,
                "time_ms": int(time.time() * 1000),
                "root_authorities": (root_key.public.did,),
                "producers": tuple(k.public.did for k in node_keys.values()),
                "agencies": (
                    {
                        "id": CITY_HALL,
                        "name": f"{self.city} City Hall",
                        "keys": (
                            hall_key.public.did,
                            *(k.public.did for k in clerk_keys.values()),
                        ),
                        "roles": ("notary",),
                    },
                ),
            },
            strict=False,
        )
        genesis_bytes = genesis.canonical_bytes() + b"\n"
        self.city_dir.mkdir(parents=True, exist_ok=True)
        (self.city_dir / "genesis.json").write_bytes(genesis_bytes)
        city_keys = Keystore(self.city_dir / "keys")
        city_keys.create(ROOT, seed=root_key.seed)
        city_keys.create(CITY_HALL, seed=hall_key.seed)
        for name, key in clerk_keys.items():
            city_keys.create(name, seed=key.seed)
        first = next(iter(self.nodes))
        block0 = None
        for name, node in self.nodes.items():
            node.root.mkdir(parents=True, exist_ok=True)
            (node.root / "genesis.json").write_bytes(genesis_bytes)
            Keystore(node.root / "keys").create(_NODE_KEY, seed=node_keys[name].seed)
            if name == first:
                chain = Chain.create(node.root / "data", genesis, node_keys[name])
                block0 = (chain.block(0), chain.tree_head(0))
                chain.close()
                continue
            assert block0 is not None
            assert block0[0] is not None
            Chain.create_from_genesis_block(
                node.root / "data", genesis, block0[0], block0[1]
            ).close()
        self._write_manifest()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, *, wait: bool = True) -> None:
        """Create if needed, start NATS and every node, and wait until each answers its status."""
        self.create()
        try:
            self.nats.start()
            self._write_configs()
            for name in self.nodes:
                self.start_node(name, wait=False)
            if wait:
                for name in self.nodes:
                    self.wait_ready(name)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node (SIGTERM, SIGKILL after a grace period), then the NATS servers."""
        for name in self.nodes:
            self.stop_node(name)
        self.nats.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start_node(self, name: str, *, wait: bool = True) -> None:
        """Start the node's ``civic node run --cluster`` process (it must not be running)."""
        node = self._node(name)
        if node.running():
            raise NodeError(f"{name} is already running (pid {node.pid})")
        command = [
            *_CIVIC,
            "--dir",
            str(node.root),
            "node",
            "run",
            "--cluster",
            str(node.config_path),
            "--host",
            self.host,
            "--port",
            str(node.port),
            "--public-url",
            node.url,
        ]
        with node.log_path.open("ab") as log:
            node.proc = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if wait:
            self.wait_ready(name)

    def stop_node(self, name: str) -> None:
        node = self._node(name)
        if not node.running():
            return
        assert node.proc is not None
        with contextlib.suppress(ProcessLookupError):
            node.proc.send_signal(signal.SIGCONT)
            node.proc.terminate()
        try:
            node.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait(timeout=15)

    def repair(self, name: str, source: str) -> str:
        """Run ``civic node repair --from <source's URL>`` for the STOPPED node ``name``.

        Returns the command's output; raises ``NodeError`` with it when the repair fails.
        """
        node, peer = self._node(name), self._node(source)
        if node.running():
            raise NodeError(f"stop {name} before repairing it")
        done = subprocess.run(  # noqa: S603  (our own interpreter and arguments)
            [
                *_CIVIC,
                "--dir",
                str(node.root),
                "node",
                "repair",
                "--from",
                peer.url,
                "--cluster",
                str(node.config_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        if done.returncode != 0:
            raise NodeError(f"repair of {name} from {source} failed: {output.strip()}")
        return output

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the node's own process; wait for it to end if the signal ends it."""
        node = self._node(name)
        if not node.running():
            raise NodeError(f"{name} is not running")
        assert node.proc is not None
        node.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            node.proc.wait(timeout=30)

    def pause(self, name: str) -> None:
        """SIGSTOP: the process keeps its sockets and state but runs nothing."""
        self.kill(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.kill(name, signal.SIGCONT)

    def restart(self, name: str, *, wait: bool = True) -> None:
        """Kill the node if it runs, then start it again at the same port."""
        node = self._node(name)
        if node.running():
            assert node.proc is not None
            node.proc.send_signal(signal.SIGCONT)
            self.kill(name, signal.SIGKILL)
        self.start_node(name, wait=wait)

    def wait_ready(self, name: str, timeout: float = _READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait until the node answers ``GET /api/v1/cluster/status`` (any ``serving``)."""
        node = self._node(name)
        deadline = time.monotonic() + timeout
        while True:
            if not node.running():
                raise NodeError(f"{name} exited; see {node.log_path}: {_tail(node.log_path)}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = httpx.get(node.url + _STATUS_PATH, timeout=2.0)
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
            if time.monotonic() > deadline:
                raise NodeError(f"{name} did not answer {_STATUS_PATH} in {timeout:.0f} s")
            time.sleep(0.2)

    # -- views ---------------------------------------------------------------------------------

    def status(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        """The node's ``/api/v1/cluster/status`` document (raises ``httpx.HTTPError``)."""
        response = httpx.get(self.url(name) + _STATUS_PATH, timeout=timeout)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def statuses(self) -> dict[str, dict[str, Any] | None]:
        """Every node's status, None for a node that does not answer."""
        result: dict[str, dict[str, Any] | None] = {}
        for name in self.nodes:
            try:
                result[name] = self.status(name, timeout=2.0)
            except (httpx.HTTPError, ValueError):
                result[name] = None
        return result

    def wait_converged(
        self, names: list[str] | None = None, *, min_height: int = 0, timeout: float = 60.0
    ) -> dict[str, dict[str, Any]]:
        """Wait until the named nodes (default: all running) report the same height, header hash
        and state hash, at least ``min_height``; returns their statuses."""
        chosen = names or [n for n, node in self.nodes.items() if node.running()]
        deadline = time.monotonic() + timeout
        last: dict[str, dict[str, Any] | None] = {}
        while True:
            last = {name: self._status_or_none(name) for name in chosen}
            seen = {
                (s["height"], s["header_hash"], s["state_hash"])
                for s in last.values()
                if s is not None
            }
            if None not in last.values() and len(seen) == 1:
                height = next(iter(seen))[0]
                if height >= min_height:
                    return {k: v for k, v in last.items() if v is not None}
            if time.monotonic() > deadline:
                raise NodeError(f"nodes did not converge in {timeout:.0f} s: {_brief(last)}")
            time.sleep(0.25)

    def committed_tx_ids(self, name: str) -> list[str]:
        """Every committed tx id in the node's ledger, read from its SQLite file (read-only)."""
        uri = f"file:{self._node(name).db_path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT tx_id FROM txs ORDER BY leaf_index").fetchall()
        finally:
            conn.close()
        return [bytes(row[0]).hex() for row in rows]

    def corrupt_state(self, name: str, key: str, value: bytes | None = None) -> None:
        """Alter one state entry of a STOPPED node's ledger behind the chain's back.

        ``value`` None deletes the entry. The state hash is a chain over write-sets, so nothing
        shows until a later transaction reads that entry: its outcome then differs on this node
        only, and so do the block's log root and state hash.
        """
        node = self._node(name)
        if node.running():
            raise NodeError(f"stop {name} before corrupting its database")
        conn = sqlite3.connect(node.db_path, timeout=10)
        try:
            with conn:
                if value is None:
                    changed = conn.execute("DELETE FROM state WHERE key = ?", (key,)).rowcount
                else:
                    changed = conn.execute(
                        "UPDATE state SET value = ? WHERE key = ?", (value, key)
                    ).rowcount
        finally:
            conn.close()
        if changed != 1:
            raise NodeError(f"{name} has no state entry {key!r}")

    def nats_urls_for(self, index: int) -> list[str]:
        """The NATS URLs with server ``index`` (mod size) first: each node prefers its own."""
        urls = self.nats.urls
        start = index % len(urls)
        return urls[start:] + urls[:start]

    # -- internals -----------------------------------------------------------------------------

    def _node(self, name: str) -> LocalNode:
        try:
            return self.nodes[name]
        except KeyError:
            raise NodeError(f"no node named {name!r} in {self.root}") from None

    def _status_or_none(self, name: str) -> dict[str, Any] | None:
        try:
            return self.status(name, timeout=2.0)
        except (httpx.HTTPError, ValueError):
            return None

    def _write_configs(self) -> None:
        replicas = 3 if self.nats.size >= 3 else 1
        for index, (name, node) in enumerate(self.nodes.items()):
            config = ClusterConfig(
                nats_urls=self.nats_urls_for(index),
                replicas=replicas,
                quorum=self.quorum,
                block_interval_ms=self.block_interval_ms,
                max_block_txs=self.max_block_txs,
                stream_max_msgs=self.stream_max_msgs,
                node_key=_NODE_KEY,
                peers=[other.url for other_name, other in self.nodes.items() if other_name != name],
            )
            node.config_path.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")

    def _read_manifest(self) -> dict[str, Any] | None:
        path = self.root / MANIFEST
        if not path.is_file():
            return None
        try:
            manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise NodeError(f"unreadable {path}: {e}") from e
        return manifest

    def _write_manifest(self) -> None:
        manifest = {
            "chain_id": self.chain_id,
            "clerks": self.clerks,
            "nodes": [
                {"name": n.name, "port": n.port, "url": n.url, "dir": str(n.root)}
                for n in self.nodes.values()
            ],
        }
        (self.root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of the trial cluster in ``root`` (for ``civic cluster status``)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise CivicError(
            f"no local cluster at {root}; start one with `civic cluster up`", reason="no_cluster"
        )
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def _brief(statuses: dict[str, dict[str, Any] | None]) -> str:
    parts = []
    for name, s in statuses.items():
        if s is None:
            parts.append(f"{name}=down")
        else:
            parts.append(
                f"{name}=h{s.get('height')}/{str(s.get('header_hash'))[:8]}"
                f"/{str(s.get('state_hash'))[:8]}"
            )
    return ", ".join(parts)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.splitlines()[-lines:])


# -- trial load ----------------------------------------------------------------------------------


class LaneError(NodeError):
    """A trial transaction could not be brought to a receipt (refused, or no node answered)."""

    reason = "lane_failed"


def anchor_tx(key: PrivateKey, chain_id: str, nonce: int, *, tag: str = "") -> SignedTx:
    """A notary ``anchor`` of a digest made from signer, nonce and ``tag`` (no randomness)."""
    digest = sha256(f"{key.public.did}/{tag}/{nonce}".encode()).hex()
    return sign_tx(
        key,
        chain_id=chain_id,
        nonce=nonce,
        contract="notary",
        method="anchor",
        args={"digest": digest, "label": f"trial {tag} {nonce}"},
        expires_at=expiry_from_now(600),
    )


@dataclass
class Lane:
    """One signer submitting its transactions one at a time, each until it has a receipt.

    A transaction is sent to the next node in ``urls`` (which the caller may change while the
    lane runs); when a node fails or answers "pending", the SAME signed transaction is looked up
    and sent again elsewhere, so a nonce is never skipped and nothing is signed twice. ``acked``
    holds the tx ids that came back with a receipt, in order.
    """

    key: PrivateKey
    chain_id: str
    urls: list[str]
    tag: str = ""
    nonce: int = 0
    timeout_s: float = 90.0
    request_timeout_s: float = 10.0
    acked: list[str] = field(default_factory=list)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _turn: int = 0

    def send_next(self) -> dict[str, Any]:
        self.nonce += 1
        return self.send(anchor_tx(self.key, self.chain_id, self.nonce, tag=self.tag))

    def send(self, tx: SignedTx) -> dict[str, Any]:
        """Bring ``tx`` to a receipt through any node; raises ``LaneError`` when impossible."""
        tx_id = tx.tx_id_hex
        envelope = tx.envelope_bytes()
        deadline = time.monotonic() + self.timeout_s
        last = "no node tried"
        with httpx.Client(timeout=self.request_timeout_s) as http:
            while time.monotonic() < deadline:
                urls = list(self.urls)
                url = urls[self._turn % len(urls)]
                self._turn += 1
                try:
                    response = http.post(
                        url + "/api/v1/tx", params={"wait": "true"}, content=envelope
                    )
                    if response.status_code == 200:
                        return self._acked(tx_id, response.json()["receipt"])
                    last = f"{url}: {response.status_code} {response.text[:200]}"
                    if response.status_code in (400, 403, 413, 422):
                        raise LaneError(f"tx {tx_id} refused: {last}")
                    found = self._lookup(http, urls, tx_id)
                    if found is not None:
                        return self._acked(tx_id, found)
                except httpx.HTTPError as e:
                    last = f"{url}: {type(e).__name__}"
                time.sleep(0.2)
        raise LaneError(f"tx {tx_id} has no receipt after {self.timeout_s:.0f} s; last: {last}")

    def _acked(self, tx_id: str, receipt: dict[str, Any]) -> dict[str, Any]:
        self.acked.append(tx_id)
        self.receipts[tx_id] = receipt
        return receipt

    @staticmethod
    def _lookup(http: httpx.Client, urls: list[str], tx_id: str) -> dict[str, Any] | None:
        for url in urls:
            try:
                response = http.get(f"{url}/api/v1/tx/{tx_id}", timeout=3.0)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                leaf: dict[str, Any] = response.json()
                receipt: dict[str, Any] = leaf["receipt"]
                return receipt
        return None


class Load:
    """Several lanes on threads, until ``stop()``: the trial load of the fault tests."""

    def __init__(self, lanes: list[Lane]) -> None:
        self.lanes = lanes
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(lane,), daemon=True) for lane in lanes
        ]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 120.0) -> None:
        """Let each lane finish the transaction in flight, then join (errors are kept)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)

    def set_urls(self, urls: list[str]) -> None:
        for lane in self.lanes:
            lane.urls = list(urls)

    @property
    def acked(self) -> list[str]:
        return [tx_id for lane in self.lanes for tx_id in lane.acked]

    def wait_acked(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            if self.errors:
                raise self.errors[0]
            if time.monotonic() > deadline:
                raise NodeError(f"only {len(self.acked)} of {count} transactions acknowledged")
            time.sleep(0.1)

    def _run(self, lane: Lane) -> None:
        while not self._stop.is_set():
            try:
                lane.send_next()
            except Exception as e:  # noqa: BLE001  (kept and re-raised by the test)
                self.errors.append(e)
                return
