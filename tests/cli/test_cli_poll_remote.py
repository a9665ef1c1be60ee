"""A secret poll run entirely against a served node: trustees and voters on their own
machines use ``civic poll ... --node URL`` and the HTTP API; nobody opens the node's ledger
except the node (the final ``civic poll verify`` only reads it)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.agency.tokens import create_token
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity.wallet import Wallet
from identity_samples import RESIDENT, issuing_city

DOMAIN = "https://vote.testville.example"
POLL = "bike-lanes"
REGISTRAR = "election-office"


@dataclass
class Served:
    layout: CityDir
    url: str
    http: httpx.Client
    civic: Civic
    trustees: list[Path]
    opens_ms: int
    closes_ms: int


def _definition(trustees: list[str], opens_ms: int) -> dict[str, Any]:
    return {
        "poll_id": POLL,
        "question": {"ko": "자전거 도로", "en": "Bike lanes on Main Street?"},
        "options": [{"ko": "찬성", "en": "For"}, {"ko": "반대", "en": "Against"}],
        "min_selections": 1,
        "max_selections": 1,
        "mode": "secret",
        "eligibility": {"credential_type": "ResidentCard", "districts": [], "min_age": None},
        "registrar": REGISTRAR,
        "opens_ms": opens_ms,
        "closes_ms": opens_ms + 5_000,
        "rules": {"ko": "주민 투표", "en": "Residents' poll"},
        "trustees": trustees,
        "threshold": 2,
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    civic = new_runner()
    layout = issuing_city(tmp_path / "city", more_agencies=[REGISTRAR])
    CityLedger(layout).send(
        "root", "governance", "grant_role", {"agency": "city-hall", "role": "poll_officer"}
    )
    trustees, dids = [], []
    for n in (1, 2, 3):
        made = civic("poll", "trustee", "init", tmp_path / f"t{n}")
        assert made.exit_code == 0, made.output
        trustees.append(tmp_path / f"t{n}")
        dids.append(re.search(r"did:key:\S+", made.stdout).group(0))  # type: ignore[union-attr]
    opens_ms = int(time.time() * 1000) + 6_000
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        ledger.send("city-hall", "polls", "create", _definition(dids, opens_ms))
        desk = IdentityDesk(ledger, domain=DOMAIN)
        with (
            BackgroundServer(create_app(node, identity=desk)) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            yield Served(layout, server.url, http, civic, trustees, opens_ms, opens_ms + 5_000)


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def test_trustees_and_voters_over_http(served: Served, tmp_path: Path) -> None:
    base = ("--dir", served.layout.root)
    for step in ("join", "deal", "ack"):
        for trustee in served.trustees:
            _ok(served.civic(*base, "poll", "trustee", step, POLL, "--trustee", trustee,
                             "--node", served.url))  # fmt: skip
    poll = served.http.get(f"/api/v1/polls/{POLL}").json()["poll"]
    assert poll["phase"] == "ready"

    token, _ = create_token(served.layout, "city-hall", "desk", datetime.now(UTC))
    wallets = []
    for n, choice in enumerate((0, 1, 0), 1):
        wallet = Wallet.create(tmp_path / f"voter{n}")
        issued = served.http.post(
            "/api/v1/identity/credentials",
            json={"credential_type": "ResidentCard", "holder": wallet.holder, "claims": RESIDENT},
            headers={"Authorization": f"Bearer {token}"},
        )
        card = wallet.receive(issued.json()["credential"], now=datetime.now(UTC)).id
        challenge = served.http.post("/api/v1/identity/challenges").json()["challenge"]
        shown = wallet.present(card, challenge=challenge, domain=DOMAIN, now=datetime.now(UTC))
        registered = served.http.post(
            f"/api/v1/polls/{POLL}/registrations",
            json={
                "presentation": shown,
                "challenge": challenge,
                "voter_key": wallet.poll_key(POLL).public.did,
            },
        )
        assert registered.status_code == 201, registered.text
        wallets.append((wallet, choice))

    _wait_until(served.opens_ms)
    for (wallet, choice), n in zip(wallets, (1, 2, 3), strict=True):
        voted = _ok(served.civic(*base, "poll", "vote", POLL, "--choice", str(choice),
                                 "--wallet", wallet.path, "--node", served.url))  # fmt: skip
        assert "tracking code" in voted.stdout, n
    assert served.http.get(f"/api/v1/polls/{POLL}").json()["tally"] is None  # not live
    early = served.civic(*base, "poll", "trustee", "decrypt", POLL,
                         "--trustee", served.trustees[0], "--node", served.url)  # fmt: skip
    assert_one_error_line(early, "poll_not_closed")

    _wait_until(served.closes_ms)
    for trustee in (served.trustees[1], served.trustees[2]):
        _ok(served.civic(*base, "poll", "trustee", "decrypt", POLL, "--trustee", trustee,
                         "--node", served.url))  # fmt: skip
    published = _ok(
        served.civic(*base, "poll", "trustee", "publish", POLL,
                     "--trustee", served.trustees[1], "--node", served.url)
    )  # fmt: skip
    assert "[2, 1]" in published.stdout
    shown = served.http.get(f"/api/v1/polls/{POLL}").json()
    assert shown["tally"]["counts"] == [2, 1]
    assert shown["poll"]["result"]["trustees"] == [2, 3]
    verified = _ok(served.civic(*base, "poll", "verify", POLL))
    assert "[2, 1]" in verified.stdout
    assert json.dumps(shown["turnout"]).count('"voted": 3') >= 1


def _wait_until(moment_ms: int) -> None:
    delay = (moment_ms + 50) / 1000 - time.time()
    if delay > 0:
        time.sleep(delay)
