"""The off-ledger issuer service end to end on a real city directory (keystore, embedded node).

An agency creates its DID, root grants it types, it issues credentials with status indices from
its own lists (kept in its SQLite register in the city directory, 0600), revokes one (new list
version anchored), and a verifier reading the local ledger and the directory's lists accepts,
then refuses. No personal data reaches the ledger. The register itself: test_issuer_store.py.
"""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import pytest

from civicledger.agency.issuer import (
    IssuerError,
    IssuerService,
    create_did,
    identity_dir,
    revoke_issuer,
    save_credential,
)
from civicledger.agency.ledger import CityLedger
from civicledger.agency.verifying import ChallengeStore, verify_file
from civicledger.city import CityDir
from civicledger.crypto.keys import PrivateKey
from civicledger.node.chain import Chain
from civicledger.services.identity.data_integrity import sign_presentation
from civicledger.services.identity.issuers import IssuerNotAuthorized
from civicledger.services.identity.sdjwt import present
from civicledger.services.identity.status_list import StatusList
from civicledger.services.identity.vc import VC_V2_CONTEXT
from civicledger.services.identity.verifier import ChallengeError, VerificationError
from identity_samples import PERSONAL, RESIDENT, issuing_city

DOMAIN = "https://library.testville.example"
HOLDER = PrivateKey.from_seed(bytes(range(1, 33)))


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def city(tmp_path: Path) -> CityDir:
    # The archive asserts with a key of its own, apart from its ledger key.
    return issuing_city(tmp_path / "city", did_keys={"archive": "archive-did"})


def _latest(city: CityDir, agency: str, list_id: str) -> dict[str, object]:
    chain = Chain(city.data_path)
    try:
        answer = chain.query("status_lists", "latest", {"agency": agency, "list_id": list_id})
    finally:
        chain.close()
    assert isinstance(answer, dict)
    return answer


def _present_card(city: CityDir, card: str, disclose: list[str]) -> tuple[str, str]:
    challenge = ChallengeStore(city).new(DOMAIN, now())
    shown = present(
        card, disclose=disclose, holder_key=HOLDER, audience=DOMAIN, nonce=challenge, now=now()
    )
    return shown, challenge


def test_resident_card_issue_verify_revoke(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), "city-hall", rng=Random(7))
    issued = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    assert isinstance(issued.credential, str)
    record = hall.status_list()
    (entry,) = hall.issued()
    assert (entry.list_id, entry.index, entry.holder) == (
        issued.list_id,
        issued.index,
        HOLDER.public.did,
    )
    assert entry.revoked_at is None
    assert record["anchored"] is True
    assert record["version"] == 1
    assert record["allocated_count"] == 1
    path = identity_dir(city, "city-hall") / "issuer.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _latest(city, "city-hall", issued.list_id)["digest"] == record["digest"]

    shown, challenge = _present_card(city, issued.credential, ["age_over_19", "district"])
    (verified,) = verify_file(
        CityLedger(city), shown, challenge=challenge, domain=DOMAIN, now=now()
    )
    assert verified.credential_type == "ResidentCard"
    assert dict(verified.claims) == {"age_over_19": True, "district": "Riverside"}
    assert verified.status is not None
    assert verified.status.list_digest == record["digest"]

    revoked = hall.revoke(issued.credential)
    assert revoked.index == issued.index
    assert revoked.published.version == 2
    assert _latest(city, "city-hall", issued.list_id)["digest"] == revoked.published.digest
    shown, challenge = _present_card(city, issued.credential, ["district"])
    with pytest.raises(VerificationError) as caught:
        verify_file(CityLedger(city), shown, challenge=challenge, domain=DOMAIN, now=now())
    assert caught.value.reason == "revoked"
    assert hall.issued()[0].revoked_at is not None
    with pytest.raises(IssuerError) as again:
        hall.revoke(issued.credential)
    assert again.value.reason == "already_revoked"


def test_qualification_with_separate_did_key_and_challenges(city: CityDir) -> None:
    archive = IssuerService(CityLedger(city), "archive")
    claims = {"qualification": "Licensed electrician", "license_number": "EL-2023-0042"}
    first = archive.issue("Qualification", HOLDER.public.did, claims)
    second = archive.issue("Qualification", HOLDER.public.did, claims)
    assert first.index != second.index
    assert isinstance(first.credential, dict)
    assert first.credential["proof"]["verificationMethod"] == "did:civic:archive#key-1"

    store = ChallengeStore(city)
    challenge = store.new(DOMAIN, now())
    shown = sign_presentation(
        {
            "@context": [VC_V2_CONTEXT],
            "type": ["VerifiablePresentation"],
            "holder": HOLDER.public.did,
            "verifiableCredential": [first.credential],
        },
        HOLDER,
        verification_method=f"{HOLDER.public.did}#{HOLDER.public.did[len('did:key:') :]}",
        now=now(),
        challenge=challenge,
        domain=DOMAIN,
    )
    (verified,) = verify_file(
        CityLedger(city), shown, challenge=challenge, domain=DOMAIN, now=now()
    )
    assert verified.claims["licenseNumber"] == "EL-2023-0042"
    with pytest.raises(ChallengeError) as replayed:
        verify_file(CityLedger(city), shown, challenge=challenge, domain=DOMAIN, now=now())
    assert replayed.value.reason == "replayed_challenge"
    with pytest.raises(ChallengeError) as unknown:
        verify_file(CityLedger(city), shown, challenge="not-issued", domain=DOMAIN, now=now())
    assert unknown.value.reason == "unknown_challenge"
    late = store.new(DOMAIN, now())
    with pytest.raises(ChallengeError) as other_domain:
        store.consume(late, "https://elsewhere.example", int(now().timestamp() * 1000))
    assert other_domain.value.reason == "unknown_challenge"
    expired = store.new(DOMAIN, now())
    with pytest.raises(ChallengeError) as too_late:
        store.consume(expired, DOMAIN, int((now() + timedelta(minutes=6)).timestamp() * 1000))
    assert too_late.value.reason == "expired_challenge"

    # The city hall cannot revoke the archive's credential.
    with pytest.raises(IssuerError) as foreign:
        IssuerService(CityLedger(city), "city-hall").revoke(first.credential)
    assert foreign.value.reason == "not_our_credential"


def test_refusals(city: CityDir, tmp_path: Path) -> None:
    hall = IssuerService(CityLedger(city), "city-hall")
    with pytest.raises(IssuerNotAuthorized):
        hall.issue(
            "Qualification",
            HOLDER.public.did,
            {"qualification": "x", "license_number": "y"},
        )
    with pytest.raises(IssuerError) as missing:
        hall.issue("ResidentCard", HOLDER.public.did, {"given_name": "A"})
    assert missing.value.reason == "bad_claims"
    with pytest.raises(IssuerError) as unknown_type:
        hall.issue("LibraryCard", HOLDER.public.did, {})
    assert unknown_type.value.reason == "bad_claims"
    with pytest.raises(IssuerError) as not_did_key:
        hall.issue("ResidentCard", "did:civic:archive", RESIDENT)
    assert not_did_key.value.reason == "bad_claims"
    with pytest.raises(IssuerError) as no_did:
        IssuerService(CityLedger(city), "no-such-agency").issue(
            "ResidentCard", HOLDER.public.did, RESIDENT
        )
    assert no_did.value.reason == "no_did"
    with pytest.raises(IssuerError) as twice:
        create_did(CityLedger(city), "city-hall")
    assert twice.value.reason == "did_exists"

    revoke_issuer(CityLedger(city), "city-hall", "ResidentCard")
    with pytest.raises(IssuerNotAuthorized):
        hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    with pytest.raises(IssuerError) as not_granted:
        revoke_issuer(CityLedger(city), "city-hall", "ResidentCard")
    assert not_granted.value.reason == "not_granted"


def test_publish_list_and_interrupted_publication(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), "city-hall")
    issued = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    published = hall.publish_list()
    assert published.version == 2
    # A crash after anchoring, before marking it: the next call finishes it, no new version.
    path = identity_dir(city, "city-hall") / "issuer.sqlite"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE lists SET anchored = 0")
    hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    after = hall.status_list()
    assert after["anchored"] is True
    assert after["version"] == 2
    assert after["allocated_count"] == 2
    assert len(hall.issued()) == 2
    assert _latest(city, "city-hall", issued.list_id)["version"] == 2
    # A revocation whose anchoring failed (bit set, not anchored) is finished by revoking again.
    bits = StatusList.decode(after["bits"], "revocation")
    bits.set(issued.index)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE lists SET bits = ?, anchored = 0", (bits.encode(),))
    finished = hall.revoke(issued.credential)
    assert finished.published.version == 3
    assert hall.status_list()["anchored"] is True
    with pytest.raises(IssuerError) as unknown:
        hall.publish_list("suspension-9")
    assert unknown.value.reason == "unknown_list"


def test_saved_credential_is_private_and_never_overwritten(city: CityDir, tmp_path: Path) -> None:
    issued = IssuerService(CityLedger(city), "city-hall").issue(
        "ResidentCard", HOLDER.public.did, RESIDENT
    )
    target = tmp_path / "card.sd-jwt"
    save_credential(target, issued.credential)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        save_credential(target, issued.credential)


def test_no_personal_data_in_the_ledger(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), "city-hall")
    issued = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    hall.revoke(issued.credential)
    IssuerService(CityLedger(city), "archive").issue(
        "Qualification",
        HOLDER.public.did,
        {"qualification": "Licensed electrician", "license_number": "EL-2023-0042"},
    )
    ledger = b"".join(p.read_bytes() for p in city.data_path.rglob("*") if p.is_file())
    assert b"did:civic:city-hall" in ledger
    for secret in PERSONAL:
        assert secret.encode() not in ledger, secret
    assert HOLDER.public.did.encode() not in ledger
