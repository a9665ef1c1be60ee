"""Helpers for the portal's tests: a city with a few known transactions, served for real.

Not a conftest: test modules import what they need and define their own fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from civicledger.api.server import BackgroundServer
from civicledger.ledger.receipt import Receipt
from civicledger.node.embedded import EmbeddedNode
from civicledger.web import create_site
from conftest import City, digest, make_city

HOSTILE_LABEL = '<script>alert("pwned")</script><img src=x onerror=alert(1)>&amp;'
"""A notary label a hostile clerk might write: it must reach the page as text, never as markup."""


@dataclass
class Site:
    """A running city node with the portal served on a real socket."""

    city: City
    node: EmbeddedNode
    url: str
    receipts: dict[str, Receipt] = field(default_factory=dict)
    """Known transactions by role: ``hostile``, ``failed``, ``tally``."""
    nonces: dict[str, int] = field(default_factory=dict)

    def send(self, key_name: str, contract: str, method: str, args: dict[str, object]) -> Receipt:
        """Sign with ``city.<key_name>`` (next nonce) and wait until the block is durable."""
        nonce = self.nonces.get(key_name, 0) + 1
        self.nonces[key_name] = nonce
        key = getattr(self.city, key_name)
        return self.node.submit(self.city.tx(key, contract, method, args, nonce=nonce))


def seed(site: Site) -> None:
    """Three transactions: a hostile label, a failed duplicate anchor, a public tally."""
    doc = {"digest": digest("budget"), "label": HOSTILE_LABEL}
    site.receipts["hostile"] = site.send("clerk", "notary", "anchor", doc)
    site.receipts["failed"] = site.send("clerk", "notary", "anchor", doc)
    site.receipts["tally"] = site.send("outsider", "tally", "add", {"amount": 7})
    assert site.receipts["failed"].status == "failed"


@contextmanager
def running_site(data_dir: Path) -> Iterator[Site]:
    """A new city in ``data_dir``, seeded, with ``create_site`` served on a free port."""
    city = make_city(data_dir)
    with city.open_node() as node, BackgroundServer(create_site(node)) as server:
        site = Site(city, node, server.url)
        seed(site)
        yield site


def html_lang(page: str) -> str:
    """The ``lang`` attribute of a page's ``<html>`` element."""
    match = re.search(r'<html lang="([a-z]+)">', page)
    assert match is not None, "no <html lang=...>"
    return match.group(1)
