"""A city directory served the way `civic node run` serves it: its embedded node, the agency
desks, and the API (or the API with the portal) on a real loopback port.

One helper for every API and portal suite, so they all exercise the same composition the
command line runs (``create_app`` or ``create_site`` over a node with its identity desk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import NodeLedger
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.node.embedded import EmbeddedNode
from civicledger.web.site import create_site

__all__ = ["ServedCity", "served_city"]


@dataclass(frozen=True)
class ServedCity:
    layout: CityDir
    node: EmbeddedNode
    ledger: NodeLedger
    http: httpx.Client
    """A client on the server's base URL."""
    url: str


@contextmanager
def served_city(
    layout: CityDir,
    *,
    portal: bool = False,
    domain: str = "https://testville.example",
    prepare: Callable[[NodeLedger], object] | None = None,
) -> Iterator[ServedCity]:
    """Serve ``layout``'s ledger (with the portal when ``portal``) until the block exits.

    ``prepare`` runs on the node's ledger before the server starts (define a coin, open a
    campaign...), so the served city already has what the suite reads.
    """
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        if prepare is not None:
            prepare(ledger)
        desk = IdentityDesk(ledger, domain=domain)
        app = create_site(node, identity=desk) if portal else create_app(node, identity=desk)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            yield ServedCity(layout, node, ledger, http, server.url)
