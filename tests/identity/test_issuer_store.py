"""An agency's issuer register (``issuer.sqlite``): allocation, rollover, publication, privacy.

Runs the real service over a real city directory; a few tests reach into the register with
plain SQL to set up states that would take tens of thousands of issuances (a half-full list) or
a crash (an anchor that never returned).
"""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest

from civicledger.agency.issuer import (
    ISSUER_DB,
    IssuedCredential,
    IssuerError,
    IssuerService,
    identity_dir,
    published_list,
)
from civicledger.agency.ledger import CityLedger
from civicledger.agency.verifying import ChallengeStore, StatusListSource, verify_file
from civicledger.city import CityDir
from civicledger.crypto.keys import PrivateKey
from civicledger.node.chain import Chain
from civicledger.services.identity.sdjwt import present
from civicledger.services.identity.status_list import MIN_BITS, StatusError
from civicledger.services.identity.verifier import VerificationError
from identity_samples import QUALIFICATION, RESIDENT, issuing_city

DOMAIN = "https://library.testville.example"
AGENCY = "city-hall"
HOLDER = PrivateKey.from_seed(bytes(range(1, 33)))
OTHER = PrivateKey.from_seed(bytes(range(2, 34)))


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def city(tmp_path: Path) -> CityDir:
    return issuing_city(tmp_path / "city", [(AGENCY, "ResidentCard"), (AGENCY, "Qualification")])


def _register(city: CityDir) -> Path:
    return identity_dir(city, AGENCY) / ISSUER_DB


def _anchored(city: CityDir, list_id: str) -> Any:
    chain = Chain(city.data_path)
    try:
        return chain.query("status_lists", "latest", {"agency": AGENCY, "list_id": list_id})
    finally:
        chain.close()


def _verify_card(city: CityDir, issued: IssuedCredential) -> None:
    assert isinstance(issued.credential, str)
    challenge = ChallengeStore(city).new(DOMAIN, now())
    shown = present(
        issued.credential,
        disclose=["district"],
        holder_key=HOLDER,
        audience=DOMAIN,
        nonce=challenge,
        now=now(),
    )
    verify_file(CityLedger(city), shown, challenge=challenge, domain=DOMAIN, now=now())


def _fill(city: CityDir, name: str, count: int, rng: Random) -> None:
    """Record ``count`` more allocations in list ``name`` as if they had been issued."""
    with closing(sqlite3.connect(_register(city))) as db, db:
        taken = {i for (i,) in db.execute("SELECT idx FROM allocations WHERE list = ?", (name,))}
        free = [i for i in range(MIN_BITS) if i not in taken]
        rows = [
            (name, i, "Qualification", "did:example:filler", "2026-01-01T00:00:00+00:00")
            for i in rng.sample(free, count)
        ]
        db.executemany(
            "INSERT INTO allocations (list, idx, credential_type, holder, issued_at)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        db.execute(
            "UPDATE lists SET allocated_count = allocated_count + ? WHERE name = ?", (count, name)
        )


def test_rollover_to_a_second_list_when_half_full(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), AGENCY, rng=Random(5))
    first = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    assert first.list_id.endswith(":revocation-1")
    _fill(city, "revocation-1", MIN_BITS // 2 - 2, Random(6))

    last_of_first = hall.issue("Qualification", OTHER.public.did, QUALIFICATION)
    assert last_of_first.list_id == first.list_id
    assert hall.status_list("revocation-1")["allocated_count"] == MIN_BITS // 2

    second = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    assert second.list_id.endswith(":revocation-2")
    record = hall.status_list("revocation-2")
    assert (record["anchored"], record["version"], record["allocated_count"]) == (True, 1, 1)
    assert record["size"] == MIN_BITS
    assert _anchored(city, second.list_id)["digest"] == record["digest"]
    # The first list takes no more credentials.
    assert hall.issue("ResidentCard", HOLDER.public.did, RESIDENT).list_id == second.list_id
    assert hall.status_list("revocation-1")["allocated_count"] == MIN_BITS // 2

    # A verifier finds both lists; revoking in the second one shows up as revoked.
    _verify_card(city, first)
    _verify_card(city, second)
    revoked = hall.revoke(second.credential)
    assert revoked.published.version == 2
    with pytest.raises(VerificationError) as caught:
        _verify_card(city, second)
    assert caught.value.reason == "revoked"
    _verify_card(city, first)
    assert [r.revoked_at is not None for r in hall.issued(holder=HOLDER.public.did)] == [
        False,
        True,
        False,
    ]


class _CrashError(Exception):
    """The process died while the anchor transaction was on its way."""


class _AnchorFails(CityLedger):
    """A ledger whose next ``status_lists.anchor`` raises, before or after committing."""

    def __init__(self, city: CityDir, *, committed: bool) -> None:
        super().__init__(city)
        self.committed = committed
        self.armed = True

    def send(self, signer: str, contract: str, method: str, args: dict[str, Any]) -> Any:
        if self.armed and (contract, method) == ("status_lists", "anchor"):
            self.armed = False
            if self.committed:
                super().send(signer, contract, method, args)
            raise _CrashError
        return super().send(signer, contract, method, args)


def test_a_publication_whose_anchor_failed_is_finished_by_the_next_call(city: CityDir) -> None:
    hall = IssuerService(_AnchorFails(city, committed=False), AGENCY)
    with pytest.raises(_CrashError):
        hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    saved = hall.status_list()
    assert (saved["anchored"], saved["version"], saved["allocated_count"]) == (False, 1, 0)
    assert saved["credential"] is not None
    assert _anchored(city, saved["id"]) is None
    assert hall.issued() == []

    issued = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    record = hall.status_list()
    assert (record["anchored"], record["version"], record["allocated_count"]) == (True, 1, 1)
    assert _anchored(city, issued.list_id)["digest"] == record["digest"]
    _verify_card(city, issued)


def test_an_anchor_that_committed_but_was_not_marked_is_not_redone(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), AGENCY)
    issued = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    crashing = IssuerService(_AnchorFails(city, committed=True), AGENCY)
    with pytest.raises(_CrashError):
        crashing.revoke(issued.credential)
    saved = hall.status_list()
    assert (saved["anchored"], saved["version"]) == (False, 2)
    assert _anchored(city, issued.list_id)["version"] == 2

    finished = hall.publish_list()
    assert (finished.version, finished.digest) == (2, saved["digest"])
    assert hall.status_list()["anchored"] is True
    with pytest.raises(VerificationError) as caught:
        _verify_card(city, issued)
    assert caught.value.reason == "revoked"


def test_the_register_is_private(city: CityDir) -> None:
    IssuerService(CityLedger(city), AGENCY).issue("ResidentCard", HOLDER.public.did, RESIDENT)
    directory = identity_dir(city, AGENCY)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = [p for p in directory.iterdir() if p.name.startswith(ISSUER_DB)]
    assert {p.name for p in files} >= {ISSUER_DB}
    for path in files:  # the database and, while open or after a crash, its -wal and -shm
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    with closing(sqlite3.connect(directory / ISSUER_DB)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


class _FewValues(Random):
    """Draws from 0..399 only, so a few hundred issuances collide again and again."""

    def randrange(self, *args: Any, **kwargs: Any) -> int:
        return super().randrange(400)


def test_indices_are_never_reused(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), AGENCY, rng=_FewValues(11))
    issued = [
        hall.issue("Qualification", HOLDER.public.did, QUALIFICATION).index for _ in range(300)
    ]
    assert len(set(issued)) == 300
    assert set(issued) <= set(range(400))
    records = hall.issued(limit=1000)
    assert [r.index for r in records] == issued[::-1]
    assert hall.status_list()["allocated_count"] == 300


def test_issued_filters_by_holder_newest_first(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), AGENCY, rng=Random(3))
    assert hall.issued() == []
    a1 = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    b1 = hall.issue("Qualification", OTHER.public.did, QUALIFICATION)
    a2 = hall.issue("Qualification", HOLDER.public.did, QUALIFICATION)

    mine = hall.issued(holder=HOLDER.public.did)
    assert [(r.index, r.credential_type) for r in mine] == [
        (a2.index, "Qualification"),
        (a1.index, "ResidentCard"),
    ]
    assert {r.holder for r in mine} == {HOLDER.public.did}
    assert [r.index for r in hall.issued()] == [a2.index, b1.index, a1.index]
    assert [r.index for r in hall.issued(holder=HOLDER.public.did, limit=1)] == [a2.index]
    assert hall.issued(holder="did:key:nobody") == []
    assert hall.issued(limit=0) == []


def test_published_list_by_name_and_id_without_the_register(city: CityDir) -> None:
    hall = IssuerService(CityLedger(city), AGENCY)
    issued = hall.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    by_name = published_list(city, AGENCY, name="revocation-1")
    assert by_name == published_list(city, AGENCY, list_id=issued.list_id)
    assert by_name == StatusListSource(city)(issued.list_id)
    assert by_name["id"] == issued.list_id
    assert HOLDER.public.did not in str(by_name)
    for missing in ({"name": "revocation-9"}, {"list_id": "urn:x:nothing"}):
        with pytest.raises(IssuerError) as caught:
            published_list(city, AGENCY, **missing)
        assert caught.value.reason == "unknown_list"
    with pytest.raises(IssuerError) as elsewhere:
        StatusListSource(city)("urn:x:nothing")
    assert elsewhere.value.reason == "unknown_list"
    with pytest.raises(IssuerError) as no_register:
        published_list(city, "archive", name="revocation-1")
    assert no_register.value.reason == "unknown_list"


def test_the_old_json_layout_is_refused(city: CityDir) -> None:
    status = identity_dir(city, AGENCY) / "status"
    status.mkdir(parents=True)
    (status / "revocation-1.json").write_text("{}")
    hall = IssuerService(CityLedger(city), AGENCY)
    for attempt in (
        lambda: hall.issue("ResidentCard", HOLDER.public.did, RESIDENT),
        hall.issued,
        hall.status_list,
        lambda: published_list(city, AGENCY, name="revocation-1"),
    ):
        with pytest.raises(IssuerError) as caught:
            attempt()
        assert caught.value.reason == "bad_issuer_state"
        assert "no migration" in caught.value.message
    assert not (identity_dir(city, AGENCY) / ISSUER_DB).exists()


def test_list_size_below_the_spec_minimum_is_refused(city: CityDir) -> None:
    with pytest.raises(StatusError) as caught:
        IssuerService(CityLedger(city), AGENCY, list_size=MIN_BITS // 2)
    assert caught.value.reason == "status_list_too_small"
    bigger = IssuerService(CityLedger(city), AGENCY, list_size=2 * MIN_BITS)
    bigger.issue("ResidentCard", HOLDER.public.did, RESIDENT)
    assert bigger.status_list()["size"] == 2 * MIN_BITS
