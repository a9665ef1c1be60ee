"""Serving an app with uvicorn: in the foreground (``civic node run``) or on a thread (tests,
benchmarks, ``civic demo``), with limits so that slow or idle clients cannot pile up.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI

from civicledger.errors import NodeError

MAX_CONNECTIONS = 1000
"""Concurrent connections (including live-event streams) before uvicorn answers 503."""
KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 64 * 1024
BACKLOG = 2048


def server_config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    options.setdefault("log_level", "warning")
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=5,
        server_header=False,
        **options,
    )


def listen(host: str, port: int, *, any_port_if_taken: bool = False) -> socket.socket:
    """A bound listening socket; with ``any_port_if_taken``, a free port if ``port`` is in use."""
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says so. Without it every response waited ~40 ms for a delayed ACK,
    # because uvicorn writes headers and body separately (measured in bench/api_submit.py).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind((host, port))
        except OSError:
            if not any_port_if_taken or port == 0:
                raise
            sock.bind((host, 0))
    except OSError as e:
        sock.close()
        raise NodeError(f"cannot listen on {host}:{port}: {e.strerror}") from e
    # Listening now, not when uvicorn starts: a client given the URL early waits in the backlog
    # instead of being refused.
    sock.listen(BACKLOG)
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


def serve(app: FastAPI, sock: socket.socket, **options: Any) -> None:
    """Serve on ``sock`` in the foreground until interrupted (Ctrl-C or SIGTERM)."""
    host, port = sock.getsockname()[:2]
    try:
        uvicorn.Server(server_config(app, host, port, **options)).run(sockets=[sock])
    finally:
        sock.close()


class BackgroundServer:
    """Serve ``app`` on a thread; ``port=0`` picks a free port. A context manager."""

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
    ) -> None:
        """Listen on ``host:port``, or on ``sock`` if given (the server closes it when done)."""
        self._sock = sock or listen(host, port)
        self._app = app
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(server_config(app, self.host, self.port))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="civic-http"
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise NodeError(f"the HTTP server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        for hook in getattr(self._app.state, "before_shutdown", ()):
            hook()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join()
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
