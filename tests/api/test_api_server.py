"""The listening socket and the background server around the app."""

from __future__ import annotations

import socket

import httpx
import pytest

from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer, listen, socket_url
from civicledger.errors import NodeError
from conftest import City


def test_connections_accepted_by_the_server_have_nagle_off(city: City) -> None:
    """asyncio turns TCP_NODELAY on for accepted connections only if the listening socket is
    IPPROTO_TCP; without it each response stalled ~40 ms on a delayed ACK."""
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        with city.open_node() as node, BackgroundServer(create_app(node), sock=sock) as server:
            assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
    finally:
        sock.close()


def test_a_taken_port_is_an_error_or_replaced_by_a_free_one() -> None:
    first = listen("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(NodeError, match="cannot listen"):
            listen("127.0.0.1", port)
        other = listen("127.0.0.1", port, any_port_if_taken=True)
        try:
            assert other.getsockname()[1] != port
            assert socket_url(other).startswith("http://127.0.0.1:")
        finally:
            other.close()
    finally:
        first.close()
