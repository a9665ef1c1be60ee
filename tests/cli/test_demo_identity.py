"""The demo city's identity part, and a scan of the whole demo ledger for the residents' data."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import pytest

from civicledger.city import CityDir
from civicledger.demo import create_demo_city, run_demo, run_scenario
from civicledger.demo_identity import DEMO_RESIDENTS, DemoIdentity, Resident, run_identity
from ledger_scan import found, ledger_blobs

EXPECTED = [
    ("city-hall publishes did:civic:city-hall", "ok", None),
    ("gangnam-gu publishes did:civic:gangnam-gu", "ok", None),
    ("root lets city-hall issue ResidentCard", "ok", None),
    ("root lets city-hall issue FamilyLoveCard", "ok", None),
    ("root lets city-hall issue VisitorPass", "ok", None),
    ("root lets gangnam-gu issue Qualification", "ok", None),
    ("city-hall anchors its revocation list", "ok", None),
    ("gangnam-gu anchors its revocation list", "ok", None),
    ("wallets for two residents and a visitor (off the ledger)", "ok", None),
    ("city hall issues seoyeon a ResidentCard (kept in the wallet only)", "ok", None),
    ("city hall issues jihoon a ResidentCard (kept in the wallet only)", "ok", None),
    ("library checks seoyeon is an adult (discloses age_over_19 only)", "ok", None),
    ("library is shown the same presentation again", "refused", "replayed_challenge"),
    ("gangnam-gu issues jihoon a Qualification; mapo-gu verifies it", "ok", None),
    ("city hall issues seoyeon a FamilyLoveCard; a museum verifies it", "ok", None),
    (
        "city hall checks jihoon's card and issues his visitor a VisitorPass; "
        "the gate syncs, goes offline and checks its QR code",
        "ok",
        None,
    ),
    (
        "city hall's main-gate, back online, uploads 1 check-in (a pseudonym, no personal data)",
        "ok",
        None,
    ),
    ("city hall revokes jihoon's ResidentCard (anchors list version 2)", "ok", None),
    ("library is shown jihoon's revoked ResidentCard", "refused", "revoked"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[CityDir, DemoIdentity]:
    layout = create_demo_city(tmp_path_factory.mktemp("demo") / "seoul")
    run_scenario(layout)
    return layout, run_identity(layout)


def test_identity_steps(demo: tuple[CityDir, DemoIdentity]) -> None:
    layout, identity = demo
    assert [(s.title, s.outcome, s.reason) for s in identity.steps] == EXPECTED
    details = {s.title: s.detail for s in identity.steps}
    assert details[EXPECTED[11][0]] == "age_over_19=True"
    assert "issued by did:civic:gangnam-gu" in details[EXPECTED[13][0]]
    assert details[EXPECTED[14][0]] == "children_count=3, youngest_under_19=True"
    assert "pass for 마포구 Mapo-gu" in details[EXPECTED[15][0]]
    assert "0 ledger calls; check-in queued" in details[EXPECTED[15][0]]
    assert details[EXPECTED[16][0]] == "visits.checked_in"
    assert all(s.height is not None for s in identity.steps if s.tx_id is not None)
    assert identity.issuers == {
        "city-hall": "did:civic:city-hall",
        "gangnam-gu": "did:civic:gangnam-gu",
    }
    assert set(identity.holders) == {"seoyeon", "jihoon", "visitor"}
    assert all(did.startswith("did:key:z6Mk") for did in identity.holders.values())
    assert identity.wallets == layout.root / "wallets"
    assert {p.name for p in identity.wallets.iterdir()} == set(identity.holders)


# -- the scan ------------------------------------------------------------------------------------


def _date_forms(day: date) -> list[str]:
    return [
        day.isoformat(),
        day.strftime("%Y%m%d"),
        day.strftime("%Y.%m.%d"),
        day.strftime("%Y/%m/%d"),
        day.strftime("%d/%m/%Y"),
        day.strftime("%m/%d/%Y"),
        day.strftime("%y%m%d"),  # as in a resident registration number
        f"{day.year}년 {day.month}월 {day.day}일",
    ]


def _phone_forms(phone: str) -> list[str]:
    digits = phone.removeprefix("+82-").replace("-", "")  # 1048211234
    local = "0" + digits
    return [
        phone,
        phone.replace("-", ""),
        local,
        f"{local[:3]}-{local[3:7]}-{local[7:]}",
        local[3:],
    ]


def personal_data(resident: Resident) -> list[str]:
    street = resident.address.split(", ")[0].removeprefix("서울특별시 ")  # 강남구 테헤란로 152
    forms = [
        resident.name_hangul,
        resident.name_hangul[1:],  # the given name in Hangul
        resident.given_name,
        resident.given_name.replace("-", ""),
        f"{resident.given_name} {resident.family_name}",
        f"{resident.family_name} {resident.given_name}",
        resident.address,
        street,
        street.split(" ", 1)[1],  # 테헤란로 152
        resident.address.split(", ")[1],  # the flat
        *_date_forms(resident.birthdate),
        *_phone_forms(resident.phone),
    ]
    for child in resident.children_birthdates:
        forms += _date_forms(child)
    return forms


SECRETS = [form for resident in DEMO_RESIDENTS for form in personal_data(resident)]


def test_no_personal_data_anywhere_in_the_demo_ledger(
    demo: tuple[CityDir, DemoIdentity],
) -> None:
    layout, identity = demo
    assert len(SECRETS) > 50
    ledger = ledger_blobs(layout)
    assert found(SECRETS, ledger) == []
    # Nor the residents' or visitor's DIDs: holders never touch the ledger.
    assert found(identity.holders.values(), ledger) == []


def test_the_scan_finds_what_is_there(demo: tuple[CityDir, DemoIdentity]) -> None:
    layout, identity = demo
    ledger = ledger_blobs(layout)
    # Public identity data is on the ledger and the scan sees it.
    assert found(identity.issuers.values(), ledger) == list(identity.issuers.values())
    assert found(["https://city-hall.demo-seoul.example/status/revocation/1"], ledger)
    # A wallet holds the personal data, base64url-encoded in SD-JWT disclosures.
    wallet_files = [p.read_bytes() for p in (identity.wallets / "seoyeon").rglob("*.json")]
    seoyeon = personal_data(DEMO_RESIDENTS[0])
    hits = found(seoyeon, wallet_files)
    assert {"김서연", "Seo-yeon", "1986-03-14", "+82-10-4821-7735"} <= set(hits)
    assert "서울특별시 강남구 테헤란로 152, 1203호" in hits
    assert identity.holders["seoyeon"] in b"".join(wallet_files).decode()
    # And each encoding the scan knows is found when planted.
    for planted in [
        "김서연".encode(),
        b'{"n": "\\uae40\\uc11c\\uc5f0"}',
        base64.urlsafe_b64encode('["salt", "name", "김서연"]'.encode()).rstrip(b"="),
        b"x" + base64.b64encode(b'{"phone": "010-9362-1048"}'),
    ]:
        assert found(SECRETS, [planted]), planted


def test_run_demo_with_identity_counts_its_transactions(tmp_path: Path) -> None:
    run = run_demo(tmp_path / "seoul", identity=True)
    assert run.identity is not None
    on_ledger = [s for s in run.identity.steps if s.tx_id is not None]
    assert len(on_ledger) == 10
    assert run.summary.transactions == len(run.steps) - 1 + len(on_ledger)
    assert run.report.transactions == run.summary.transactions
