"""Polls over real HTTP: a resident registers with a presentation (the registrar keeps only a
pseudonym on the ledger), votes with the wallet's per-poll key, and anyone reads live turnout,
the tally, the turnout series and the counted ballot with its inclusion proof."""

from __future__ import annotations

import time
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
from civicledger.agency.registrar import district_code
from civicledger.agency.tokens import create_token
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.crypto.keys import PrivateKey
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity.wallet import Wallet
from identity_samples import PERSONAL, RESIDENT, issuing_city

DOMAIN = "https://vote.testville.example"
POLL = "park-2026"
REGISTRAR = "election-office"


@dataclass
class Polls:
    layout: CityDir
    node: EmbeddedNode
    ledger: NodeLedger
    http: httpx.Client
    hall_token: str
    tmp: Path

    def resident(self, name: str, **claims: Any) -> tuple[Wallet, str]:
        """A wallet holding a resident card issued through the desk."""
        wallet = Wallet.create(self.tmp / name)
        body = {
            "credential_type": "ResidentCard",
            "holder": wallet.holder,
            "claims": {**RESIDENT, **claims},
        }
        answer = self.http.post(
            "/api/v1/identity/credentials",
            json=body,
            headers={"Authorization": f"Bearer {self.hall_token}"},
        )
        assert answer.status_code == 201, answer.text
        card = wallet.receive(answer.json()["credential"], now=datetime.now(UTC))
        return wallet, card.id

    def register(
        self, wallet: Wallet, card: str, disclose: list[str], voter_key: str | None = None
    ) -> httpx.Response:
        challenge = self.http.post("/api/v1/identity/challenges").json()["challenge"]
        shown = wallet.present(
            card, challenge=challenge, domain=DOMAIN, now=datetime.now(UTC), disclose=disclose
        )
        key = voter_key or wallet.poll_key(POLL).public.did
        return self.http.post(
            f"/api/v1/polls/{POLL}/registrations",
            json={"presentation": shown, "challenge": challenge, "voter_key": key},
        )


def _poll_args(opens_ms: int) -> dict[str, Any]:
    return {
        "poll_id": POLL,
        "question": {"ko": "공원을 새로 만들까요?", "en": "Should we build a new park?"},
        "options": [{"ko": "예", "en": "Yes"}, {"ko": "아니요", "en": "No"}],
        "min_selections": 1,
        "max_selections": 1,
        "mode": "open",
        "eligibility": {
            "credential_type": "ResidentCard",
            "districts": ["riverside"],
            "min_age": 19,
        },
        "registrar": REGISTRAR,
        "opens_ms": opens_ms,
        "closes_ms": opens_ms + 600_000,
        "observers": [],
        "rules": {"ko": "리버사이드 주민 투표", "en": "A vote of Riverside residents"},
    }


@pytest.fixture
def polls(tmp_path: Path) -> Iterator[Polls]:
    layout = issuing_city(tmp_path / "city", more_agencies=[REGISTRAR])
    CityLedger(layout).send(
        "root", "governance", "grant_role", {"agency": "city-hall", "role": "poll_officer"}
    )
    hall_token, _ = create_token(layout, "city-hall", "desk", datetime.now(UTC))
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        ledger.send("city-hall", "polls", "create", _poll_args(int(time.time() * 1000) + 1500))
        desk = IdentityDesk(ledger, domain=DOMAIN)
        with (
            BackgroundServer(create_app(node, identity=desk)) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            yield Polls(layout, node, ledger, http, hall_token, tmp_path)


def test_register_vote_and_read_live_results(polls: Polls) -> None:
    wallet, card = polls.resident("minji")
    registered = polls.register(wallet, card, ["district", "age_over_19"])
    assert registered.status_code == 201, registered.text
    pseudonym = registered.json()["pseudonym"]
    assert registered.json()["district"] == "riverside"
    # The same credential from another wallet key: one credential, one pseudonym, refused.
    again = polls.register(wallet, card, ["district", "age_over_19"], voter_key=_other_key())
    assert_problem(again, 409, "already_registered")

    key = wallet.poll_key(POLL)
    while (
        time.time() * 1000 < polls.node.chain.query("polls", "poll", {"poll_id": POLL})["opens_ms"]
    ):
        time.sleep(0.1)
    receipt = polls.ledger.send_as(key, "polls", "cast", {"poll_id": POLL, "choices": [0]})
    assert receipt is not None
    polls.ledger.send_as(key, "polls", "cast", {"poll_id": POLL, "choices": [1]})  # changed

    shown = polls.http.get(f"/api/v1/polls/{POLL}").json()
    assert shown["poll"]["question"]["en"] == "Should we build a new park?"
    assert shown["turnout"]["voted"] == 1
    assert shown["tally"]["counts"] == [0, 1]  # only the last vote counts
    series = polls.http.get(f"/api/v1/polls/{POLL}/series").json()["series"]
    assert [p["voted"] for p in series][-1] == 1
    ballot = polls.http.get(f"/api/v1/polls/{POLL}/ballots/{pseudonym}").json()
    proof = polls.http.get(f"/api/v1/tx/{ballot['tx_id']}/proof")
    assert proof.status_code == 200

    raw = b"".join(p.read_bytes() for p in polls.layout.data_path.iterdir() if p.is_file())
    assert pseudonym.encode() in raw  # the scan sees what the ledger holds...
    for secret in [*PERSONAL, wallet.holder]:  # ...and never who voted
        assert secret.encode() not in raw, secret


def test_registration_refusals(polls: Polls) -> None:
    hillside, card = polls.resident("jisoo", district="Hillside")
    assert_problem(polls.register(hillside, card, ["district", "age_over_19"]), 403, "not_eligible")
    assert_problem(polls.register(hillside, card, ["age_over_19"]), 400, "missing_claim")
    minor, card = polls.resident("dohyun", birthdate="2015-02-01")
    assert_problem(polls.register(minor, card, ["district", "age_over_19"]), 403, "not_eligible")
    adult, card = polls.resident("sora")
    assert_problem(polls.register(adult, card, ["district"]), 400, "missing_claim")
    unknown = polls.http.post(
        "/api/v1/polls/no-such-poll/registrations",
        json={"presentation": "x~y~", "challenge": "c", "voter_key": _other_key()},
    )
    assert_problem(unknown, 404, "unknown_poll")
    assert_problem(polls.http.get("/api/v1/polls/no-such-poll"), 404, "unknown_poll")


def test_district_codes() -> None:
    assert district_code("강남구 Gangnam-gu") == "gangnam-gu"
    assert district_code("Riverside") == "riverside"
    assert district_code("종로구").startswith("d-")
    assert district_code("종로구") != district_code("중구")
    assert district_code("  ") is None


def _other_key() -> str:
    return PrivateKey.generate().public.did
