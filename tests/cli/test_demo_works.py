"""The demo city's public-works part on a fresh demo city, and a scan of the whole ledger for
the workers' names, payroll ids and bank accounts (only keyed hashes may be there)."""

from __future__ import annotations

import pytest

from civicledger.agency.ledger import CityLedger
from civicledger.city import CityDir
from civicledger.demo_works import CONTRACT_ID, WORKERS, DemoWorks, run_works
from conftest import DemoCityTemplate
from ledger_scan import found, ledger_blobs

EXPECTED = [
    ("root registers the road department, escrow bank and supervisor", "ok", None),
    ("the road department orders a 120,000,000 KRW repaving in 2 stages", "ok", None),
    ("the bank takes stage 1's 50,000,000 KRW into escrow", "ok", None),
    ("the prime registers a steel and a paving subcontractor", "ok", None),
    ("prime and subcontractors register stage 1's split", "ok", None),
    ("the supervisor verifies stage 1 (w-03: 8 days seen)", "ok", None),
    (
        "the prime claims stage 1 with 10 days for w-03 (above the verified 8)",
        "refused",
        "labour_days_exceed_verified",
    ),
    ("the supervisor corrects w-03 to 10 days from the gate log", "ok", None),
    ("the prime claims stage 1", "ok", None),
    ("the road department approves stage 1", "ok", None),
    ("stage 1 is released with only the department's approval", "refused", "missing_approval"),
    ("the site supervisor approves stage 1", "ok", None),
    ("the release pays every party directly, in one transaction", "ok", None),
    ("the bank confirms every transfer", "ok", None),
    ("worker w-02 checks their wage by pseudonym", "ok", None),
    ("someone flags stage 1 late before its deadline", "refused", "not_late"),
]


@pytest.fixture(scope="module")
def demo(
    demo_city_template: DemoCityTemplate, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CityDir, DemoWorks]:
    """The works part runs where the demo runs it: on the demo city after the help coin."""
    layout = demo_city_template.fresh(tmp_path_factory.mktemp("demo") / "seoul")
    return layout, run_works(layout)


def test_works_steps(demo: tuple[CityDir, DemoWorks]) -> None:
    layout, works = demo
    assert [(s.title, s.outcome, s.reason) for s in works.steps] == EXPECTED
    details = {s.title: s.detail for s in works.steps}
    assert details[EXPECTED[14][0]] == "2,400,000 KRW paid to the worker's own account"
    record = works.contract
    assert (record["deposited"], record["released"], record["held"], record["paid"]) == (
        50_000_000,
        50_000_000,
        0,
        50_000_000,
    )
    # Every worker's wage went to the worker's own account reference, once.
    wages = {
        o["line_id"]: (o["amount"], o["payee_ref"]) for o in works.payouts if o["kind"] == "labour"
    }
    assert wages == {
        line: (wage * days, works.account_refs[line])
        for line, (_, _, _, wage, days) in WORKERS.items()
    }
    prime = [o for o in works.payouts if o["kind"] == "prime"]
    assert [o["amount"] for o in prime] == [
        50_000_000 - 6_000_000 - 9_000_000 - 6_400_000 - 12_000_000 - 4_000_000
    ]
    ledger = CityLedger(layout)
    stage = ledger.query("works", "stage", {"contract_id": CONTRACT_ID, "stage": 1})
    assert stage["status"] == "paid"
    assert set(stage["approvals"]) == {"orderer", "supervisor"}


def test_no_worker_data_on_the_ledger(demo: tuple[CityDir, DemoWorks]) -> None:
    layout, works = demo
    blobs = ledger_blobs(layout)
    haystack = b"\x00".join(blobs)
    secrets = [s for person in WORKERS.values() for s in person[:3]]
    secrets += [account.replace("-", "") for _, _, account, _, _ in WORKERS.values()]
    assert found(secrets, blobs) == []
    # The scan does see what is meant to be there: the pseudonyms and account references.
    for line in WORKERS:
        assert works.worker_refs[line].encode() in haystack
        assert works.account_refs[line].encode() in haystack
