"""Helpers for the API suites: a test city served over real HTTP, and an SSE line reader.

Not a conftest.py (see tests/cli/cli_helpers.py): imported by its unique name.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.api.settings import ApiSettings
from civicledger.node.embedded import EmbeddedNode
from conftest import City

PROBLEM = "application/problem+json"


@dataclass
class Served:
    city: City
    node: EmbeddedNode
    app: FastAPI
    url: str
    http: httpx.Client

    @property
    def subscribers(self) -> int:
        """Live-event subscribers connected now."""
        return int(self.app.state.events.subscriber_count)


@contextmanager
def serve_city(
    city: City, settings: ApiSettings | None = None, **node_options: Any
) -> Iterator[Served]:
    with city.open_node(**node_options) as node:
        app = create_app(node, settings)
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, timeout=30) as http,
        ):
            yield Served(city, node, app, server.url, http)


def assert_problem(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """An RFC 9457 problem with this status and reason."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    problem = response.json()
    assert problem["status"] == status
    assert problem["reason"] == reason, problem
    assert problem["type"].endswith("/" + reason)
    assert problem["title"]
    assert problem["detail"]
    return dict(problem)


@dataclass(frozen=True)
class SseMessage:
    event: str
    id: str | None
    data: Any


class SseReader:
    """Reads an event stream on a thread; ``next()`` waits for the next message."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self._messages: queue.Queue[SseMessage | BaseException] = queue.Queue()
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self._stop = threading.Event()
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers or {}), daemon=True)
        self._connected = threading.Event()
        self._thread.start()
        assert self._connected.wait(10), "the event stream did not open"

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200, response.status_code
                assert response.headers["content-type"].startswith("text/event-stream")
                self._connected.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line:
                        if "event" in fields:
                            self._messages.put(
                                SseMessage(
                                    fields["event"], fields.get("id"), json.loads(fields["data"])
                                )
                            )
                        fields = {}
                    elif not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except BaseException as e:  # noqa: BLE001  (handed to the test thread)
            if not self._stop.is_set():
                self._messages.put(e)
        finally:
            self._connected.set()
            self.ended.set()

    def next(self, timeout: float = 10.0) -> SseMessage:
        item = self._messages.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def until(self, event: str, predicate: Any = None, timeout: float = 10.0) -> SseMessage:
        """The next message of type ``event`` for which ``predicate(data)`` holds."""
        while True:
            message = self.next(timeout)
            if message.event == event and (predicate is None or predicate(message.data)):
                return message

    def close(self) -> None:
        self._stop.set()
        self._client.close()
