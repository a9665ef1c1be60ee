"""The visits contract through a real Chain: check-ins, their bounds, ownership and queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from civicledger.crypto.encoding import load_trusted_json, sha256
from civicledger.errors import RejectReason, TxRejected
from civicledger.node.chain import Chain
from civicledger.services.identity.visits import (
    MAX_BATCH,
    MAX_CHECK_IN_AGE_MS,
    MAX_CLOCK_SKEW_MS,
    visit_pseudonym,
)
from civicledger.services.registry import city_registry
from conftest import City, Ledger, make_city

ISSUER = "did:civic:city-hall"


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


def _visit(label: str) -> str:
    return visit_pseudonym(sha256(label.encode()).hex()[:32])


def _args(chain: Chain, **change: Any) -> dict[str, Any]:
    args = {
        "agency": "city-hall",
        "site": "main-gate",
        "visit": _visit("pass-1"),
        "pass_issuer": ISSUER,
        "checked_at_ms": chain.head.header.time_ms,
    }
    return {**args, **change}


def _entry(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != "agency"}


def _rows(city: City) -> dict[str, bytes]:
    return {k: v for k, v in city.state_rows().items() if k.startswith("visits/")}


def test_pseudonym_is_domain_separated_sha256() -> None:
    expected = sha256(b"civicledger/visit/v1\x00" + b"0123abcd").hex()
    assert visit_pseudonym("0123abcd") == expected
    assert visit_pseudonym("0123abce") != expected
    assert visit_pseudonym("0123abcd") != sha256(b"0123abcd").hex()
    with pytest.raises(ValueError, match="non-empty"):
        visit_pseudonym("")


def test_check_in_recorded_and_queried(city: City, chain: Chain, ledger: Ledger) -> None:
    args = _args(chain)
    receipt = ledger.send(city.clerk, "visits", "check_in", args)
    assert receipt.ok, receipt.message
    assert [(e.name, e.data) for e in receipt.events] == [
        ("checked_in", {"agency": "city-hall", "site": "main-gate", "count": 1})
    ]
    block = chain.block(receipt.height)
    assert block is not None
    record = {
        **args,
        "height": receipt.height,
        "time_ms": block.header.time_ms,
        "tx_id": receipt.tx_id,
    }
    site = {"agency": "city-hall", "site": "main-gate"}
    assert chain.query("visits", "count", site) == 1
    assert chain.query("visits", "count", {**site, "site": "side-door"}) == 0
    assert chain.query("visits", "visits", {"visit": args["visit"]}) == [record]
    assert chain.query("visits", "visits", {"visit": _visit("other")}) == []
    assert chain.query("visits", "check_ins", site) == {"check_ins": [record], "next": None}
    # Only pseudonyms, the agency's own ids and the issuer DID are stored.
    for key, value in _rows(city).items():
        if key.startswith("visits/count/"):
            continue
        assert set(load_trusted_json(value)) == {*args, "height", "time_ms", "tx_id"}


def test_duplicate_check_in_is_refused(city: City, chain: Chain, ledger: Ledger) -> None:
    args = _args(chain)
    assert ledger.send(city.clerk, "visits", "check_in", args).ok
    before = _rows(city)
    again = ledger.send(city.clerk2, "visits", "check_in", args)
    assert (again.status, again.reason) == ("failed", "duplicate_check_in")
    assert _rows(city) == before
    # The same pass checked again later, or at another site, is another check-in.
    later = _args(chain, checked_at_ms=args["checked_at_ms"] + 1)
    assert ledger.send(city.clerk, "visits", "check_in", later).ok
    assert ledger.send(city.clerk, "visits", "check_in", {**args, "site": "side-door"}).ok
    assert len(chain.query("visits", "visits", {"visit": args["visit"]})) == 3


@pytest.mark.parametrize(
    ("offset_ms", "reason"),
    [
        (1000 + MAX_CLOCK_SKEW_MS + 1, "check_in_in_future"),
        (1000 - MAX_CHECK_IN_AGE_MS - 1, "stale_check_in"),
    ],
)
def test_check_time_bounds(
    city: City, chain: Chain, ledger: Ledger, offset_ms: int, reason: str
) -> None:
    # The block comes one second after the head: bounds are relative to its time.
    head = chain.head.header.time_ms
    block_time = head + 1000
    inside = offset_ms - (1 if offset_ms > 1000 else -1)
    ok = ledger.tx(city.clerk, "visits", "check_in", _args(chain, checked_at_ms=head + inside))
    committed = ledger.block(ok, time_ms=block_time)
    assert [i.receipt.status for i in committed.included] == ["ok"]
    bad = ledger.tx(
        city.clerk,
        "visits",
        "check_in",
        _args(chain, visit=_visit("late"), checked_at_ms=head + 1000 + offset_ms),
    )
    committed = ledger.block(bad, time_ms=head + 2000)
    (included,) = committed.included
    assert (included.receipt.status, included.receipt.reason) == ("failed", reason)


@pytest.mark.parametrize("signer", ["archivist", "district", "root", "outsider"])
def test_only_the_sites_agency_may_check_in(
    city: City, chain: Chain, ledger: Ledger, signer: str
) -> None:
    before = city.snapshot()
    for method, args in [
        ("check_in", _args(chain)),
        ("check_in_batch", {"agency": "city-hall", "check_ins": [_entry(_args(chain))]}),
    ]:
        with pytest.raises(TxRejected) as caught:
            ledger.send(getattr(city, signer), "visits", method, args)
        assert caught.value.reject_reason is RejectReason.UNAUTHORIZED
    assert city.snapshot() == before
    # The archive records check-ins only under its own name.
    assert ledger.send(city.archivist, "visits", "check_in", _args(chain, agency="archive")).ok
    assert chain.query("visits", "count", {"agency": "city-hall", "site": "main-gate"}) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"visit": "AB" * 32},
        {"visit": "ab" * 31},
        {"site": "Main Gate"},
        {"site": "main/gate"},
        {"site": ""},
        {"pass_issuer": "did:key:z6Mkfoo"},
        {"pass_issuer": "did:civic:City"},
        {"checked_at_ms": -1},
        {"checked_at_ms": "1700000000000"},
        {"holder": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"},
        {"given_name": "Minji"},
    ],
)
def test_invalid_arguments_are_rejected(
    city: City, chain: Chain, ledger: Ledger, change: dict[str, Any]
) -> None:
    with pytest.raises(TxRejected) as caught:
        ledger.send(city.clerk, "visits", "check_in", {**_args(chain), **change})
    assert caught.value.reject_reason is RejectReason.INVALID_ARGS


def _batch(chain: Chain, count: int, start: int = 0) -> dict[str, Any]:
    at = chain.head.header.time_ms
    return {
        "agency": "city-hall",
        "check_ins": [
            _entry(_args(chain, visit=_visit(f"pass-{i}"), checked_at_ms=at - i))
            for i in range(start, start + count)
        ],
    }


def test_batch_records_and_is_idempotent(city: City, chain: Chain, ledger: Ledger) -> None:
    batch = _batch(chain, 3)
    first = ledger.send(city.clerk, "visits", "check_in_batch", batch)
    assert first.ok, first.message
    site = {"agency": "city-hall", "site": "main-gate"}
    assert chain.query("visits", "count", site) == 3
    rows = _rows(city)
    # Re-sent (a gate that never saw the receipt), nothing is recorded twice.
    again = ledger.send(city.clerk, "visits", "check_in_batch", batch)
    assert again.ok
    assert [e.data["count"] for e in again.events] == [0]
    assert _rows(city) == rows
    # Overlapping: only the new ones count.
    overlap = _batch(chain, 4)
    overlap["check_ins"][:3] = batch["check_ins"]
    third = ledger.send(city.clerk, "visits", "check_in_batch", overlap)
    assert [e.data["count"] for e in third.events] == [1]
    assert chain.query("visits", "count", site) == 4


def test_batch_is_all_or_nothing_for_bad_entries(city: City, chain: Chain, ledger: Ledger) -> None:
    batch = _batch(chain, 3)
    batch["check_ins"][2] = {**batch["check_ins"][2], "checked_at_ms": 0}
    receipt = ledger.send(city.clerk, "visits", "check_in_batch", batch)
    assert (receipt.status, receipt.reason) == ("failed", "stale_check_in")
    assert "check-in 2" in (receipt.message or "")
    repeated = _batch(chain, 2)
    repeated["check_ins"].append(repeated["check_ins"][0])
    receipt = ledger.send(city.clerk, "visits", "check_in_batch", repeated)
    assert (receipt.status, receipt.reason) == ("failed", "duplicate_check_in")
    assert _rows(city) == {}


@pytest.mark.parametrize(
    ("count", "accepted"), [(0, False), (MAX_BATCH, True), (MAX_BATCH + 1, False)]
)
def test_batch_bound(city: City, chain: Chain, ledger: Ledger, count: int, accepted: bool) -> None:
    batch = _batch(chain, count)
    if accepted:
        assert ledger.send(city.clerk, "visits", "check_in_batch", batch).ok
        site = {"agency": "city-hall", "site": "main-gate"}
        assert chain.query("visits", "count", site) == MAX_BATCH
    else:
        with pytest.raises(TxRejected) as caught:
            ledger.send(city.clerk, "visits", "check_in_batch", batch)
        assert caught.value.reject_reason is RejectReason.INVALID_ARGS


def test_listing_is_paginated_in_check_time_order(city: City, chain: Chain, ledger: Ledger) -> None:
    assert ledger.send(city.clerk, "visits", "check_in_batch", _batch(chain, 5)).ok
    site = {"agency": "city-hall", "site": "main-gate"}
    seen: list[dict[str, Any]] = []
    after = ""
    pages = 0
    while True:
        page = chain.query("visits", "check_ins", {**site, "limit": 2, "after": after})
        seen += page["check_ins"]
        pages += 1
        if page["next"] is None:
            break
        after = page["next"]
    assert pages == 3
    times = [r["checked_at_ms"] for r in seen]
    assert times == sorted(times)
    assert len({r["visit"] for r in seen}) == 5
    with pytest.raises(TxRejected):
        chain.query("visits", "check_ins", {**site, "after": "../count"})
