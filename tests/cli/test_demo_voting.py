"""The demo city's polls: every step, the results, the independent audit, and a scan of the
ledger for anything that would tell who voted or how."""

from __future__ import annotations

import re

import httpx
import pytest

from civicledger.agency.desk import node_desk
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.demo_currency import COIN, DemoCurrency
from civicledger.demo_voting import OPEN_POLL, SECRET_POLL, DemoVoting
from civicledger.node.chain import Chain
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity.wallet import Wallet
from civicledger.web.site import create_site
from conftest import DemoCityTemplate

REFUSALS = {
    "voter-2 votes before the polls open": "poll_not_open",
    "voter-1 tries to register again from another wallet key": "already_registered",
    "voter-6 votes after closing": "poll_closed",
}


@pytest.fixture(scope="module")
def demo(
    demo_city_template: DemoCityTemplate, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CityDir, DemoVoting]:
    """The shared demo city (its polls ran after identity, before the help coin), copied."""
    layout = demo_city_template.fresh(tmp_path_factory.mktemp("demo") / "seoul")
    return layout, demo_city_template.voting


def test_every_step_and_the_results(demo: tuple[CityDir, DemoVoting]) -> None:
    layout, voting = demo
    refused = {s.title: s.reason for s in voting.steps if s.outcome == "refused"}
    assert refused == REFUSALS
    assert all(s.outcome == "ok" for s in voting.steps if s.title not in REFUSALS)
    # Open: yes, yes, no, yes, no→yes, yes. Secret (up to two): housing 3, jobs 4, culture 2.
    assert voting.open_tally["counts"] == [5, 1]
    assert voting.secret_result == [3, 4, 2]
    assert voting.audit_ok is True
    chain = Chain(layout.data_path)
    try:
        poll = chain.query("polls", "poll", {"poll_id": SECRET_POLL})
        assert poll["result"]["counts"] == [3, 4, 2]
        assert poll["result"]["trustees"] == [1, 2, 3]
        assert chain.query("polls", "turnout", {"poll_id": OPEN_POLL})["voted"] == 6
    finally:
        chain.close()


def test_the_ledger_never_says_who_voted(demo: tuple[CityDir, DemoVoting]) -> None:
    layout, voting = demo
    raw = b"".join(p.read_bytes() for p in layout.data_path.iterdir() if p.is_file())
    for name, pseudonym in voting.pseudonyms.items():
        assert pseudonym.encode() in raw, name  # the scan reads what the ledger holds
        holder = Wallet.open(layout.root / "wallets" / name).holder
        assert holder.encode() not in raw, name  # the resident's did:key: never
    for secret in (b"Voter 1", b"demo address", b"1971-05-02", b"1988-09-17"):
        assert secret not in raw, secret


def test_the_dashboard_shows_the_verified_secret_result(demo: tuple[CityDir, DemoVoting]) -> None:
    layout, _ = demo
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        site = create_site(node, identity=node_desk(layout, node, served_at="http://demo"))
        with BackgroundServer(site) as server, httpx.Client(base_url=server.url) as http:
            page = http.get(f"/polls/{SECRET_POLL}", params={"lang": "en"})
            listed = http.get("/api/v1/polls").json()
    assert page.status_code == 200
    text = page.text
    for option, count in (("Housing support", 3), ("Jobs", 4), ("Cultural spaces", 2)):
        assert option in text
        assert re.search(rf"{option}.{{0,400}}\b{count}\b", text, re.DOTALL), option
    assert sorted(p["poll_id"] for p in listed["polls"]) == [OPEN_POLL, SECRET_POLL]


@pytest.fixture(scope="module")
def currency(demo_city_template: DemoCityTemplate) -> DemoCurrency:
    """The help-coin part ran after the polls, on the voters' wallets."""
    return demo_city_template.currency


def test_the_help_coin_balances(demo: tuple[CityDir, DemoVoting], currency: DemoCurrency) -> None:
    layout, _ = demo
    refused = {s.title: s.reason for s in currency.steps if s.outcome == "refused"}
    assert refused == {
        "voter-2 tries to pay 150,000 KRW (more than the balance)": "insufficient_funds",
        "voter-4 tries to pay another resident (not allowed for the help coin)": (
            "p2p_not_allowed"
        ),
    }
    totals = currency.totals
    assert (totals["minted"], totals["burned"], totals["expired"]) == (600_000, 10_000, 0)
    assert totals["supply"] == totals["minted"] - totals["burned"] - totals["expired"]
    assert totals["reserve"] == 1_000_000 - 10_000
    assert currency.report_ok is True
    assert currency.flags == 0
    chain = Chain(layout.data_path)
    try:
        balance = chain.query(
            "currency", "balance", {"currency_id": COIN, "account": currency.accounts["voter-1"]}
        )
    finally:
        chain.close()
    assert balance["balance"] == 100_000 - 12_000
    raw = b"".join(p.read_bytes() for p in layout.data_path.iterdir() if p.is_file())
    for name, account in currency.accounts.items():
        assert account.encode() in raw
        holder = Wallet.open(layout.root / "wallets" / name).holder
        assert holder.encode() not in raw, name
