"""Issuer authority in governance: root grants and revokes credential types; verifiers check it by
time; deactivating an agency ends its grants in the same transaction."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.client import UnprovenResult
from civicledger.contracts.governance import MAX_ISSUER_PERIODS, MAX_ISSUER_TYPES
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import RejectReason, TxRejected
from civicledger.node.chain import Chain
from civicledger.services.identity.issuers import (
    CREDENTIAL_TYPE_PATTERN,
    GRANT_CONTRACT,
    GRANT_METHOD,
    REVOKE_METHOD,
    IssuerNotAuthorized,
    check_issuer,
)
from conftest import City, Ledger, make_city

HALL = "did:civic:city-hall"


def _grant(agency: str = "city-hall", credential_type: str = "ResidentCard") -> dict[str, Any]:
    return {"agency": agency, "credential_type": credential_type}


def _send(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> int:
    """Send to governance, require success, and return the block's time."""
    receipt = ledger.send(key, "governance", method, args)
    assert receipt.ok, receipt.message
    return ledger.chain.head.header.time_ms


def _failed(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> str | None:
    receipt = ledger.send(key, "governance", method, args)
    assert not receipt.ok
    return receipt.reason


def _may(chain: Chain, at: int | None, **grant: str) -> Any:
    args: dict[str, Any] = {**_grant(**grant)}
    if at is not None:
        args["at_time_ms"] = at
    return chain.query("governance", "may_issue", args)


def _periods(chain: Chain, **grant: str) -> list[tuple[int, int | None]]:
    record = chain.query("governance", "issuer_history", _grant(**grant))
    return [(p["granted_ms"], p["revoked_ms"]) for p in record["periods"]]


def test_the_constants_callers_use_name_governance_methods(ledger: Ledger, city: City) -> None:
    assert (GRANT_CONTRACT, GRANT_METHOD, REVOKE_METHOD) == (
        "governance",
        "grant_issuer",
        "revoke_issuer",
    )
    assert CREDENTIAL_TYPE_PATTERN == r"^[A-Z][A-Za-z0-9]{0,63}$"
    assert ledger.send(city.root, GRANT_CONTRACT, GRANT_METHOD, _grant()).ok
    assert ledger.send(city.root, GRANT_CONTRACT, REVOKE_METHOD, _grant()).ok


def test_only_root_grants_and_revokes(city: City, ledger: Ledger, chain: Chain) -> None:
    for key in (city.clerk, city.archivist, city.outsider, city.rogue):
        for method in ("grant_issuer", "revoke_issuer"):
            with pytest.raises(TxRejected) as caught:
                ledger.send(key, "governance", method, _grant())
            assert caught.value.reject_reason == RejectReason.UNAUTHORIZED
    assert chain.query("governance", "issuer_grants", {}) == []
    assert _may(chain, None) is False


def test_grant_revoke_regrant_history(city: City, ledger: Ledger, chain: Chain) -> None:
    granted = ledger.send(city.root, "governance", "grant_issuer", _grant())
    assert [(e.name, e.data) for e in granted.events] == [
        ("issuer_granted", {"agency": "city-hall", "credential_type": "ResidentCard"})
    ]
    t1 = chain.head.header.time_ms
    t2 = _send(ledger, city.root, "revoke_issuer", _grant())
    t3 = _send(ledger, city.root, "grant_issuer", _grant())
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
    record = chain.query("governance", "issuer_history", _grant())
    assert (record["agency"], record["type"], record["active"]) == (
        "city-hall",
        "ResidentCard",
        True,
    )
    assert _periods(chain) == [(t1, t2), (t3, None)]
    assert [p["granted_height"] for p in record["periods"]] == [1, 3]
    assert [p["revoked_height"] for p in record["periods"]] == [2, None]
    assert (
        chain.query("governance", "issuer_history", _grant(credential_type="VisitorPass")) is None
    )


def test_refusals_with_reasons(city: City, ledger: Ledger) -> None:
    assert _failed(ledger, city.root, "revoke_issuer", _grant()) == "not_granted"
    _send(ledger, city.root, "grant_issuer", _grant())
    assert _failed(ledger, city.root, "grant_issuer", _grant()) == "already_granted"
    assert _failed(ledger, city.root, "grant_issuer", _grant(agency="ghost-agency")) == (
        "unknown_agency"
    )
    _send(ledger, city.root, "deactivate_agency", {"agency": "archive"})
    assert _failed(ledger, city.root, "grant_issuer", _grant(agency="archive")) == (
        "agency_inactive"
    )


@pytest.mark.parametrize(
    "args",
    [
        _grant(credential_type="residentCard"),
        _grant(credential_type="Resident Card"),
        _grant(credential_type="Resident-Card"),
        _grant(credential_type="Resident/Card"),
        _grant(credential_type=""),
        _grant(credential_type="R" * 65),
        _grant(agency="City-Hall"),
        _grant(agency="city-hall/ResidentCard"),
        {"agency": "city-hall"},
        {**_grant(), "at_time_ms": 5},
    ],
)
def test_malformed_grants_rejected(city: City, ledger: Ledger, args: dict[str, Any]) -> None:
    for method in ("grant_issuer", "revoke_issuer"):
        with pytest.raises(TxRejected) as caught:
            ledger.send(city.root, "governance", method, args)
        assert caught.value.reject_reason == RejectReason.INVALID_ARGS


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("may_issue", {**_grant(), "at_time_ms": -1}),
        ("may_issue", {**_grant(), "at_time_ms": 2**53}),
        ("may_issue", _grant(credential_type="resident")),
        ("issuer_history", {"agency": "city-hall"}),
        ("issuer_grants", {"limit": 1001}),
        ("issuer_grants", {"limit": 0}),
        ("issuer_grants", {"agency": "City"}),
    ],
)
def test_malformed_queries_rejected(chain: Chain, method: str, args: dict[str, Any]) -> None:
    with pytest.raises(TxRejected) as caught:
        chain.query("governance", method, args)
    assert caught.value.reject_reason == RejectReason.INVALID_ARGS


def test_at_most_max_periods_per_grant(city: City, ledger: Ledger, chain: Chain) -> None:
    for _ in range(MAX_ISSUER_PERIODS):
        block = ledger.block(
            ledger.tx(city.root, "governance", "grant_issuer", _grant()),
            ledger.tx(city.root, "governance", "revoke_issuer", _grant()),
        )
        assert [i.receipt.ok for i in block.included] == [True, True]
    assert _failed(ledger, city.root, "grant_issuer", _grant()) == "too_many_changes"
    assert len(_periods(chain)) == MAX_ISSUER_PERIODS
    # Another type of the same agency is a record of its own.
    _send(ledger, city.root, "grant_issuer", _grant(credential_type="VisitorPass"))


def test_at_most_max_types_per_agency(city: City, ledger: Ledger, chain: Chain) -> None:
    types = [f"Type{n:02d}" for n in range(MAX_ISSUER_TYPES)]
    block = ledger.block(
        *[
            ledger.tx(city.root, "governance", "grant_issuer", _grant(credential_type=t))
            for t in types
        ]
    )
    assert all(i.receipt.ok for i in block.included)
    assert len(block.included) == MAX_ISSUER_TYPES
    assert _failed(ledger, city.root, "grant_issuer", _grant(credential_type="OneTooMany")) == (
        "too_many_types"
    )
    # A revoked type still counts (its history is kept), and may be granted again.
    _send(ledger, city.root, "revoke_issuer", _grant(credential_type="Type00"))
    assert _failed(ledger, city.root, "grant_issuer", _grant(credential_type="OneTooMany")) == (
        "too_many_types"
    )
    _send(ledger, city.root, "grant_issuer", _grant(credential_type="Type00"))
    # The bound is per agency.
    _send(ledger, city.root, "grant_issuer", _grant("archive", "OneTooMany"))
    # Deactivation closes every one of the agency's grants in one transaction.
    receipt = ledger.send(city.root, "governance", "deactivate_agency", {"agency": "city-hall"})
    assert receipt.ok
    closed = [e.data["credential_type"] for e in receipt.events if e.name == "issuer_revoked"]
    assert closed == types
    grants = chain.query("governance", "issuer_grants", {"agency": "city-hall", "limit": 1000})
    assert len(grants) == MAX_ISSUER_TYPES
    assert not any(g["active"] for g in grants)
    assert _may(chain, None, agency="archive", credential_type="OneTooMany") is True


def test_list_filters_and_paginates(city: City, ledger: Ledger, chain: Chain) -> None:
    for agency, credential_type in [
        ("city-hall", "ResidentCard"),
        ("city-hall", "FamilyLoveCard"),
        ("archive", "Qualification"),
        ("district-office", "VisitorPass"),
    ]:
        _send(ledger, city.root, "grant_issuer", _grant(agency, credential_type))
    _send(ledger, city.root, "revoke_issuer", _grant("archive", "Qualification"))

    def pairs(args: dict[str, Any]) -> list[tuple[str, str, bool]]:
        return [
            (r["agency"], r["type"], r["active"])
            for r in chain.query("governance", "issuer_grants", args)
        ]

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
    assert pairs({"agency": "city-hall", "after": "city-hall/FamilyLoveCard"}) == [
        ("city-hall", "ResidentCard", True)
    ]
    assert pairs({"agency": "parks"}) == []


def test_deactivation_closes_every_open_grant_of_the_agency(
    city: City, ledger: Ledger, chain: Chain
) -> None:
    t1 = _send(ledger, city.root, "grant_issuer", _grant("archive", "Qualification"))
    _send(ledger, city.root, "grant_issuer", _grant("archive", "VisitorPass"))
    _send(ledger, city.root, "grant_issuer", _grant("archive", "ResidentCard"))
    t_revoked = _send(ledger, city.root, "revoke_issuer", _grant("archive", "ResidentCard"))
    t_hall = _send(ledger, city.root, "grant_issuer", _grant("city-hall", "Qualification"))

    receipt = ledger.send(city.root, "governance", "deactivate_agency", {"agency": "archive"})
    assert receipt.ok
    height, t_off = chain.head.header.height, chain.head.header.time_ms
    assert [(e.name, e.data) for e in receipt.events] == [
        ("agency_deactivated", {"agency": "archive"}),
        ("issuer_revoked", {"agency": "archive", "credential_type": "Qualification"}),
        ("issuer_revoked", {"agency": "archive", "credential_type": "VisitorPass"}),
    ]
    record = chain.query("governance", "agency", {"agency": "archive"})
    assert (record["active"], record["deactivated_at"], record["deactivated_ms"]) == (
        False,
        height,
        t_off,
    )

    # Closed at this block; what was issued before stays within the period.
    assert _may(chain, t1, agency="archive", credential_type="Qualification") is True
    assert _may(chain, t_off - 1, agency="archive", credential_type="Qualification") is True
    assert _may(chain, t_off, agency="archive", credential_type="Qualification") is False
    assert _may(chain, None, agency="archive", credential_type="Qualification") is False
    assert _may(chain, None, agency="archive", credential_type="VisitorPass") is False
    assert _periods(chain, agency="archive", credential_type="Qualification") == [(t1, t_off)]
    history = chain.query("governance", "issuer_history", _grant("archive", "Qualification"))
    assert history["active"] is False
    assert history["periods"][-1]["revoked_height"] == height
    # A period revoked earlier keeps its own end; another agency's grant is untouched.
    assert _periods(chain, agency="archive", credential_type="ResidentCard") == [
        (t1 + 2000, t_revoked)
    ]
    assert _periods(chain, agency="city-hall", credential_type="Qualification") == [(t_hall, None)]
    assert _may(chain, None, credential_type="Qualification") is True
    # Nothing left to revoke, nothing may be granted again.
    assert _failed(ledger, city.root, "revoke_issuer", _grant("archive", "Qualification")) == (
        "not_granted"
    )
    assert _failed(ledger, city.root, "grant_issuer", _grant("archive", "Qualification")) == (
        "agency_inactive"
    )
    with pytest.raises(IssuerNotAuthorized):
        check_issuer(chain.query, "did:civic:archive", "Qualification", t_off)
    assert check_issuer(chain.query, "did:civic:archive", "Qualification", t_off - 1) == "archive"


def test_deactivation_cascade_stops_at_the_agency_id(
    city: City, ledger: Ledger, chain: Chain
) -> None:
    """Agency ``city`` is a prefix of ``city-hall``: deactivating it leaves city-hall alone."""
    register = {"id": "city", "name": "City", "keys": [city.outsider.public.did]}
    _send(ledger, city.root, "register_agency", register)
    _send(ledger, city.root, "grant_issuer", _grant("city", "ResidentCard"))
    _send(ledger, city.root, "grant_issuer", _grant("city-hall", "ResidentCard"))
    receipt = ledger.send(city.root, "governance", "deactivate_agency", {"agency": "city"})
    assert [e.data for e in receipt.events if e.name == "issuer_revoked"] == [
        {"agency": "city", "credential_type": "ResidentCard"}
    ]
    assert _may(chain, None, agency="city") is False
    assert _may(chain, None, agency="city-hall") is True
    assert [
        r["agency"] for r in chain.query("governance", "issuer_grants", {"agency": "city"})
    ] == ["city"]


def test_grant_and_deactivation_in_one_block(city: City, ledger: Ledger, chain: Chain) -> None:
    block = ledger.block(
        ledger.tx(city.root, "governance", "grant_issuer", _grant("archive", "Qualification")),
        ledger.tx(city.root, "governance", "deactivate_agency", {"agency": "archive"}),
        ledger.tx(city.root, "governance", "grant_issuer", _grant("archive", "VisitorPass")),
    )
    assert [(i.receipt.ok, i.receipt.reason) for i in block.included] == [
        (True, None),
        (True, None),
        (False, "agency_inactive"),
    ]
    t = block.header.header.time_ms
    # The period [t, t) is empty: the agency never held the right at any time.
    assert _periods(chain, agency="archive", credential_type="Qualification") == [(t, t)]
    assert _may(chain, t, agency="archive", credential_type="Qualification") is False


def test_check_issuer_over_time(city: City, ledger: Ledger, chain: Chain) -> None:
    t1 = _send(ledger, city.root, "grant_issuer", _grant())
    t2 = _send(ledger, city.root, "revoke_issuer", _grant())
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
    t1 = _send(ledger, city.root, "grant_issuer", _grant())
    asked: list[tuple[str, str]] = []

    def over_http(contract: str, method: str, args: dict[str, Any]) -> UnprovenResult:
        asked.append((contract, method))
        height, result = chain.query_at_head(contract, method, args)
        return UnprovenResult(height, result)

    assert check_issuer(over_http, HALL, "ResidentCard", t1) == "city-hall"
    assert asked == [("governance", "may_issue")]
    with pytest.raises(IssuerNotAuthorized):
        check_issuer(over_http, HALL, "ResidentCard", t1 - 1)

    def lying(contract: str, method: str, args: dict[str, Any]) -> Any:
        return "yes"

    with pytest.raises(IssuerNotAuthorized):
        check_issuer(lying, HALL, "ResidentCard", t1)


_AGENCIES = ["city-hall", "archive"]
_TYPES = ["ResidentCard", "VisitorPass"]
_ACTIONS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["grant_issuer", "revoke_issuer"]),
            st.sampled_from(_AGENCIES),
            st.sampled_from(_TYPES),
        ),
        st.tuples(st.just("deactivate_agency"), st.sampled_from(_AGENCIES), st.none()),
    ),
    min_size=1,
    max_size=12,
)


# derandomize: the examples are the same on every run, so the suite is deterministic.
@settings(max_examples=25, deadline=None, derandomize=True)
@given(_ACTIONS)
def test_may_issue_matches_a_model(actions: list[tuple[str, str, str | None]]) -> None:
    """Each action in a block of its own; may_issue at every block time matches a plain model."""
    with tempfile.TemporaryDirectory(prefix="civic-issuers-") as scratch:
        city = make_city(Path(scratch) / "city")
        chain = city.open_chain()
        try:
            ledger = Ledger(city, chain)
            active = set(_AGENCIES)
            holding: set[tuple[str, str]] = set()
            expected: dict[int, set[tuple[str, str]]] = {}
            for method, agency, kind in actions:
                if method == "deactivate_agency":
                    args: dict[str, Any] = {"agency": agency}
                    ok = agency in active
                else:
                    assert kind is not None
                    args = _grant(agency, kind)
                    held = (agency, kind) in holding
                    ok = agency in active and not held if method == "grant_issuer" else held
                receipt = ledger.send(city.root, "governance", method, args)
                assert receipt.ok is ok, (method, args, receipt.reason)
                if ok and method == "deactivate_agency":
                    active.discard(agency)
                    holding = {h for h in holding if h[0] != agency}
                elif ok and method == "grant_issuer":
                    holding.add((agency, kind or ""))
                elif ok:
                    holding.discard((agency, kind or ""))
                expected[chain.head.header.time_ms] = set(holding)
            for at, held_then in expected.items():
                for agency in _AGENCIES:
                    for kind in _TYPES:
                        assert _may(chain, at, agency=agency, credential_type=kind) is (
                            (agency, kind) in held_then
                        )
        finally:
            chain.close()
