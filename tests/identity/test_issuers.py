"""Issuer authority: root grants and revokes credential types; verifiers check it by time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from civicledger.client import UnprovenResult
from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import RejectReason, TxRejected
from civicledger.node.chain import Chain
from civicledger.services.identity.did_registry import DidRegistry
from civicledger.services.identity.issuers import IssuerNotAuthorized, Issuers, check_issuer
from conftest import City, Ledger, make_city

HALL = "did:civic:city-hall"


@pytest.fixture
def city(tmp_path: Path) -> City:
    registry = ContractRegistry([Governance(), Notary(), DidRegistry(), Issuers()])
    return make_city(tmp_path / "city", registry)


def _grant(agency: str = "city-hall", credential_type: str = "ResidentCard") -> dict[str, Any]:
    return {"agency": agency, "credential_type": credential_type}


def _send(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> int:
    """Send, require success, and return the block's time."""
    receipt = ledger.send(key, "issuers", method, args)
    assert receipt.ok, receipt.message
    return ledger.chain.head.header.time_ms


def _failed(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> str | None:
    receipt = ledger.send(key, "issuers", method, args)
    assert not receipt.ok
    return receipt.reason


def _may(chain: Chain, at: int | None, **grant: str) -> Any:
    args: dict[str, Any] = {**_grant(**grant)}
    if at is not None:
        args["at_time_ms"] = at
    return chain.query("issuers", "may_issue", args)


def test_only_root_grants_and_revokes(city: City, ledger: Ledger, chain: Chain) -> None:
    for key in (city.clerk, city.archivist, city.outsider, city.rogue):
        for method in ("grant", "revoke"):
            with pytest.raises(TxRejected) as caught:
                ledger.send(key, "issuers", method, _grant())
            assert caught.value.reject_reason == RejectReason.UNAUTHORIZED
    assert chain.query("issuers", "list", {}) == []
    assert _may(chain, None) is False


def test_grant_revoke_regrant_history(city: City, ledger: Ledger, chain: Chain) -> None:
    t1 = _send(ledger, city.root, "grant", _grant())
    t2 = _send(ledger, city.root, "revoke", _grant())
    t3 = _send(ledger, city.root, "grant", _grant())
    assert [_may(chain, t) for t in (t1 - 1, t1, t2 - 1, t2, t3 - 1, t3, t3 + 10**6)] == [
        False,
        True,
        True,
        False,
        False,
        True,
        True,
    ]
    assert _may(chain, None) is True
    assert _may(chain, t1, credential_type="VisitorPass") is False
    assert _may(chain, t1, agency="archive") is False
    record = chain.query("issuers", "history", _grant())
    assert record["active"] is True
    assert [(p["granted_ms"], p["revoked_ms"]) for p in record["periods"]] == [
        (t1, t2),
        (t3, None),
    ]
    assert chain.query("issuers", "history", _grant(credential_type="VisitorPass")) is None


def test_refusals_with_reasons(city: City, ledger: Ledger) -> None:
    assert _failed(ledger, city.root, "revoke", _grant()) == "not_granted"
    _send(ledger, city.root, "grant", _grant())
    assert _failed(ledger, city.root, "grant", _grant()) == "already_granted"
    assert _failed(ledger, city.root, "grant", _grant(agency="ghost-agency")) == "unknown_agency"
    assert ledger.send(city.root, "governance", "deactivate_agency", {"agency": "archive"}).ok
    assert _failed(ledger, city.root, "grant", _grant(agency="archive")) == "agency_inactive"


@pytest.mark.parametrize(
    "args",
    [
        _grant(credential_type="residentCard"),
        _grant(credential_type="Resident Card"),
        _grant(credential_type="Resident-Card"),
        _grant(credential_type=""),
        _grant(credential_type="R" * 65),
        _grant(agency="City-Hall"),
        {"agency": "city-hall"},
        {**_grant(), "at_time_ms": 5},
    ],
)
def test_malformed_grants_rejected(city: City, ledger: Ledger, args: dict[str, Any]) -> None:
    with pytest.raises(TxRejected) as caught:
        ledger.send(city.root, "issuers", "grant", args)
    assert caught.value.reject_reason == RejectReason.INVALID_ARGS


def test_list_filters_and_paginates(city: City, ledger: Ledger, chain: Chain) -> None:
    for agency, credential_type in [
        ("city-hall", "ResidentCard"),
        ("city-hall", "FamilyLoveCard"),
        ("archive", "Qualification"),
        ("district-office", "VisitorPass"),
    ]:
        _send(ledger, city.root, "grant", _grant(agency, credential_type))
    _send(ledger, city.root, "revoke", _grant("archive", "Qualification"))

    def pairs(args: dict[str, Any]) -> list[tuple[str, str, bool]]:
        return [(r["agency"], r["type"], r["active"]) for r in chain.query("issuers", "list", args)]

    assert pairs({}) == [
        ("archive", "Qualification", False),
        ("city-hall", "FamilyLoveCard", True),
        ("city-hall", "ResidentCard", True),
        ("district-office", "VisitorPass", True),
    ]
    assert pairs({"agency": "city-hall"}) == [
        ("city-hall", "FamilyLoveCard", True),
        ("city-hall", "ResidentCard", True),
    ]
    assert pairs({"after": "city-hall/FamilyLoveCard", "limit": 1}) == [
        ("city-hall", "ResidentCard", True)
    ]


def test_check_issuer_over_time(city: City, ledger: Ledger, chain: Chain) -> None:
    t1 = _send(ledger, city.root, "grant", _grant())
    t2 = _send(ledger, city.root, "revoke", _grant())
    assert check_issuer(chain.query, HALL, "ResidentCard", t1) == "city-hall"
    assert check_issuer(chain.query, HALL, "ResidentCard", t2 - 1) == "city-hall"
    for issuer, credential_type, at in [
        (HALL, "ResidentCard", t1 - 1),
        (HALL, "ResidentCard", t2),
        (HALL, "VisitorPass", t1),
        ("did:civic:archive", "ResidentCard", t1),
        ("did:civic:ghost-agency", "ResidentCard", t1),
    ]:
        with pytest.raises(IssuerNotAuthorized, match="may not issue") as caught:
            check_issuer(chain.query, issuer, credential_type, at)
        assert caught.value.reason == "issuer_not_authorized"


@pytest.mark.parametrize(
    ("issuer", "credential_type", "at", "message"),
    [
        ("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "ResidentCard", 1, "agencies"),
        ("did:civic:City-Hall", "ResidentCard", 1, "agencies"),
        ("city-hall", "ResidentCard", 1, "agencies"),
        (HALL, "resident card", 1, "not a credential type"),
        (HALL, "ResidentCard", -1, "could not ask"),
        (HALL, "ResidentCard", True, "integer"),
    ],
)
def test_check_issuer_refuses_malformed_input(
    chain: Chain, issuer: str, credential_type: str, at: int, message: str
) -> None:
    with pytest.raises(IssuerNotAuthorized, match=message):
        check_issuer(chain.query, issuer, credential_type, at)


def test_check_issuer_with_client_style_answers(city: City, ledger: Ledger, chain: Chain) -> None:
    t1 = _send(ledger, city.root, "grant", _grant())

    def over_http(contract: str, method: str, args: dict[str, Any]) -> UnprovenResult:
        height, result = chain.query_at_head(contract, method, args)
        return UnprovenResult(height, result)

    assert check_issuer(over_http, HALL, "ResidentCard", t1) == "city-hall"
    with pytest.raises(IssuerNotAuthorized):
        check_issuer(over_http, HALL, "ResidentCard", t1 - 1)

    def lying(contract: str, method: str, args: dict[str, Any]) -> Any:
        return "yes"

    with pytest.raises(IssuerNotAuthorized):
        check_issuer(lying, HALL, "ResidentCard", t1)
