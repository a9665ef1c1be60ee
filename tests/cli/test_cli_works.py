"""``civic works`` in-process through the real ``civic`` app: a contract from creation to the
bank's confirmation, with the refusals a user meets on the way (one error line each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import Civic, assert_one_error_line, new_runner

from civicledger.city import AgencySpec, create_city
from civicledger.services.works.pseudonyms import account_reference, worker_pseudonym

CID = "gate-bridge"
SECRET = "cli-works-test-secret-0123456789"


@pytest.fixture
def civic() -> Civic:
    return new_runner()


@pytest.fixture
def city(tmp_path: Path) -> Path:
    root = tmp_path / "city"
    layout = create_city(
        root,
        city="Testville",
        chain_id="testville-1",
        agencies=[
            AgencySpec("works-dept", "Road Department", ("works_orderer",)),
            AgencySpec("works-bank", "Escrow Bank", ("custodian_bank",)),
        ],
    )
    for name in ("prime", "steel", "supervisor"):
        layout.keystore.create(name)
    return root


def ref(label: str) -> str:
    return account_reference(SECRET.encode(), "088", label)


def test_a_contract_end_to_end(civic: Civic, city: Path, tmp_path: Path) -> None:
    def run(*args: str) -> str:
        result = civic("--dir", city, "works", *args)
        assert result.exit_code == 0, result.output
        return str(result.stdout)

    env = {"WORKS_SECRET": SECRET}
    pseudonym = civic(
        "works", "pseudonym", CID, "P-7", "--secret-env", "WORKS_SECRET", env=env
    ).stdout.strip()
    assert pseudonym == worker_pseudonym(SECRET.encode(), CID, "P-7")
    account = civic(
        "works", "account-ref", "088", "110-22-33", "--secret-env", "WORKS_SECRET", env=env
    ).stdout.strip()
    assert account == account_reference(SECRET.encode(), "088", "11022" + "33")

    out = run(
        "contract",
        "create",
        CID,
        "--title-ko",
        "교량",
        "--title-en",
        "Bridge",
        "--prime",
        "prime",
        "--prime-account",
        ref("prime"),
        "--supervisor",
        "supervisor",
        "--stage",
        "3000000",
        "--stage",
        "2000000",
        "--key",
        "works-dept",
    )
    assert "5,000,000 KRW in 2 stages" in out
    assert "escrow holds 3,000,000" in run(
        "deposit", CID, "3000000", "--reference", "dep#1", "--key", "works-bank"
    )
    run(
        "subcontract", CID, "steel", "steel", "2000000", "--account", ref("steel"), "--key", "prime"
    )
    lines = tmp_path / "lines.json"
    lines.write_text(
        json.dumps(
            [
                {
                    "line_id": "w-7",
                    "kind": "labour",
                    "payee_ref": account,
                    "worker": pseudonym,
                    "daily_wage": 150_000,
                    "days": 4,
                },
                {
                    "line_id": "bolts",
                    "kind": "materials",
                    "payee_ref": ref("bolts"),
                    "amount": 400_000,
                },
            ]
        )
    )
    assert "2 lines, 1,000,000 KRW" in run("split", CID, "1", "steel", str(lines), "--key", "steel")
    run(
        "verify",
        CID,
        "1",
        "--work",
        "3000000",
        "--line",
        "w-7=3",
        "--line",
        "bolts=400000",
        "--key",
        "supervisor",
    )
    refused = civic("--dir", city, "works", "claim", CID, "1", "3000000", "--key", "prime")
    assert_one_error_line(refused, "labour_days_exceed_verified")
    run(
        "verify",
        CID,
        "1",
        "--work",
        "3000000",
        "--line",
        "w-7=4",
        "--line",
        "bolts=400000",
        "--key",
        "supervisor",
    )
    run("claim", CID, "1", "3000000", "--key", "prime")
    run("approve", CID, "1", "--key", "works-dept")
    missing = civic("--dir", city, "works", "release", CID, "1", "--key", "works-dept")
    assert_one_error_line(missing, "missing_approval")
    run("approve", CID, "1", "--key", "supervisor")
    released = run("release", CID, "1", "--key", "works-dept")
    assert "3 payout orders" in released
    assert "2,000,000" in released  # the prime's rest
    run("payout", CID, "1", "1", "2", "3", "--reference", "batch-1", "--key", "works-bank")
    again = civic(
        "--dir",
        city,
        "works",
        "payout",
        CID,
        "1",
        "1",
        "--reference",
        "batch-2",
        "--key",
        "works-bank",
    )
    assert_one_error_line(again, "already_paid")
    paid = run("payments", pseudonym)
    assert "ordered 600,000 KRW; paid 600,000 KRW" in paid
    view = json.loads(run("show", CID))
    assert view["contract"]["paid"] == 3_000_000
    assert view["stages"][0]["by_kind"] == {
        "subcontract": 0,
        "materials": 400_000,
        "equipment": 0,
        "labour": 600_000,
        "prime": 2_000_000,
    }
    assert "0 alerts; 0 stages overdue now" in run("alerts")
    early = civic("--dir", city, "works", "flag-late", CID, "1", "--key", "steel")
    assert_one_error_line(early, "not_late")
    unknown = civic("--dir", city, "works", "show", "no-such")
    assert_one_error_line(unknown, "unknown_works_contract")
