"""The polls contract through a real Chain: creation, registration, open-mode votes and tallies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import TxRejected
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import Chain
from civicledger.services.registry import city_registry
from civicledger.services.voting.polls import CHANGE_RULE, MAX_DISTRICTS, MAX_OBSERVERS
from conftest import City, Ledger, city_key, make_city, ok, refused

POLL = "park-2025"
REGISTRAR = "district-office"


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def officers(city: City, ledger: Ledger) -> Ledger:
    """The ledger once city-hall holds the poll_officer role."""
    grant = {"agency": "city-hall", "role": "poll_officer"}
    assert ledger.send(city.root, "governance", "grant_role", grant).ok
    return ledger


def send(
    ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any], at: int | None = None
) -> Receipt:
    """One polls transaction in a block of its own (at block time ``at``); raises if dropped."""
    return ledger.send(key, "polls", method, args, time_ms=at)


def text(label: str) -> dict[str, str]:
    return {"ko": f"{label} (ko)", "en": label}


def poll_args(chain: Chain, **change: Any) -> dict[str, Any]:
    """An open single-choice poll opening 10 s and closing 100 s after the head's time."""
    now = chain.head.header.time_ms
    args = {
        "poll_id": POLL,
        "question": text("Which park first?"),
        "options": [text("North park"), text("River park"), text("Hill park")],
        "min_selections": 1,
        "max_selections": 1,
        "mode": "open",
        "eligibility": {"credential_type": "ResidentCard", "districts": [], "min_age": 19},
        "registrar": REGISTRAR,
        "opens_ms": now + 10_000,
        "closes_ms": now + 100_000,
        "observers": ["archive"],
        "rules": text("One resident, one vote."),
    }
    return {**args, **change}


def pseudonym(label: str) -> str:
    return sha256(b"pseudonym/" + label.encode()).hex()


def voter(label: str) -> PrivateKey:
    return city_key(f"voter/{label}")


def register(city: City, ledger: Ledger, label: str, district: str, poll: str = POLL) -> Receipt:
    args = {
        "poll_id": poll,
        "pseudonym": pseudonym(label),
        "voter_key": voter(label).public.did,
        "district": district,
    }
    return send(ledger, city.district, "register_voter", args)


def q(chain: Chain, method: str, **args: Any) -> Any:
    return chain.query("polls", method, {"poll_id": POLL, **args})


def open_poll(city: City, chain: Chain, ledger: Ledger, **change: Any) -> dict[str, Any]:
    return dict(ok(send(ledger, city.clerk, "create", poll_args(chain, **change))))


# -- creation -----------------------------------------------------------------------------------


def test_create_stores_definition_with_change_rule(
    city: City, chain: Chain, officers: Ledger
) -> None:
    args = poll_args(chain)
    receipt = send(officers, city.clerk, "create", args)
    record = ok(receipt)
    assert record["rules"] == {
        lang: f"{args['rules'][lang]}\n\n{CHANGE_RULE[lang]}" for lang in ("ko", "en")
    }
    assert "last" in record["rules"]["en"]
    assert "마지막" in record["rules"]["ko"]
    assert (record["agency"], record["phase"], record["public_key"]) == ("city-hall", "ready", None)
    assert [(e.name, e.data["poll_id"]) for e in receipt.events] == [("poll_created", POLL)]
    poll = q(chain, "poll")
    assert poll["status"] == "scheduled"
    assert (poll["registered"], poll["voted"]) == (0, 0)
    assert poll["options"] == args["options"]
    assert chain.query("polls", "polls", {})["polls"][0]["poll_id"] == POLL
    assert q(chain, "tally") == {"counts": [0, 0, 0], "voted": 0, "by_district": {}}
    assert chain.query("polls", "poll", {"poll_id": "no-such-poll"}) is None


def _trustees(n: int) -> list[str]:
    return [city_key(f"trustee/{j}").public.did for j in range(n)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"max_selections": 4}, "bad_selection_bounds"),
        ({"min_selections": 2, "max_selections": 1}, "bad_selection_bounds"),
        ({"opens_ms": 0}, "bad_schedule"),
        ({"closes_ms": "opens"}, "bad_schedule"),
        (
            {"eligibility": {"credential_type": "ResidentCard", "districts": [], "min_age": 18}},
            "unsupported_condition",
        ),
        ({"registrar": "nowhere"}, "unknown_registrar"),
        ({"observers": ["civic-watch"]}, "unknown_observer"),
        ({"observers": ["archive", "archive"]}, "duplicate_observer"),
        ({"trustees": _trustees(2), "threshold": 1}, "bad_trustees"),
        ({"mode": "secret", "trustees": _trustees(1), "threshold": 1}, "bad_trustees"),
        ({"mode": "secret", "trustees": _trustees(1) * 2, "threshold": 1}, "bad_trustees"),
        ({"mode": "secret", "trustees": _trustees(3), "threshold": 4}, "bad_threshold"),
        ({"mode": "secret", "trustees": _trustees(3)}, "bad_threshold"),
    ],
)
def test_create_refusals(
    city: City, chain: Chain, officers: Ledger, change: dict[str, Any], reason: str
) -> None:
    args = poll_args(chain, **change)
    if args["closes_ms"] == "opens":
        args["closes_ms"] = args["opens_ms"]
    refused(send(officers, city.clerk, "create", args), reason)
    assert q(chain, "poll") is None


def test_create_refuses_duplicate_and_inactive_registrar(
    city: City, chain: Chain, officers: Ledger
) -> None:
    open_poll(city, chain, officers)
    refused(send(officers, city.clerk, "create", poll_args(chain)), "poll_exists")
    assert officers.send(city.root, "governance", "deactivate_agency", {"agency": REGISTRAR}).ok
    args = poll_args(chain, poll_id="other-poll")
    refused(send(officers, city.clerk, "create", args), "registrar_inactive")


@pytest.mark.parametrize(
    "change",
    [
        {"poll_id": "X"},
        {"options": [text("only one")]},
        {"options": [text(f"o{i}") for i in range(21)]},
        {"question": {"ko": "", "en": "Which?"}},
        {"question": {"ko": "가" * 501, "en": "Which?"}},
        {"mode": "sealed"},
        {"observers": [f"did:civic:group-{i}" for i in range(MAX_OBSERVERS + 1)]},
        {"eligibility": {"credential_type": "residentcard", "districts": []}},
        {"eligibility": {"credential_type": "ResidentCard", "districts": ["a", "a"]}},
        {"trustees": ["did:key:not-a-key"]},
        {"opens_ms": "10"},
    ],
)
def test_create_malformed_args_are_dropped(
    city: City, chain: Chain, officers: Ledger, change: dict[str, Any]
) -> None:
    with pytest.raises(TxRejected) as e:
        send(officers, city.clerk, "create", poll_args(chain, **change))
    assert e.value.reason == "invalid_args"


def test_only_poll_officers_create(city: City, chain: Chain, officers: Ledger) -> None:
    with pytest.raises(TxRejected) as e:
        send(officers, city.archivist, "create", poll_args(chain))
    assert e.value.reason == "unauthorized"
    with pytest.raises(TxRejected):
        send(officers, city.outsider, "create", poll_args(chain))


# -- observers ----------------------------------------------------------------------------------


def test_observers(city: City, chain: Chain, officers: Ledger) -> None:
    poll = open_poll(city, chain, officers)
    group_key = city_key("civic-group").public.did
    add = {"poll_id": POLL, "observer": group_key}
    assert ok(send(officers, city.clerk2, "add_observer", add)) == ["archive", group_key]
    refused(send(officers, city.clerk, "add_observer", add), "duplicate_observer")
    refused(
        send(officers, city.archivist, "add_observer", {**add, "observer": "city-hall"}),
        "not_poll_agency",
    )
    refused(
        send(officers, city.clerk, "add_observer", {**add, "observer": "civic-watch"}),
        "unknown_observer",
    )
    refused(
        send(
            officers,
            city.clerk,
            "add_observer",
            {**add, "observer": "city-hall"},
            at=poll["closes_ms"],
        ),
        "poll_closed",
    )
    assert q(chain, "poll")["observers"] == ["archive", group_key]


def test_observer_limit(city: City, chain: Chain, officers: Ledger) -> None:
    many = [f"did:civic:group-{i}" for i in range(MAX_OBSERVERS)]
    open_poll(city, chain, officers, observers=many)
    add = {"poll_id": POLL, "observer": "archive"}
    refused(send(officers, city.clerk, "add_observer", add), "too_many_observers")


# -- registration -------------------------------------------------------------------------------


def test_registration_and_its_refusals(city: City, chain: Chain, officers: Ledger) -> None:
    poll = open_poll(
        city,
        chain,
        officers,
        eligibility={"credential_type": "ResidentCard", "districts": ["jongno", "mapo"]},
    )
    receipt = register(city, officers, "ana", "jongno")
    record = ok(receipt)
    assert record["voter_key"] == voter("ana").public.did
    assert [(e.name, e.data) for e in receipt.events] == [
        ("voter_registered", {"poll_id": POLL, "district": "jongno", "registered": 1})
    ]
    # The same credential (so the same pseudonym) presented from a second wallet.
    twice = {
        "poll_id": POLL,
        "pseudonym": pseudonym("ana"),
        "voter_key": voter("ana-second-wallet").public.did,
        "district": "jongno",
    }
    refused(send(officers, city.district, "register_voter", twice), "already_registered")
    reused = {**twice, "pseudonym": pseudonym("ben"), "voter_key": voter("ana").public.did}
    refused(send(officers, city.district, "register_voter", reused), "voter_key_in_use")
    elsewhere = {**twice, "pseudonym": pseudonym("ben"), "voter_key": voter("ben").public.did}
    refused(
        send(officers, city.district, "register_voter", {**elsewhere, "district": "gangnam"}),
        "district_not_eligible",
    )
    refused(send(officers, city.clerk, "register_voter", elsewhere), "not_registrar")
    refused(
        send(officers, city.district, "register_voter", {**elsewhere, "poll_id": "no-such-poll"}),
        "unknown_poll",
    )
    with pytest.raises(TxRejected) as e:
        send(officers, city.outsider, "register_voter", elsewhere)
    assert e.value.reason == "unauthorized"
    with pytest.raises(TxRejected) as e:
        send(officers, city.district, "register_voter", {**elsewhere, "voter_key": "did:key:z1"})
    assert e.value.reason == "invalid_args"
    refused(
        send(officers, city.district, "register_voter", elsewhere, at=poll["closes_ms"]),
        "poll_closed",
    )
    assert q(chain, "turnout") == {
        "total_registered": 1,
        "voted": 0,
        "by_district": {"jongno": {"registered": 1, "voted": 0}},
    }
    assert q(chain, "poll")["registered"] == 1


def test_registration_during_voting_and_district_bound(
    city: City, chain: Chain, officers: Ledger
) -> None:
    poll = open_poll(city, chain, officers)
    ok(
        send(
            officers, city.district, "register_voter", _reg("late", "mapo"), at=poll["opens_ms"] + 5
        )
    )
    txs = [
        officers.tx(city.district, "polls", "register_voter", _reg(f"v{i}", f"d{i}"))
        for i in range(MAX_DISTRICTS)
    ]
    block = officers.block(*txs)
    statuses = [i.receipt.reason for i in block.included]
    assert statuses[:-1] == [None] * (MAX_DISTRICTS - 1)
    assert statuses[-1] == "too_many_districts"
    assert len(q(chain, "turnout")["by_district"]) == MAX_DISTRICTS
    ok(send(officers, city.district, "register_voter", _reg("again", "d0")))


def _reg(label: str, district: str) -> dict[str, Any]:
    return {
        "poll_id": POLL,
        "pseudonym": pseudonym(label),
        "voter_key": voter(label).public.did,
        "district": district,
    }


# -- casting ------------------------------------------------------------------------------------


def test_cast_refusals(city: City, chain: Chain, officers: Ledger) -> None:
    poll = open_poll(city, chain, officers, min_selections=1, max_selections=2)
    ok(register(city, officers, "ana", "jongno"))
    vote = {"poll_id": POLL, "choices": [0]}
    refused(send(officers, voter("ana"), "cast", vote), "poll_not_open")
    refused(send(officers, voter("ana"), "cast", vote, at=poll["opens_ms"] - 1), "poll_not_open")
    refused(send(officers, voter("nobody"), "cast", vote, at=poll["opens_ms"]), "not_registered")
    for choices in ([0, 0], [3], [-1], [0, 1, 2], []):
        refused(send(officers, voter("ana"), "cast", {**vote, "choices": choices}), "bad_choices")
    refused(
        send(officers, voter("ana"), "cast_secret", {"poll_id": POLL, "ballot": {}}), "wrong_mode"
    )
    refused(
        send(officers, voter("ana"), "cast", {**vote, "poll_id": "no-such-poll"}), "unknown_poll"
    )
    with pytest.raises(TxRejected) as e:
        send(officers, voter("ana"), "cast", {**vote, "choices": ["0"]})
    assert e.value.reason == "invalid_args"
    assert q(chain, "tally")["counts"] == [0, 0, 0]
    ok(send(officers, voter("ana"), "cast", vote, at=poll["closes_ms"] - 1))
    refused(send(officers, voter("ana"), "cast", vote, at=poll["closes_ms"]), "poll_closed")
    assert q(chain, "tally")["counts"] == [1, 0, 0]


def test_vote_change_only_last_counts(city: City, chain: Chain, officers: Ledger) -> None:
    poll = open_poll(city, chain, officers, min_selections=0, max_selections=2)
    for label, district in (("ana", "jongno"), ("ben", "jongno"), ("cho", "mapo")):
        ok(register(city, officers, label, district))
    start = poll["opens_ms"]
    receipt = send(officers, voter("ana"), "cast", {"poll_id": POLL, "choices": [0, 2]}, at=start)
    assert ok(receipt)["choices"] == [0, 2]
    assert [(e.name, e.data) for e in receipt.events] == [
        ("vote_cast", {"poll_id": POLL, "turnout": 1, "district": "jongno"})
    ]
    ok(send(officers, voter("ben"), "cast", {"poll_id": POLL, "choices": [2]}))
    ok(send(officers, voter("cho"), "cast", {"poll_id": POLL, "choices": [1, 2]}))
    assert q(chain, "tally") == {
        "counts": [1, 1, 3],
        "voted": 3,
        "by_district": {"jongno": [1, 0, 2], "mapo": [0, 1, 1]},
    }
    # Ana changes her mind twice; the last vote (an abstention, allowed by min 0) counts.
    ok(send(officers, voter("ana"), "cast", {"poll_id": POLL, "choices": [1]}))
    last = send(officers, voter("ana"), "cast", {"poll_id": POLL, "choices": []})
    assert [e.data["turnout"] for e in last.events] == [3]
    assert q(chain, "tally") == {
        "counts": [0, 1, 2],
        "voted": 3,
        "by_district": {"jongno": [0, 0, 1], "mapo": [0, 1, 1]},
    }
    ballot = q(chain, "ballot", pseudonym=pseudonym("ana"))
    assert (ballot["choices"], ballot["changes"], ballot["tx_id"]) == ([], 2, last.tx_id)
    assert q(chain, "turnout") == {
        "total_registered": 3,
        "voted": 3,
        "by_district": {
            "jongno": {"registered": 2, "voted": 2},
            "mapo": {"registered": 1, "voted": 1},
        },
    }
    assert q(chain, "poll")["voted"] == 3
    page = q(chain, "ballots", limit=2)
    rest = q(chain, "ballots", after=page["next"], limit=2)
    assert rest["next"] is None
    everyone = {b["pseudonym"] for b in page["ballots"] + rest["ballots"]}
    assert everyone == {pseudonym(label) for label in ("ana", "ben", "cho")}


def test_turnout_series(city: City, chain: Chain, officers: Ledger) -> None:
    poll = open_poll(city, chain, officers)
    for label in ("ana", "ben", "cho", "dan"):
        ok(register(city, officers, label, "jongno"))
    start = poll["opens_ms"]
    vote = {"poll_id": POLL, "choices": [1]}
    ok(send(officers, voter("ana"), "cast", vote, at=start))
    block = officers.block(
        officers.tx(voter("ben"), "polls", "cast", vote),
        officers.tx(voter("cho"), "polls", "cast", vote),
        time_ms=start + 500,
    )
    assert [i.receipt.status for i in block.included] == ["ok", "ok"]
    ok(send(officers, voter("ana"), "cast", {**vote, "choices": [0]}, at=start + 700))
    ok(send(officers, voter("dan"), "cast", vote, at=start + 900))
    series = [(p["time_ms"], p["voted"]) for p in q(chain, "series")]
    assert series == [(start, 1), (start + 500, 3), (start + 900, 4)]
    assert [p["voted"] for p in q(chain, "series", after_ms=start)] == [3, 4]
    assert [p["voted"] for p in q(chain, "series", limit=1)] == [1]
    assert q(chain, "tally")["counts"] == [1, 3, 0]
