"""Real ``nats-server`` processes on loopback, for trials, fault tests and benches.

``NatsCluster`` writes one configuration file per server, starts each as its own process (the PID
recorded is the server's own, never a shell's), and waits until JetStream has a meta leader, so a
caller can create replicated streams at once. Ports are free ports chosen by binding to port 0
(the defaults 4222/6222/8222 may belong to someone else) and are kept for the cluster's life, so
a restarted server comes back at the same address and rejoins its routes.

Invariants:
- every server in ``names()`` has a configuration file, a store directory and fixed ports;
- a server is *running* when its ``Popen`` has not exited; ``stop()`` leaves none running;
- nothing here reads or writes a ledger: this is process plumbing only.

Debian's ``nats-server`` 2.9.10 rejects ``sync_interval: always``, so the default fsync policy is
used; a JetStream acknowledgement is therefore never finality (see ``docs/cluster.md``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from civicledger.errors import NodeError

__all__ = ["NatsCluster", "NatsServerMissing", "find_nats_server", "free_ports"]

_START_TIMEOUT_S = 30.0
_POLL_S = 0.1
_RESERVED_PORTS = frozenset({4222, 6222, 8222})


class NatsServerMissing(NodeError):  # noqa: N818  (reads as the condition: "nats-server missing")
    """``nats-server`` is not on ``PATH`` (nor in ``/usr/sbin``)."""

    reason = "nats_missing"


def find_nats_server() -> str:
    """The path of the ``nats-server`` executable; raises ``NatsServerMissing`` when absent."""
    found = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin:/usr/bin")
    if found is None:
        raise NatsServerMissing("nats-server not installed: apt-get install nats-server")
    return found


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the kernel reports free now (bound to port 0, then released).

    The sockets are held open until all ports are picked, so no two are the same; the defaults of
    NATS are skipped even if free, since another engineer's server may be about to take them.
    """
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
            port = int(s.getsockname()[1])
            if port not in _RESERVED_PORTS:
                ports.append(port)
    finally:
        for s in sockets:
            s.close()
    return ports


@dataclass
class _Server:
    """One server's fixed identity (name, ports, paths) and its current process, if any."""

    name: str
    client_port: int
    http_port: int
    cluster_port: int
    conf: Path
    store: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class NatsCluster:
    """``size`` JetStream servers on ``host`` under ``root``; ``size == 1`` is one plain server."""

    def __init__(self, root: Path, size: int = 3, *, host: str = "127.0.0.1") -> None:
        if size < 1:
            raise ValueError("a NATS cluster has at least one server")
        self.root = Path(root)
        self.size = size
        self.host = host
        self.cluster_name = "civic"
        ports = free_ports(3 * size, host)
        self._servers: dict[str, _Server] = {}
        for i in range(size):
            name = f"nats-{i + 1}"
            base = self.root / name
            self._servers[name] = _Server(
                name=name,
                client_port=ports[3 * i],
                http_port=ports[3 * i + 1],
                cluster_port=ports[3 * i + 2],
                conf=base / "nats.conf",
                store=base / "jetstream",
                log=base / "nats.log",
            )
        self._binary: str | None = None

    # -- addresses -----------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """Client URLs, one per server, in ``names()`` order."""
        return [f"nats://{self.host}:{s.client_port}" for s in self._servers.values()]

    def names(self) -> list[str]:
        return list(self._servers)

    def url(self, name: str) -> str:
        return f"nats://{self.host}:{self._server(name).client_port}"

    def monitor_url(self, name: str) -> str:
        return f"http://{self.host}:{self._server(name).http_port}"

    def pid(self, name: str) -> int | None:
        """The server process's own PID, or None when it is not started."""
        return self._server(name).pid

    def running(self, name: str) -> bool:
        return self._server(name).running()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Write configurations, start every server, wait until JetStream has a meta leader."""
        self._binary = find_nats_server()
        for server in self._servers.values():
            self._write_conf(server)
        try:
            for server in self._servers.values():
                self._spawn(server)
            self._wait_ready(list(self._servers.values()))
        except BaseException:
            self.stop()
            raise

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the server's own process; wait for it to exit if the signal ends it."""
        server = self._server(name)
        if not server.running():
            return
        assert server.proc is not None
        server.proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(timeout=15)
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(timeout=15)

    def restart(self, name: str) -> None:
        """Start the server again (killing it first if it is still there, even stopped)."""
        server = self._server(name)
        if server.running():
            assert server.proc is not None
            server.proc.send_signal(signal.SIGCONT)
            self.kill(name, signal.SIGKILL)
        self._spawn(server)
        self._wait_ready([server])

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL after a grace period)."""
        for server in self._servers.values():
            if server.running():
                assert server.proc is not None
                with contextlib.suppress(ProcessLookupError):
                    server.proc.send_signal(signal.SIGCONT)
                    server.proc.terminate()
        deadline = time.monotonic() + 10
        for server in self._servers.values():
            if server.proc is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(timeout=10)

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

    # -- JetStream view ------------------------------------------------------------------------

    def jsz(self, name: str, **params: str) -> dict[str, Any]:
        """The server's ``/jsz`` monitoring document (raises ``httpx.HTTPError`` when down)."""
        response = httpx.get(f"{self.monitor_url(name)}/jsz", params=params, timeout=2.0)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def meta_leader(self) -> str | None:
        """The JetStream meta leader as some running server sees it (None if none is known)."""
        if self.size == 1:
            only = self.names()[0]
            return only if self.running(only) else None
        for name in self.names():
            if not self.running(name):
                continue
            try:
                leader = self.jsz(name).get("meta_cluster", {}).get("leader")
            except (httpx.HTTPError, ValueError):
                continue
            if leader:
                return str(leader)
        return None

    def stream_leader(self, stream: str, *, timeout: float = 15.0) -> str:
        """The name of the server leading ``stream`` (waits up to ``timeout`` for an election)."""
        deadline = time.monotonic() + timeout
        while True:
            leader = self._stream_leader_once(stream)
            if leader is not None:
                return leader
            if time.monotonic() > deadline:
                raise NodeError(f"no leader for stream {stream} within {timeout:.0f} s")
            time.sleep(_POLL_S)

    def _stream_leader_once(self, stream: str) -> str | None:
        for name in self.names():
            if not self.running(name):
                continue
            try:
                doc = self.jsz(name, accounts="true", streams="true")
            except (httpx.HTTPError, ValueError):
                continue
            for account in doc.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") != stream:
                        continue
                    if self.size == 1:
                        return name
                    leader = (detail.get("cluster") or {}).get("leader")
                    if leader and self.running(str(leader)):
                        return str(leader)
        return None

    # -- internals -----------------------------------------------------------------------------

    def _server(self, name: str) -> _Server:
        try:
            return self._servers[name]
        except KeyError:
            raise NodeError(f"no NATS server named {name!r}") from None

    def _write_conf(self, server: _Server) -> None:
        server.store.mkdir(parents=True, exist_ok=True)
        lines = [
            f"server_name: {server.name}",
            f"listen: {self.host}:{server.client_port}",
            f"http: {self.host}:{server.http_port}",
            f'pid_file: "{server.conf.parent / "nats.pid"}"',
            "jetstream {",
            f'  store_dir: "{server.store}"',
            "}",
        ]
        if self.size > 1:
            routes = ", ".join(
                f"nats-route://{self.host}:{other.cluster_port}"
                for other in self._servers.values()
                if other.name != server.name
            )
            lines += [
                "cluster {",
                f"  name: {self.cluster_name}",
                f"  listen: {self.host}:{server.cluster_port}",
                "  no_advertise: true",
                f"  routes: [{routes}]",
                "}",
            ]
        server.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _spawn(self, server: _Server) -> None:
        binary = self._binary or find_nats_server()
        with server.log.open("ab") as log:
            server.proc = subprocess.Popen(  # noqa: S603  (a fixed executable and our own config)
                [binary, "-c", str(server.conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ},
            )

    def _wait_ready(self, servers: list[_Server]) -> None:
        """Wait until each server answers ``/healthz`` and (clustered) sees a meta leader."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        pending = list(servers)
        while pending:
            server = pending[0]
            if not server.running():
                raise NodeError(
                    f"nats-server {server.name} exited at start; see {server.log}: "
                    + _tail(server.log)
                )
            if self._ready(server):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise NodeError(f"nats-server {server.name} not ready in time; see {server.log}")
            time.sleep(_POLL_S)

    def _ready(self, server: _Server) -> bool:
        try:
            health = httpx.get(f"{self.monitor_url(server.name)}/healthz", timeout=1.0)
            if health.status_code != 200:
                return False
            if self.size == 1:
                return True
            leader = self.jsz(server.name).get("meta_cluster", {}).get("leader")
        except (httpx.HTTPError, ValueError):
            return False
        return bool(leader)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
