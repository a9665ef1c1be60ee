"""The city's credential flows end to end on a real Chain, and every way a verifier says no.

Agencies publish ``did:civic`` documents on the ledger, root grants them credential types, and
each anchors the digest of its status lists. Citizens hold ``did:key`` keys that never touch
the ledger. The last test reads the whole database and finds none of the personal data.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from civicledger.crypto.encoding import b64url, from_b64url
from civicledger.crypto.keys import PrivateKey
from civicledger.node.chain import Chain
from civicledger.services.identity.credentials import (
    FAMILY_LOVE_CARD,
    RESIDENT_CARD,
    family_love_card_claims,
    from_qr_payload,
    qualification_credential,
    resident_card_claims,
    to_qr_payload,
    visitor_pass_credential,
)
from civicledger.services.identity.data_integrity import (
    add_proof,
    issue_credential,
    sign_presentation,
)
from civicledger.services.identity.issuers import (
    GRANT_CONTRACT,
    GRANT_METHOD,
    REVOKE_METHOD,
    IssuerNotAuthorized,
)
from civicledger.services.identity.resolver import DidResolutionError
from civicledger.services.identity.sdjwt import issue_sd_jwt_vc, present
from civicledger.services.identity.status_list import (
    StatusEntry,
    StatusError,
    StatusList,
    list_credential_digest,
    status_list_credential,
)
from civicledger.services.identity.vc import VC_V2_CONTEXT, CredentialError
from civicledger.services.identity.verifier import (
    ChallengeError,
    RecordingLedger,
    VerificationError,
    Verifier,
)
from civicledger.services.registry import city_registry
from conftest import City, Ledger, city_key, make_city

LIBRARY = "https://library.testville.example"
GATE = "https://gate.maple-towers.testville.example"

ALICE_NAME = ("Minji", "Kimura-Park")
ALICE_BIRTHDATE = date(1990, 4, 17)
ALICE_ADDRESS = "12 Maple Lane, Apt 3, Testville"
ALICE_PHONE = "+82-10-5555-0147"
KOREAN_NAME = "김민지"
CHILDREN = [date(2010, 2, 1), date(2014, 6, 30), date(2019, 11, 5)]
PERSONAL_DATA = [
    "Minji",
    "Kimura-Park",
    "1990-04-17",
    "19900417",
    "12 Maple Lane",
    "Maple Lane",
    ALICE_PHONE,
    "5555-0147",
    KOREAN_NAME,
    "2010-02-01",
    "2014-06-30",
    "2019-11-05",
]


@dataclass
class Agency:
    """An issuing agency: its DID key (off-ledger secret), its ledger key, its status lists."""

    name: str
    did_key: PrivateKey
    ledger_key: PrivateKey
    lists: dict[str, StatusList] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    next_index: int = 7

    @property
    def did(self) -> str:
        return f"did:civic:{self.name}"

    @property
    def method(self) -> str:
        return self.did + "#key-1"

    def list_url(self, purpose: str) -> str:
        return f"https://{self.name}.testville.example/status/{purpose}/1"

    def entry(self, purpose: str = "revocation") -> StatusEntry:
        self.next_index += 1
        return StatusEntry.for_index(self.list_url(purpose), self.next_index, purpose)  # type: ignore[arg-type]


class World:
    """Testville with three issuing agencies whose DIDs, grants and lists are on the ledger."""

    def __init__(self, city: City, chain: Chain, ledger: Ledger) -> None:
        self.city, self.chain, self.ledger = city, chain, ledger
        self.published: dict[str, list[dict[str, Any]]] = {}
        self.hall = Agency("city-hall", city_key("vf/hall"), city.clerk)
        self.archive = Agency("archive", city_key("vf/archive"), city.archivist)
        self.district = Agency("district-office", city_key("vf/district"), city.district)
        for agency in (self.hall, self.archive, self.district):
            args = {"agency": agency.name, "keys": [agency.did_key.public.did]}
            self.send(agency.ledger_key, "did_registry", "create", args)
        for agency, kind in [
            (self.hall, "ResidentCard"),
            (self.hall, "FamilyLoveCard"),
            (self.archive, "Qualification"),
            (self.district, "VisitorPass"),
        ]:
            self.send(
                city.root,
                GRANT_CONTRACT,
                GRANT_METHOD,
                {"agency": agency.name, "credential_type": kind},
            )
        for agency in (self.hall, self.archive, self.district):
            for purpose in ("revocation", "suspension"):
                agency.lists[purpose] = StatusList(purpose)
                self.publish(agency, purpose)

    def send(self, key: PrivateKey, contract: str, method: str, args: dict[str, Any]) -> None:
        receipt = self.ledger.send(key, contract, method, args)
        assert receipt.ok, receipt.message

    def now(self, seconds: float = 0) -> datetime:
        head = datetime.fromtimestamp(self.chain.head.header.time_ms / 1000, UTC)
        return head + timedelta(seconds=seconds)

    def publish(self, agency: Agency, purpose: str = "revocation") -> dict[str, Any]:
        """Sign the list credential, publish it at its URL and anchor its digest."""
        url = agency.list_url(purpose)
        now = self.now()
        document = status_list_credential(
            agency.lists[purpose],
            credential_id=url,
            issuer=agency.did,
            sign=lambda d: issue_credential(
                d, agency.did_key, verification_method=agency.method, now=now
            ),
        )
        version = agency.versions.get(purpose, 0) + 1
        agency.versions[purpose] = version
        self.send(
            agency.ledger_key,
            "status_lists",
            "anchor",
            {
                "agency": agency.name,
                "list_id": url,
                "purpose": purpose,
                "digest": list_credential_digest(document),
                "version": version,
            },
        )
        self.published.setdefault(url, []).append(document)
        return document

    def fetch(self, url: str) -> Any:
        """The issuer's web server: the latest published list (a copy, as over the wire)."""
        return copy.deepcopy(self.published[url][-1])

    def verifier(self, domain: str = LIBRARY, **options: Any) -> Verifier:
        return Verifier(self.chain.query, self.fetch, domain=domain, **options)

    # -- issuing ---------------------------------------------------------------------------------

    def resident_card(self, holder: PrivateKey, *, agency: Agency | None = None) -> str:
        agency = agency or self.hall
        now = self.now()
        claims, disclosable = resident_card_claims(
            given_name=ALICE_NAME[0],
            family_name=ALICE_NAME[1],
            birthdate=ALICE_BIRTHDATE,
            address=ALICE_ADDRESS,
            district="Riverside",
            status=agency.entry(),
            on=now.date(),
        )
        claims["phone"] = ALICE_PHONE
        claims["name_hangul"] = KOREAN_NAME
        return issue_sd_jwt_vc(
            claims,
            issuer_key=agency.did_key,
            issuer=agency.did,
            vct=RESIDENT_CARD.vct,
            holder=holder.public,
            disclosable=[*disclosable, "phone", "name_hangul"],
            issued_at=now,
            expires_at=now + timedelta(days=365),
        )

    def qualification(
        self,
        holder: str,
        *,
        agency: Agency | None = None,
        status: StatusEntry | None = None,
        created: datetime | None = None,
        method: str | None = None,
        key: PrivateKey | None = None,
    ) -> dict[str, Any]:
        agency = agency or self.archive
        created = created or self.now()
        credential = qualification_credential(
            issuer=agency.did,
            holder=holder,
            qualification="Licensed electrician, class 1",
            license_number="EL-2023-0042",
            valid_from=created,
            valid_until=created + timedelta(days=3 * 365),
            status=status or agency.entry(),
        )
        return issue_credential(
            credential,
            key or agency.did_key,
            verification_method=method or agency.method,
            now=created,
        )


def did_key_method(key: PrivateKey) -> str:
    did = key.public.did
    return f"{did}#{did[len('did:key:') :]}"


def presentation(
    holder: PrivateKey,
    credentials: list[dict[str, Any]],
    *,
    challenge: str,
    domain: str,
    now: datetime,
) -> dict[str, Any]:
    unsigned = {
        "@context": [VC_V2_CONTEXT],
        "type": ["VerifiablePresentation"],
        "holder": holder.public.did,
        "verifiableCredential": credentials,
    }
    return sign_presentation(
        unsigned,
        holder,
        verification_method=did_key_method(holder),
        now=now,
        challenge=challenge,
        domain=domain,
    )


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def world(city: City, chain: Chain, ledger: Ledger) -> World:
    return World(city, chain, ledger)


@pytest.fixture
def alice() -> PrivateKey:
    return city_key("vf/citizen/alice")


@pytest.fixture
def mallory() -> PrivateKey:
    return city_key("vf/citizen/mallory")


# -- flows -----------------------------------------------------------------------------------------


def test_resident_card_selective_disclosure(world: World, alice: PrivateKey) -> None:
    card = world.resident_card(alice)
    verifier = world.verifier()
    now = world.now(60)
    challenge = verifier.new_challenge(now)
    shown = present(
        card,
        disclose=["age_over_19", "district"],
        holder_key=alice,
        audience=LIBRARY,
        nonce=challenge,
        now=now,
    )
    verified = verifier.verify_sd_jwt(shown, now=now, expected_type="ResidentCard")
    assert verified.credential_type == "ResidentCard"
    assert verified.issuer == world.hall.did
    assert verified.holder == alice.public.did
    assert dict(verified.claims) == {"age_over_19": True, "district": "Riverside"}
    latest = world.chain.query(
        "status_lists",
        "latest",
        {"agency": "city-hall", "list_id": world.hall.list_url("revocation")},
    )
    assert verified.status is not None
    assert verified.status.list_digest == latest["digest"]
    assert not verified.status.revoked
    for secret in PERSONAL_DATA:
        assert secret not in shown.split("~", 1)[1]


def test_qualification_verified_by_another_agency_without_the_issuer(
    world: World, alice: PrivateKey
) -> None:
    credential = world.qualification(alice.public.did)
    asked: list[tuple[str, str]] = []
    fetched: list[str] = []

    def query(contract: str, method: str, args: dict[str, Any]) -> Any:
        asked.append((contract, method))
        return world.chain.query(contract, method, args)

    def fetch(url: str) -> Any:
        fetched.append(url)
        return world.fetch(url)

    verifier = Verifier(query, fetch, domain="https://district-office.testville.example")
    now = world.now(120)
    shown = presentation(
        alice,
        [credential],
        challenge=verifier.new_challenge(now),
        domain=verifier.domain,
        now=now,
    )
    (verified,) = verifier.verify_presentation(shown, now=now, expected_type="Qualification")
    assert verified.issuer == world.archive.did
    assert verified.claims["qualification"] == "Licensed electrician, class 1"
    assert verified.holder == alice.public.did
    # Only the ledger and the archive's static list publication were consulted.
    assert {c for c, _ in asked} == {"did_registry", "governance", "status_lists"}
    assert fetched == [world.archive.list_url("revocation")]


def test_family_love_card(world: World, alice: PrivateKey) -> None:
    now = world.now()
    claims, disclosable = family_love_card_claims(
        children_birthdates=CHILDREN, status=world.hall.entry(), on=now.date()
    )
    card = issue_sd_jwt_vc(
        claims,
        issuer_key=world.hall.did_key,
        issuer=world.hall.did,
        vct=FAMILY_LOVE_CARD.vct,
        holder=alice.public,
        disclosable=disclosable,
        issued_at=now,
        expires_at=now + timedelta(days=365),
    )
    verifier = world.verifier("https://museum.testville.example")
    later = world.now(30)
    shown = present(
        card,
        disclose=disclosable,
        holder_key=alice,
        audience=verifier.domain,
        nonce=verifier.new_challenge(later),
        now=later,
    )
    verified = verifier.verify_sd_jwt(shown, now=later)
    assert verified.credential_type == "FamilyLoveCard"
    assert dict(verified.claims) == {"children_count": 3, "youngest_under_19": True}


@pytest.mark.parametrize(
    "children",
    [CHILDREN[:2], [date(1990, 1, 1), date(1992, 1, 1), date(1995, 1, 1)]],
    ids=["two_children", "youngest_adult"],
)
def test_family_love_card_refused_to_ineligible_families(
    world: World, children: list[date]
) -> None:
    with pytest.raises(CredentialError) as caught:
        family_love_card_claims(
            children_birthdates=children, status=world.hall.entry(), on=date(2024, 1, 1)
        )
    assert caught.value.reason == "malformed_credential"


def _visitor_pass(
    world: World, alice: PrivateKey, visitor: PrivateKey
) -> tuple[dict[str, Any], datetime]:
    """The district office verifies Alice's resident card, then issues a pass for her guest."""
    office = world.verifier("https://district-office.testville.example")
    now = world.now(10)
    shown = present(
        world.resident_card(alice),
        disclose=["district"],
        holder_key=alice,
        audience=office.domain,
        nonce=office.new_challenge(now),
        now=now,
    )
    host = office.verify_sd_jwt(shown, now=now, expected_type="ResidentCard")
    start = now + timedelta(hours=1)
    unsigned = visitor_pass_credential(
        issuer=world.district.did,
        visitor=visitor.public.did,
        host=host.holder,
        district=host.claims["district"],
        valid_from=start,
        valid_until=start + timedelta(hours=4),
        status=world.district.entry(),
    )
    # A pass is issued ahead of its window; ``issue_credential`` checks validity at signing
    # time, so the proof is added directly.
    issued = add_proof(
        unsigned, world.district.did_key, verification_method=world.district.method, created=now
    )
    return issued, start


def test_visitor_pass_qr_checked_offline_at_the_gate(
    world: World, alice: PrivateKey, mallory: PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    visitor = city_key("vf/citizen/visitor")
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    assert visitor_pass["credentialSubject"]["host"] == alice.public.did

    # Online, when the day's passes arrive, the gate checks each and records what it read.
    recording = RecordingLedger(world.chain.query, world.fetch)
    sync = Verifier(recording.query, recording.fetch, domain=GATE)
    sync.verify_credential(visitor_pass, now=start, expected_type="VisitorPass")
    snapshot = recording.snapshot()

    def no_network(*_: Any) -> Any:
        raise AssertionError("the gate is offline")

    monkeypatch.setattr(world.chain, "query", no_network)
    monkeypatch.setattr(world, "fetch", no_network)
    gate = Verifier(snapshot.query, snapshot.fetch, domain=GATE)

    at_door = start + timedelta(hours=2)
    shown = presentation(
        visitor,
        [visitor_pass],
        challenge=gate.new_challenge(at_door),
        domain=GATE,
        now=at_door,
    )
    qr = to_qr_payload(shown)
    assert qr.isascii()
    (verified,) = gate.verify_presentation(from_qr_payload(qr), now=at_door)
    assert verified.credential_type == "VisitorPass"
    assert verified.holder == visitor.public.did
    assert verified.claims["host"] == alice.public.did

    early = start - timedelta(minutes=10)
    shown = presentation(
        visitor, [visitor_pass], challenge=gate.new_challenge(early), domain=GATE, now=early
    )
    with pytest.raises(CredentialError) as caught:
        gate.verify_presentation(from_qr_payload(to_qr_payload(shown)), now=early)
    assert caught.value.reason == "not_yet_valid"

    late = start + timedelta(hours=4, minutes=1)
    shown = presentation(
        visitor, [visitor_pass], challenge=gate.new_challenge(late), domain=GATE, now=late
    )
    with pytest.raises(CredentialError) as caught:
        gate.verify_presentation(shown, now=late)
    assert caught.value.reason == "expired"

    # Mallory copies the QR code's pass, but cannot sign as the visitor.
    shown = presentation(
        mallory, [visitor_pass], challenge=gate.new_challenge(at_door), domain=GATE, now=at_door
    )
    with pytest.raises(VerificationError) as wrong:
        gate.verify_presentation(shown, now=at_door)
    assert wrong.value.reason == "wrong_holder"


def test_offline_gate_refuses_a_pass_it_never_synced(world: World, alice: PrivateKey) -> None:
    visitor = city_key("vf/citizen/visitor")
    visitor_pass, start = _visitor_pass(world, alice, visitor)
    gate = Verifier(
        RecordingLedger(world.chain.query, world.fetch).snapshot().query, world.fetch, domain=GATE
    )
    shown = presentation(
        visitor, [visitor_pass], challenge=gate.new_challenge(start), domain=GATE, now=start
    )
    with pytest.raises(DidResolutionError) as caught:
        gate.verify_presentation(shown, now=start)
    assert caught.value.code == "query_failed"
    assert isinstance(caught.value.__cause__, VerificationError)
    assert caught.value.__cause__.reason == "ledger_data_missing"


def test_qr_payload_round_trip_and_refusals(world: World, alice: PrivateKey) -> None:
    credential = world.qualification(alice.public.did)
    assert from_qr_payload(to_qr_payload(credential)) == credential
    for bad in ["", "not base64!", b64url(b"[1, 2]"), b64url(b'{"a": 1.5}'), "A" * 3000]:
        with pytest.raises(CredentialError) as caught:
            from_qr_payload(bad)
        assert caught.value.reason == "malformed_credential"


# -- refusals ------------------------------------------------------------------------------------


def _present_qualification(
    world: World,
    verifier: Verifier,
    holder: PrivateKey,
    credential: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return presentation(
        holder, [credential], challenge=verifier.new_challenge(now), domain=verifier.domain, now=now
    )


def test_tampered_credential_signature(world: World, alice: PrivateKey) -> None:
    credential = world.qualification(alice.public.did)
    credential["credentialSubject"]["qualification"] = "Licensed gas engineer"
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(CredentialError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, now), now=now
        )
    assert caught.value.reason == "bad_proof_signature"


def test_unknown_did(world: World, alice: PrivateKey) -> None:
    ghost = Agency("ghost-agency", city_key("vf/ghost"), world.city.outsider)
    credential = world.qualification(alice.public.did, agency=ghost, status=world.archive.entry())
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(DidResolutionError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, now), now=now
        )
    assert caught.value.code == "not_found"


def test_key_not_valid_at_issuance_time(world: World, alice: PrivateKey) -> None:
    backdated = world.now()
    second = city_key("vf/archive/2")
    world.send(
        world.city.archivist,
        "did_registry",
        "add_key",
        {"agency": "archive", "key": second.public.did},
    )
    credential = world.qualification(
        alice.public.did, created=backdated, method=world.archive.did + "#key-2", key=second
    )
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(DidResolutionError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, now), now=now
        )
    assert caught.value.code == "not_valid_at_time"


def test_revoked_issuer_key_refuses_even_old_credentials(world: World, alice: PrivateKey) -> None:
    credential = world.qualification(alice.public.did)
    second = city_key("vf/archive/2")
    world.send(
        world.city.archivist,
        "did_registry",
        "rotate_key",
        {"agency": "archive", "method": "#key-1", "key": second.public.did, "revoked": True},
    )
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(DidResolutionError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, now), now=now
        )
    assert caught.value.code == "revoked"


def test_issuer_not_authorized_for_the_type(world: World, alice: PrivateKey) -> None:
    now = world.now()
    unsigned = visitor_pass_credential(
        issuer=world.archive.did,
        visitor=alice.public.did,
        host=alice.public.did,
        district="Riverside",
        valid_from=now,
        valid_until=now + timedelta(hours=2),
        status=world.archive.entry(),
    )
    forged = issue_credential(
        unsigned, world.archive.did_key, verification_method=world.archive.method, now=now
    )
    verifier = world.verifier()
    later = world.now(5)
    with pytest.raises(IssuerNotAuthorized) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, forged, later), now=later
        )
    assert caught.value.reason == "issuer_not_authorized"


def test_grant_revoked_after_issuance_keeps_old_credentials(
    world: World, alice: PrivateKey
) -> None:
    credential = world.qualification(alice.public.did)
    world.send(
        world.city.root,
        GRANT_CONTRACT,
        REVOKE_METHOD,
        {"agency": "archive", "credential_type": "Qualification"},
    )
    verifier = world.verifier()
    now = world.now(5)
    (verified,) = verifier.verify_presentation(
        _present_qualification(world, verifier, alice, credential, now), now=now
    )
    assert verified.credential_type == "Qualification"
    after = world.qualification(alice.public.did)
    with pytest.raises(IssuerNotAuthorized):
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, after, now), now=now
        )


def test_deactivated_agency_keeps_old_credentials_but_cannot_issue_new_ones(
    world: World, alice: PrivateKey
) -> None:
    before = world.qualification(alice.public.did)
    world.send(world.city.root, "governance", "deactivate_agency", {"agency": "archive"})
    deactivated_ms = world.chain.head.header.time_ms
    # The archive's DID document and its key are untouched; only its issuer right ended.
    after = world.qualification(alice.public.did)
    assert after["validFrom"] != before["validFrom"]
    verifier = world.verifier()
    now = world.now(5)
    (verified,) = verifier.verify_presentation(
        _present_qualification(world, verifier, alice, before, now), now=now
    )
    assert (verified.issuer, verified.credential_type) == (world.archive.did, "Qualification")
    with pytest.raises(
        IssuerNotAuthorized, match=f"may not issue Qualification at {deactivated_ms}"
    ):
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, after, now), now=now
        )


def test_revoked_and_as_of(world: World, alice: PrivateKey) -> None:
    entry = world.archive.entry()
    credential = world.qualification(alice.public.did, status=entry)
    before = world.chain.head.header.time_ms
    world.archive.lists["revocation"].set(entry.index)
    world.publish(world.archive)
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(VerificationError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, now), now=now
        )
    assert caught.value.reason == "revoked"

    # As of before the revocation, with the list then published, it was good.
    url = world.archive.list_url("revocation")
    old = Verifier(world.chain.query, lambda _u: world.published[url][0], domain=LIBRARY)
    shown = _present_qualification(world, old, alice, credential, now)
    (verified,) = old.verify_presentation(shown, now=now, status_as_of_ms=before)
    assert verified.status is not None
    assert not verified.status.revoked
    # The old list is stale against the latest anchor.
    shown = _present_qualification(world, old, alice, credential, now)
    with pytest.raises(StatusError) as stale:
        old.verify_presentation(shown, now=now)
    assert stale.value.reason == "status_list_mismatch"


def test_suspended(world: World, alice: PrivateKey) -> None:
    entry = world.archive.entry("suspension")
    credential = world.qualification(alice.public.did, status=entry)
    world.archive.lists["suspension"].set(entry.index)
    world.publish(world.archive, "suspension")
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(VerificationError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, now), now=now
        )
    assert caught.value.reason == "suspended"


def test_resident_card_revoked(world: World, alice: PrivateKey) -> None:
    card = world.resident_card(alice)
    world.hall.lists["revocation"].set(world.hall.next_index)
    world.publish(world.hall)
    verifier = world.verifier()
    now = world.now(5)
    shown = present(
        card,
        disclose=["age_over_19"],
        holder_key=alice,
        audience=LIBRARY,
        nonce=verifier.new_challenge(now),
        now=now,
    )
    with pytest.raises(VerificationError) as caught:
        verifier.verify_sd_jwt(shown, now=now)
    assert caught.value.reason == "revoked"


def test_unanchored_list_and_missing_status(world: World, alice: PrivateKey) -> None:
    unanchored = StatusEntry.for_index(
        "https://archive.testville.example/status/revocation/99", 3, "revocation"
    )
    credential = world.qualification(alice.public.did, status=unanchored)
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(StatusError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, now), now=now
        )
    assert caught.value.reason == "status_list_unanchored"

    unsigned = qualification_credential(
        issuer=world.archive.did,
        holder=alice.public.did,
        qualification="Social welfare worker",
        license_number="SW-1",
        valid_from=world.now(),
        valid_until=world.now(3600),
        status=world.archive.entry(),
    )
    del unsigned["credentialStatus"]
    bare = issue_credential(
        unsigned, world.archive.did_key, verification_method=world.archive.method, now=world.now()
    )
    with pytest.raises(VerificationError) as missing:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, bare, now), now=now
        )
    assert missing.value.reason == "missing_status"


def test_unknown_credential_type(world: World, alice: PrivateKey) -> None:
    credential = world.qualification(alice.public.did)
    del credential["proof"]
    credential["type"] = ["VerifiableCredential", "LibraryCard"]
    signed = issue_credential(
        credential, world.archive.did_key, verification_method=world.archive.method, now=world.now()
    )
    verifier = world.verifier()
    now = world.now(5)
    with pytest.raises(VerificationError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, signed, now), now=now
        )
    assert caught.value.reason == "unknown_credential_type"


def test_expired_sd_jwt(world: World, alice: PrivateKey) -> None:
    card = world.resident_card(alice)
    verifier = world.verifier()
    late = world.now(366 * 24 * 3600)
    shown = present(
        card,
        disclose=["district"],
        holder_key=alice,
        audience=LIBRARY,
        nonce=verifier.new_challenge(late),
        now=late,
    )
    with pytest.raises(CredentialError) as caught:
        verifier.verify_sd_jwt(shown, now=late)
    assert caught.value.reason == "expired"


def test_expired_qualification(world: World, alice: PrivateKey) -> None:
    credential = world.qualification(alice.public.did)
    verifier = world.verifier()
    late = world.now(4 * 365 * 24 * 3600)
    with pytest.raises(CredentialError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, alice, credential, late), now=late
        )
    assert caught.value.reason == "expired"


def test_challenges_replayed_unknown_expired(world: World, alice: PrivateKey) -> None:
    card = world.resident_card(alice)
    verifier = world.verifier()
    now = world.now(5)
    shown = present(
        card,
        disclose=["district"],
        holder_key=alice,
        audience=LIBRARY,
        nonce=verifier.new_challenge(now),
        now=now,
    )
    verifier.verify_sd_jwt(shown, now=now)
    with pytest.raises(ChallengeError) as replayed:
        verifier.verify_sd_jwt(shown, now=now)
    assert replayed.value.reason == "replayed_challenge"

    other = world.verifier()
    foreign = present(
        card,
        disclose=["district"],
        holder_key=alice,
        audience=LIBRARY,
        nonce=other.new_challenge(now),
        now=now,
    )
    with pytest.raises(ChallengeError) as unknown:
        verifier.verify_sd_jwt(foreign, now=now)
    assert unknown.value.reason == "unknown_challenge"

    credential = world.qualification(alice.public.did)
    stale = _present_qualification(world, verifier, alice, credential, now)
    later = now + timedelta(minutes=6)
    with pytest.raises(ChallengeError) as expired:
        verifier.verify_presentation(stale, now=later)
    assert expired.value.reason == "expired_challenge"
    with pytest.raises(ChallengeError) as again:
        verifier.verify_presentation(stale, now=later)
    assert again.value.reason == "replayed_challenge"


def test_wrong_holder(world: World, alice: PrivateKey, mallory: PrivateKey) -> None:
    verifier = world.verifier()
    now = world.now(5)
    credential = world.qualification(alice.public.did)
    with pytest.raises(VerificationError) as caught:
        verifier.verify_presentation(
            _present_qualification(world, verifier, mallory, credential, now), now=now
        )
    assert caught.value.reason == "wrong_holder"

    card = world.resident_card(alice)
    stolen = present(
        card,
        disclose=["district"],
        holder_key=mallory,
        audience=LIBRARY,
        nonce=verifier.new_challenge(now),
        now=now,
    )
    with pytest.raises(CredentialError) as binding:
        verifier.verify_sd_jwt(stolen, now=now)
    assert binding.value.reason == "bad_key_binding"


def test_wrong_domain(world: World, alice: PrivateKey) -> None:
    verifier = world.verifier()
    now = world.now(5)
    credential = world.qualification(alice.public.did)
    shown = presentation(
        alice,
        [credential],
        challenge=verifier.new_challenge(now),
        domain="https://elsewhere.example",
        now=now,
    )
    with pytest.raises(CredentialError) as caught:
        verifier.verify_presentation(shown, now=now)
    assert caught.value.reason == "wrong_domain"


def test_tampered_disclosure(world: World, alice: PrivateKey) -> None:
    card = world.resident_card(alice)
    verifier = world.verifier()
    now = world.now(5)
    shown = present(
        card,
        disclose=["district"],
        holder_key=alice,
        audience=LIBRARY,
        nonce=verifier.new_challenge(now),
        now=now,
    )
    parts = shown.split("~")
    salt = json.loads(from_b64url(parts[1]))[0]
    parts[1] = b64url(json.dumps([salt, "district", "Hilltop"]).encode())
    with pytest.raises(CredentialError) as caught:
        verifier.verify_sd_jwt("~".join(parts), now=now)
    assert caught.value.reason == "unreferenced_disclosure"


# -- no personal data on the ledger --------------------------------------------------------------


def _every_value(db_path: Path) -> Iterator[bytes]:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        yield value
                    elif isinstance(value, str):
                        yield value.encode()


def test_no_personal_data_anywhere_in_the_ledger(world: World, alice: PrivateKey) -> None:
    test_resident_card_selective_disclosure(world, alice)
    visitor = city_key("vf/citizen/visitor")
    _visitor_pass(world, alice, visitor)
    entry = world.hall.entry()
    world.hall.lists["revocation"].set(entry.index)
    world.publish(world.hall)

    values = list(_every_value(world.city.db_path))
    blob = b"\x00".join(values)
    files = b"".join(p.read_bytes() for p in world.city.data_dir.rglob("*") if p.is_file())
    # The scan sees what is there: the agencies' DIDs and list URLs are public and present.
    assert world.hall.did.encode() in blob
    assert world.hall.list_url("revocation").encode() in blob
    for secret in PERSONAL_DATA:
        for form in {secret.encode(), json.dumps(secret).strip('"').encode()}:
            assert form not in blob, secret
            assert form not in files, secret
    assert alice.public.did.encode() not in blob
