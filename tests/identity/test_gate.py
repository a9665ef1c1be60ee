"""The offline gate end to end: sync online, check QR codes offline, upload check-ins.

The district office issues a visitor pass against Alice's resident card (``_visitor_pass`` of
the verifier flows); its gate at ``main-gate`` syncs, loses the network, and checks the pass
the visitor's wallet presents as a QR code answering the gate's challenge.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_verifier_flows import GATE, World, _visitor_pass, presentation

from civicledger.crypto.encoding import canonical_json
from civicledger.crypto.keys import PrivateKey
from civicledger.node.chain import Chain
from civicledger.services.identity.credentials import (
    credential_id,
    from_qr_payload,
    to_qr_payload,
    visitor_pass_credential,
)
from civicledger.services.identity.data_integrity import issue_credential
from civicledger.services.identity.gate import Gate, GateError
from civicledger.services.identity.issuers import IssuerNotAuthorized
from civicledger.services.identity.resolver import DidResolutionError
from civicledger.services.identity.vc import CredentialError
from civicledger.services.identity.verifier import ChallengeError, VerificationError
from civicledger.services.identity.visits import visit_pseudonym
from civicledger.services.registry import city_registry
from conftest import City, Ledger, city_key, make_city


class Offline:
    """The gate's link: answers while up; once down, any call fails the test."""

    def __init__(self, world: World) -> None:
        self.world, self.up = world, True

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        assert self.up, f"offline gate asked {contract}.{method}"
        return self.world.chain.query(contract, method, args)

    def fetch(self, url: str) -> Any:
        assert self.up, f"offline gate fetched {url}"
        return self.world.fetch(url)


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def world(city: City, chain: Chain, ledger: Ledger) -> World:
    return World(city, chain, ledger)


@pytest.fixture
def alice() -> PrivateKey:
    return city_key("gate/alice")


@pytest.fixture
def visitor() -> PrivateKey:
    return city_key("gate/visitor")


def _gate(directory: Path, **options: Any) -> Gate:
    return Gate(directory, agency="district-office", site="main-gate", domain=GATE, **options)


def _qr(gate: Gate, holder: PrivateKey, credential: dict[str, Any], at: datetime) -> str:
    shown = presentation(
        holder, [credential], challenge=gate.new_challenge(at), domain=GATE, now=at
    )
    return to_qr_payload(shown)


def _synced(
    world: World, tmp_path: Path, passes: list[dict[str, Any]], at: datetime, **options: Any
) -> tuple[Gate, Offline]:
    link = Offline(world)
    gate = _gate(tmp_path / "gate", **options)
    gate.sync(link.query, link.fetch, passes, now=at)
    link.up = False
    return gate, link


def test_offline_check_queue_and_upload(
    world: World, alice: PrivateKey, visitor: PrivateKey, tmp_path: Path
) -> None:
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    link = Offline(world)
    gate = _gate(tmp_path / "gate")
    report = gate.sync(link.query, link.fetch, [visitor_pass], now=world.now())
    assert report.ready == (credential_id(visitor_pass),)
    assert report.refused == ()
    link.up = False

    at = start + timedelta(minutes=30)
    admitted = gate.check(_qr(gate, visitor, visitor_pass, at), now=at)
    assert admitted.credential.holder == visitor.public.did
    assert admitted.credential.claims["host"] == alice.public.did
    expected_visit = visit_pseudonym(credential_id(visitor_pass))
    assert admitted.check_in.visit == expected_visit
    assert admitted.check_in.pass_issuer == world.district.did
    assert admitted.check_in.checked_at_ms == int(at.timestamp() * 1000)
    assert gate.pending() == (admitted.check_in,)

    # A restart (same directory) keeps the snapshot and the queue; challenges are fresh.
    gate = _gate(tmp_path / "gate")
    assert gate.pending() == (admitted.check_in,)
    again = at + timedelta(minutes=5)
    second = gate.check(_qr(gate, visitor, visitor_pass, again), now=again)
    assert gate.pending() == (admitted.check_in, second.check_in)

    # Back online (the chain's clock must have reached the check times first).
    link.up = True
    pending = gate.pending()
    args = gate.batch_args(pending)
    upload = world.ledger.tx(world.city.district, "visits", "check_in_batch", args)
    (included,) = world.ledger.block(upload, time_ms=int(again.timestamp() * 1000)).included
    first = included.receipt
    assert first.ok, first.message
    assert [e.data["count"] for e in first.events] == [2]
    # The receipt was lost before mark_uploaded: sending again records nothing twice.
    resent = world.ledger.send(world.city.district, "visits", "check_in_batch", args)
    assert resent.ok
    assert [e.data["count"] for e in resent.events] == [0]
    gate.mark_uploaded(pending)
    assert gate.pending() == ()
    assert _gate(tmp_path / "gate").pending() == ()

    site = {"agency": "district-office", "site": "main-gate"}
    assert world.chain.query("visits", "count", site) == 2
    records = world.chain.query("visits", "visits", {"visit": expected_visit})
    assert len(records) == 2
    stored = canonical_json(
        [v.decode() for k, v in world.city.state_rows().items() if k.startswith("visits/")]
    ).decode()
    for secret in [
        visitor.public.did,
        alice.public.did,
        credential_id(visitor_pass),
        str(visitor_pass["credentialSubject"]["district"]),
    ]:
        assert secret not in stored


def test_refusals_at_the_gate(
    world: World, alice: PrivateKey, visitor: PrivateKey, tmp_path: Path
) -> None:
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    gate, _ = _synced(world, tmp_path, [visitor_pass], world.now())
    at = start + timedelta(hours=1)

    qr = _qr(gate, visitor, visitor_pass, at)
    gate.check(qr, now=at)
    with pytest.raises(ChallengeError) as replayed:
        gate.check(qr, now=at + timedelta(seconds=5))
    assert replayed.value.reason == "replayed_challenge"

    other = _gate(tmp_path / "other-gate")
    with pytest.raises(ChallengeError) as foreign:
        gate.check(_qr(other, visitor, visitor_pass, at), now=at)
    assert foreign.value.reason == "unknown_challenge"

    for moment, reason in [
        (start - timedelta(minutes=10), "not_yet_valid"),
        (start + timedelta(hours=4, minutes=1), "expired"),
    ]:
        with pytest.raises(CredentialError) as outside:
            gate.check(_qr(gate, visitor, visitor_pass, moment), now=moment)
        assert outside.value.reason == reason

    shown = presentation(
        visitor,
        [copy.deepcopy(visitor_pass)],
        challenge=gate.new_challenge(at),
        domain=GATE,
        now=at,
    )
    shown["verifiableCredential"][0]["credentialSubject"]["district"] = "Elsewhere"
    with pytest.raises(CredentialError) as tampered:
        gate.check(to_qr_payload(shown), now=at)
    assert tampered.value.reason == "bad_proof_signature"
    with pytest.raises(CredentialError) as garbled:
        gate.check(qr[:-4] + "!!!!", now=at)
    assert garbled.value.reason == "malformed_credential"

    mallory = city_key("gate/mallory")
    with pytest.raises(VerificationError) as stolen:
        gate.check(_qr(gate, mallory, visitor_pass, at), now=at)
    assert stolen.value.reason == "wrong_holder"
    assert len(gate.pending()) == 1


def test_stale_snapshot_and_never_synced(
    world: World, alice: PrivateKey, visitor: PrivateKey, tmp_path: Path
) -> None:
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    never = _gate(tmp_path / "never")
    with pytest.raises(GateError) as unsynced:
        never.check(_qr(never, visitor, visitor_pass, start), now=start)
    assert unsynced.value.reason == "gate_not_synced"

    synced_at = world.now()
    gate, _ = _synced(
        world, tmp_path, [visitor_pass], synced_at, max_snapshot_age=timedelta(hours=2)
    )
    fine = synced_at + timedelta(hours=2)
    gate.check(_qr(gate, visitor, visitor_pass, fine), now=fine)
    late = fine + timedelta(milliseconds=1)
    with pytest.raises(GateError) as stale:
        gate.check(_qr(gate, visitor, visitor_pass, late), now=late)
    assert stale.value.reason == "gate_snapshot_stale"
    early = synced_at - timedelta(seconds=1)
    with pytest.raises(GateError) as behind:
        gate.check(_qr(gate, visitor, visitor_pass, early), now=early)
    assert behind.value.reason == "gate_clock_behind"


def test_revoked_before_sync(
    world: World, alice: PrivateKey, visitor: PrivateKey, tmp_path: Path
) -> None:
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    world.district.lists["revocation"].set(world.district.next_index)
    world.publish(world.district)
    link = Offline(world)
    gate = _gate(tmp_path / "gate")
    report = gate.sync(link.query, link.fetch, [visitor_pass], now=world.now())
    assert report.refused == ((credential_id(visitor_pass), "revoked"),)
    assert report.ready == ()
    link.up = False
    at = start + timedelta(minutes=1)
    with pytest.raises(VerificationError) as caught:
        gate.check(_qr(gate, visitor, visitor_pass, at), now=at)
    assert caught.value.reason == "revoked"
    assert gate.pending() == ()


def test_pass_from_an_unauthorised_issuer(
    world: World, visitor: PrivateKey, tmp_path: Path
) -> None:
    now = world.now()
    forged = issue_credential(
        visitor_pass_credential(
            issuer=world.archive.did,
            visitor=visitor.public.did,
            host=visitor.public.did,
            district="Riverside",
            valid_from=now,
            valid_until=now + timedelta(hours=2),
            status=world.archive.entry(),
        ),
        world.archive.did_key,
        verification_method=world.archive.method,
        now=now,
    )
    gate, _ = _synced(world, tmp_path, [forged], now)
    at = now + timedelta(minutes=1)
    with pytest.raises(IssuerNotAuthorized):
        gate.check(_qr(gate, visitor, forged, at), now=at)
    assert gate.pending() == ()


def test_a_pass_not_synced_is_refused_offline(
    world: World, alice: PrivateKey, visitor: PrivateKey, tmp_path: Path
) -> None:
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    gate, _ = _synced(world, tmp_path, [], world.now())
    with pytest.raises(DidResolutionError) as caught:
        gate.check(_qr(gate, visitor, visitor_pass, start), now=start)
    assert caught.value.code == "query_failed"
    assert isinstance(caught.value.__cause__, VerificationError)
    assert caught.value.__cause__.reason == "ledger_data_missing"


def test_torn_and_corrupt_queue(
    world: World, alice: PrivateKey, visitor: PrivateKey, tmp_path: Path
) -> None:
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    gate, _ = _synced(world, tmp_path, [visitor_pass], world.now())
    admitted = gate.check(_qr(gate, visitor, visitor_pass, start), now=start)
    queue = tmp_path / "gate" / "queue.jsonl"
    with queue.open("ab") as handle:
        handle.write(b'{"check_in": {"site": "main-ga')
    assert _gate(tmp_path / "gate").pending() == (admitted.check_in,)
    assert queue.read_bytes().endswith(b"\n")
    with queue.open("ab") as handle:
        handle.write(json.dumps({"check_in": {"site": 1}}).encode() + b"\n")
    with pytest.raises(GateError) as corrupt:
        _gate(tmp_path / "gate")
    assert corrupt.value.reason == "gate_queue_corrupt"
    assert from_qr_payload(to_qr_payload({"a": 1})) == {"a": 1}
