"""The independent verifier: a real 3-of-5 secret poll and an open poll audit ok from ledger data
alone; each tampering of the gathered record is caught by the check that owns it.

The ledger itself is hash-chained (``civic verify`` covers it), so tampering is done on the
gathered ``PollRecord`` with ``dataclasses.replace``: what a lying node or a buggy contract could
hand a verifier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from test_polls_secret import (
    POLL,
    ballot_for,
    ceremony,
    create,
    make_trustees,
    ok,
    partials_of,
    pseudonym,
    refused,
    register,
    send,
    text,
    voter,
)

from civicledger.agency.poll_audit import gather_poll, verify_poll_in_city
from civicledger.city import CityDir
from civicledger.node.chain import Chain
from civicledger.services.registry import city_registry
from civicledger.services.voting import group
from civicledger.services.voting.audit import (
    LedgerTx,
    PollRecord,
    audit_poll,
    render_report,
)
from conftest import City, Ledger, make_city

K, N = 3, 5
VOTES = {"ana": [1, 0, 0], "ben": [0, 0, 1], "cho": [0, 0, 1], "dan": [0, 1, 0]}
DISTRICTS = {"ana": "jongno", "ben": "jongno", "cho": "mapo", "dan": "mapo"}


@dataclass(frozen=True)
class Audited:
    record: PollRecord
    keys: set[str]
    city: City


def _officers(city: City, ledger: Ledger) -> None:
    grant = {"agency": "city-hall", "role": "poll_officer"}
    assert ledger.send(city.root, "governance", "grant_role", grant).ok


@pytest.fixture(scope="module")
def secret_poll(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    """A 3-of-5 poll: four voters, Ana changes her vote, a refused ballot, 4 partials, result."""
    root = tmp_path_factory.mktemp("audit-city")
    city = make_city(root / "data", city_registry())
    (root / "genesis.json").write_text(city.genesis.model_dump_json())
    chain = city.open_chain()
    try:
        ledger = Ledger(city, chain)
        _officers(city, ledger)
        trustees = make_trustees(N)
        poll = create(city, chain, ledger, trustees, K)
        ceremony(chain, ledger, trustees)
        for label, district in DISTRICTS.items():
            register(city, ledger, label, district)
        for n, (label, choices) in enumerate(VOTES.items()):
            args = {"poll_id": POLL, "ballot": ballot_for(chain, label, choices)}
            ok(send(ledger, voter(label), "cast_secret", args, at=poll["opens_ms"] + n))
        changed = {"poll_id": POLL, "ballot": ballot_for(chain, "ana", [0, 1, 0])}
        ok(send(ledger, voter("ana"), "cast_secret", changed))
        replayed = {"poll_id": POLL, "ballot": ballot_for(chain, "ben", [1, 0, 0])}
        refused(send(ledger, voter("cho"), "cast_secret", replayed), "bad_selection_proof")
        at = poll["closes_ms"]
        for t in (trustees[4], trustees[1], trustees[3], trustees[0]):
            args = {"poll_id": POLL, "partials": partials_of(chain, t)}
            ok(send(ledger, t.key, "decrypt_share", args, at=at))
            at += 1
        ok(send(ledger, city.clerk, "publish_result", {"poll_id": POLL, "counts": [0, 2, 2]}))
        gathered = gather_poll(chain, POLL)
    finally:
        chain.close()
    return Audited(gathered.record, set(gathered.registrar_keys), city)


def failed(record: PollRecord, keys: set[str]) -> set[str]:
    return {c.name for c in audit_poll(record, keys).failures}


def test_gathered_record_holds_the_ok_transactions(secret_poll: Audited) -> None:
    record = secret_poll.record
    assert record.create.method == "create"
    assert (len(record.joins), len(record.deals), len(record.acks)) == (N, N, N)
    assert len(record.registrations) == 4
    assert len(record.casts) == 5  # Four first votes and Ana's change; the refused one is not.
    assert [t.args["partials"] != [] for t in record.partials] == [True] * 4
    assert len(record.publications) == 1
    assert secret_poll.keys == {secret_poll.city.district.public.did}
    positions = [tx.position for tx in record.casts]
    assert positions == sorted(positions)


def test_an_honest_secret_poll_audits_ok(secret_poll: Audited) -> None:
    report = audit_poll(secret_poll.record, secret_poll.keys)
    assert report.ok, report.failures
    assert report.counts == (0, 2, 2)
    assert (report.registered, report.voted) == (4, 4)
    names = [c.name for c in report.checks]
    for name in (
        "registrar_signatures",
        "unique_pseudonyms",
        "unique_voter_keys",
        "possession_proofs",
        "joint_key",
        "ballot_voters",
        "ballot_times",
        "ballot_proofs",
        "turnout",
        "aggregate",
        "partial_decryptions",
        "decryption",
        "published_result",
    ):
        assert name in names
    assert report.check("ballot_proofs").checked == 5
    assert report.check("decryption").detail.startswith("trustees [1, 2, 4]")
    rows = render_report(report)
    assert rows[-1][:2] == ("result", "ok")
    assert "0, 2, 2" in rows[-1][2]


def test_verify_poll_in_city_reads_the_city_directory(secret_poll: Audited) -> None:
    root = secret_poll.city.data_dir.parent
    report = verify_poll_in_city(CityDir(root), POLL)
    assert report.ok
    assert report.counts == (0, 2, 2)


def test_no_registrar_keys_fails_closed(secret_poll: Audited) -> None:
    assert "registrar_signatures" in failed(secret_poll.record, set())


# -- tampering, each caught by its own check ------------------------------------------------------


def _cast_of(record: PollRecord, label: str) -> LedgerTx:
    return [tx for tx in record.casts if tx.signer == voter(label).public.did][-1]


def _with_cast(record: PollRecord, old: LedgerTx, new: LedgerTx) -> PollRecord:
    return replace(record, casts=tuple(new if tx is old else tx for tx in record.casts))


def _with_ballot(
    record: PollRecord, label: str, change: Callable[[dict[str, Any]], None]
) -> PollRecord:
    cast = _cast_of(record, label)
    ballot = _copy(cast.args["ballot"])
    change(ballot)
    return _with_cast(record, cast, replace(cast, args={**cast.args, "ballot": ballot}))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _swap_alphas(ballot: dict[str, Any]) -> None:
    s = ballot["selections"]
    s[0]["alpha"], s[1]["alpha"] = s[1]["alpha"], s[0]["alpha"]


def _change_response(ballot: dict[str, Any]) -> None:
    responses = ballot["selection_proofs"][0]["responses"]
    responses[0] = group.scalar_hex((group.scalar_from_hex(responses[0]) + 1) % group.L)


def _smuggle_early_ballot(record: PollRecord) -> PollRecord:
    """Dan's ballot again, in a block before opening (after his registration)."""
    dan = _cast_of(record, "dan")
    registration = next(
        tx for tx in record.registrations if tx.args["voter_key"] == voter("dan").public.did
    )
    early = replace(
        dan,
        time_ms=record.create.args["opens_ms"] - 1,
        height=registration.height,
        index=registration.index + 1,
        tx_id="ee" * 32,
    )
    return replace(record, casts=(early, *record.casts))


def _foreign_registration(record: PollRecord) -> PollRecord:
    first, *rest = record.registrations
    return replace(
        record, registrations=(replace(first, signer=voter("mallory").public.did), *rest)
    )


def _repeated_pseudonym(record: PollRecord) -> PollRecord:
    last = record.registrations[-1]
    twin = replace(
        last,
        args={
            **last.args,
            "voter_key": voter("ben-twin").public.did,
            "pseudonym": pseudonym("ben"),
        },
        index=last.index + 1,
        tx_id="dd" * 32,
    )
    return replace(record, registrations=(*record.registrations, twin))


def _with_partial(
    record: PollRecord, j: int, change: Callable[[dict[str, Any]], None]
) -> PollRecord:
    trustee = record.create.args["trustees"][j - 1]
    partials = []
    for tx in record.partials:
        if tx.signer == trustee:
            body = _copy(tx.args["partials"])
            change(body[0])
            partials.append(replace(tx, args={**tx.args, "partials": body}))
        else:
            partials.append(tx)
    return replace(record, partials=tuple(partials))


def _other_d(partial: dict[str, Any]) -> None:
    partial["D"] = group.point_hex(group.base_mul(7))


def _other_proof(partial: dict[str, Any]) -> None:
    s = group.scalar_from_hex(partial["proof"]["response"])
    partial["proof"]["response"] = group.scalar_hex((s + 1) % group.L)


def _wrong_publication(record: PollRecord) -> PollRecord:
    (published,) = record.publications
    wrong = replace(published, args={**published.args, "counts": [0, 1, 3]})
    return replace(record, publications=(wrong,), stored=replace(record.stored, tally=(0, 1, 3)))


def _wrong_aggregate(record: PollRecord) -> PollRecord:
    assert record.stored.aggregate is not None
    a0, a1, a2 = record.stored.aggregate
    return replace(record, stored=replace(record.stored, aggregate=(a1, a0, a2)))


TAMPERINGS: list[tuple[str, Callable[[PollRecord], PollRecord], str]] = [
    ("ciphertext points swapped", lambda r: _with_ballot(r, "ben", _swap_alphas), "ballot_proofs"),
    ("proof response changed", lambda r: _with_ballot(r, "cho", _change_response), "ballot_proofs"),
    ("ballot before opening", _smuggle_early_ballot, "ballot_times"),
    ("registration by a non-registrar key", _foreign_registration, "registrar_signatures"),
    ("one pseudonym registered twice", _repeated_pseudonym, "unique_pseudonyms"),
    (
        "partial decryption D changed",
        lambda r: _with_partial(r, 2, _other_d),
        "partial_decryptions",
    ),
    (
        "partial decryption proof changed",
        lambda r: _with_partial(r, 4, _other_proof),
        "partial_decryptions",
    ),
    ("wrong published result", _wrong_publication, "published_result"),
    ("stored aggregate not the ballots' sum", _wrong_aggregate, "aggregate"),
]


@pytest.mark.parametrize(
    ("tamper", "check"), [(t[1], t[2]) for t in TAMPERINGS], ids=[t[0] for t in TAMPERINGS]
)
def test_tampering_is_caught(
    secret_poll: Audited, tamper: Callable[[PollRecord], PollRecord], check: str
) -> None:
    report = audit_poll(tamper(secret_poll.record), secret_poll.keys)
    assert not report.ok
    assert check in {c.name for c in report.failures}, render_report(report)
    assert report.check(check).failed >= 1
    assert render_report(report)[-1][1] == "failed"


def test_a_tampered_ballot_drops_out_of_the_count(secret_poll: Audited) -> None:
    """Ben's altered ballot is not counted: the sum and the result no longer match the ledger."""
    report = audit_poll(_with_ballot(secret_poll.record, "ben", _swap_alphas), secret_poll.keys)
    assert {"ballot_proofs", "turnout", "aggregate"} <= {c.name for c in report.failures}


def test_a_wrong_partial_is_skipped_and_the_others_decrypt(secret_poll: Audited) -> None:
    """Trustee 2's partial is bad; trustees 1, 4 and 5 still give the published result."""
    report = audit_poll(_with_partial(secret_poll.record, 2, _other_d), secret_poll.keys)
    assert {c.name for c in report.failures} == {"partial_decryptions"}
    assert report.check("decryption").detail.startswith("trustees [1, 4, 5]")
    assert report.counts == (0, 2, 2)


def test_without_a_published_result_the_poll_is_pending(secret_poll: Audited) -> None:
    record = replace(
        secret_poll.record, publications=(), stored=replace(secret_poll.record.stored, tally=None)
    )
    report = audit_poll(record, secret_poll.keys)
    assert not report.failures
    assert report.check("published_result").status == "pending"
    assert not report.ok


# -- an open poll -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_poll(tmp_path_factory: pytest.TempPathFactory) -> Audited:
    city = make_city(tmp_path_factory.mktemp("audit-open") / "data", city_registry())
    chain: Chain = city.open_chain()
    try:
        ledger = Ledger(city, chain)
        _officers(city, ledger)
        now = chain.head.header.time_ms
        args = {
            "poll_id": POLL,
            "question": text("Which park first?"),
            "options": [text("North"), text("River"), text("Hill")],
            "min_selections": 1,
            "max_selections": 2,
            "mode": "open",
            "eligibility": {"credential_type": "ResidentCard", "districts": [], "min_age": 19},
            "registrar": "district-office",
            "opens_ms": now + 60_000,
            "closes_ms": now + 120_000,
            "observers": [],
            "rules": text("One resident, one vote."),
        }
        poll = ok(send(ledger, city.clerk, "create", args))
        for label, district in DISTRICTS.items():
            register(city, ledger, label, district)
        choices = {"ana": [0], "ben": [1, 2], "cho": [2], "dan": [0, 2]}
        for n, (label, picked) in enumerate(choices.items()):
            cast = {"poll_id": POLL, "choices": picked}
            ok(send(ledger, voter(label), "cast", cast, at=poll["opens_ms"] + n))
        ok(send(ledger, voter("ana"), "cast", {"poll_id": POLL, "choices": [1]}))
        refused(
            send(ledger, voter("cho"), "cast", {"poll_id": POLL, "choices": [0, 1, 2]}),
            "bad_choices",
        )
        gathered = gather_poll(chain, POLL)
    finally:
        chain.close()
    return Audited(gathered.record, set(gathered.registrar_keys), city)


def test_an_open_poll_recounts_ok(open_poll: Audited) -> None:
    report = audit_poll(open_poll.record, open_poll.keys)
    assert report.ok, report.failures
    assert report.counts == (1, 2, 3)
    assert report.check("tally").ok


@pytest.mark.parametrize(
    "stored",
    [
        {"tally": (2, 1, 3)},
        {"tally_by_district": {"jongno": (1, 1, 1), "mapo": (1, 0, 2)}},
    ],
    ids=["counts", "by district"],
)
def test_a_tampered_open_tally_is_caught(open_poll: Audited, stored: dict[str, Any]) -> None:
    record = replace(open_poll.record, stored=replace(open_poll.record.stored, **stored))
    assert failed(record, open_poll.keys) == {"tally"}


def test_an_open_ballot_with_bad_choices_is_caught(open_poll: Audited) -> None:
    cast = open_poll.record.casts[-1]
    bad = replace(cast, args={**cast.args, "choices": [0, 0]})
    record = _with_cast(open_poll.record, cast, bad)
    assert "ballot_choices" in failed(record, open_poll.keys)
