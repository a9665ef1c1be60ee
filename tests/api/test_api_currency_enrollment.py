"""Enrolling in a city currency over HTTP: the enroller checks a presentation of the currency's
holder credential; the ledger gets the account, a district code and a pseudonym of the
credential, so one credential opens one account per currency whatever wallet asks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import assert_problem

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import CityLedger, NodeLedger
from civicledger.agency.tokens import create_token
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.crypto.keys import PrivateKey
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity.wallet import Wallet
from identity_samples import PERSONAL, RESIDENT, issuing_city

DOMAIN = "https://coin.testville.example"
CUR = "help-coin"
ENROLLER = "welfare-office"


@dataclass
class Served:
    layout: CityDir
    http: httpx.Client
    hall_token: str
    tmp: Path

    def card(self, name: str) -> tuple[Wallet, str]:
        wallet = Wallet.create(self.tmp / name)
        body = {"credential_type": "ResidentCard", "holder": wallet.holder, "claims": RESIDENT}
        issued = self.http.post(
            "/api/v1/identity/credentials",
            json=body,
            headers={"Authorization": f"Bearer {self.hall_token}"},
        )
        assert issued.status_code == 201, issued.text
        return wallet, wallet.receive(issued.json()["credential"], now=datetime.now(UTC)).id

    def enroll(self, wallet: Wallet, card: str, account: str, **change: Any) -> httpx.Response:
        challenge = self.http.post("/api/v1/identity/challenges").json()["challenge"]
        shown = wallet.present(
            card, challenge=challenge, domain=DOMAIN, now=datetime.now(UTC), disclose=["district"]
        )
        body = {
            "presentation": shown,
            "challenge": challenge,
            "account": account,
            "enroller": ENROLLER,
            **change,
        }
        return self.http.post(f"/api/v1/currencies/{CUR}/enrollments", json=body)


def _definition() -> dict[str, Any]:
    return {
        "currency_id": CUR,
        "name": {"ko": "도움코인", "en": "Help coin"},
        "symbol": "HELP",
        "kind": "general",
        "holder_credential": "ResidentCard",
        "spend_categories": ["food"],
        "spend_regions": ["riverside"],
        "p2p": False,
        "lot_ttl_days": 30,
        "balance_cap": 1_000_000,
        "monthly_purchase_cap": 500_000,
        "purchase_bonus_bp": 0,
        "activity_rates": {},
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    layout = issuing_city(tmp_path / "city", more_agencies=[ENROLLER])
    setup = CityLedger(layout)
    for agency, role in (("city-hall", "treasury"), (ENROLLER, "enroller")):
        setup.send("root", "governance", "grant_role", {"agency": agency, "role": role})
    setup.send("city-hall", "currency", "define", _definition())
    token, _ = create_token(layout, "city-hall", "desk", datetime.now(UTC))
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        desk = IdentityDesk(NodeLedger(layout, node), domain=DOMAIN)
        with (
            BackgroundServer(create_app(node, identity=desk)) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            yield Served(layout, http, token, tmp_path)


def test_one_credential_one_account(served: Served) -> None:
    wallet, card = served.card("minji")
    account = PrivateKey.generate().public.did
    enrolled = served.enroll(wallet, card, account)
    assert enrolled.status_code == 201, enrolled.text
    assert enrolled.json() == {"currency_id": CUR, "account": account, "region": "riverside"}
    view = served.http.get(f"/api/v1/currencies/{CUR}/accounts/{account}")
    assert view.status_code == 200, view.text
    # The same credential asking for a second account (another wallet key): refused.
    again = served.enroll(wallet, card, PrivateKey.generate().public.did)
    assert_problem(again, 409, "credential_enrolled")
    # The same account twice: refused too.
    other_wallet, other_card = served.card("jisoo")
    assert_problem(served.enroll(other_wallet, other_card, account), 409, "already_enrolled")

    raw = b"".join(p.read_bytes() for p in served.layout.data_path.iterdir() if p.is_file())
    assert account.encode() in raw
    for secret in [*PERSONAL, wallet.holder]:
        assert secret.encode() not in raw, secret


def test_enrolment_refusals(served: Served) -> None:
    wallet, card = served.card("sora")
    account = PrivateKey.generate().public.did
    unknown = served.enroll(wallet, card, account, enroller="no-such-agency")
    assert_problem(unknown, 403, "enroller_unavailable")
    replay_challenge = served.http.post("/api/v1/identity/challenges").json()["challenge"]
    shown = wallet.present(card, challenge=replay_challenge, domain=DOMAIN, now=datetime.now(UTC))
    body = {"presentation": shown, "challenge": replay_challenge, "account": account}
    first = served.http.post(
        f"/api/v1/currencies/{CUR}/enrollments", json={**body, "enroller": ENROLLER}
    )
    assert first.status_code == 201, first.text
    replayed = served.http.post(
        f"/api/v1/currencies/{CUR}/enrollments",
        json={**body, "account": PrivateKey.generate().public.did, "enroller": ENROLLER},
    )
    assert_problem(replayed, 400, "replayed_challenge")
    missing = served.http.post(
        "/api/v1/currencies/no-such-coin/enrollments",
        json={**body, "enroller": ENROLLER},
    )
    assert_problem(missing, 404, "unknown_currency")
