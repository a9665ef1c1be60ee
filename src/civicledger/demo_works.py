"""The demo city's public works: direct payment of subcontractors (Seoul's 대금e바로).

Runs on any demo city with a root key (it registers everything it needs, so it works after the
identity, voting and currency parts or without them). Root registers the road department (role
``works_orderer``), the escrow bank (``custodian_bank``) and the site supervisor's office; the
department orders a two-stage road repaving from a prime contractor, the bank takes the first
stage's money into escrow, the prime registers a steel and a paving subcontractor, and all three
register their split of stage 1 (a subcontract share, materials, equipment, and each worker's
daily wage to the worker's own account). The supervisor verifies the work; a labour claim above
the verified days is refused, the supervisor corrects the attendance count, the stage is
claimed, a release with only the department's approval is refused, the supervisor approves and
the release pays every party directly; the bank confirms the transfers and a worker checks
their wage by pseudonym. An early ``flag_late`` is refused (the deadline has not passed).

Workers' names, ids and accounts stay in the prime's payroll and the bank's books (secrets in
``<city>/works/``); the ledger sees only keyed hashes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from civicledger.agency.ledger import CityLedger
from civicledger.city import CityDir
from civicledger.demo_steps import PartStep, run_step
from civicledger.services.works.pseudonyms import (
    account_reference,
    bank_reference,
    worker_pseudonym,
)

__all__ = [
    "BANK",
    "CONTRACT_ID",
    "DEPARTMENT",
    "PRIME",
    "SUBS",
    "SUPERVISOR",
    "WORKERS",
    "DemoWorks",
    "run_works",
]

CONTRACT_ID = "mapo-road-2026"
DEPARTMENT = "works-roads-dept"
BANK = "works-escrow-bank"
SUPERVISOR = "works-supervisor"
PRIME = "works-prime-co"
SUBS = ("works-sub-steel", "works-sub-paving")
STAGES = (50_000_000, 70_000_000)
WORKERS = {
    # line id: (payroll id, name kept off the ledger, bank account, daily wage, days)
    "w-01": ("P-0001", "김민수", "110-234-567890", 220_000, 10),
    "w-02": ("P-0002", "이영희", "333-22-1234567", 200_000, 12),
    "w-03": ("P-0003", "박철호", "1002-345-678901", 180_000, 10),
}
"""The stage-1 crew of the steel subcontractor (demo people)."""

_PART = "works"


@dataclass
class DemoWorks:
    steps: list[PartStep] = field(default_factory=list)
    contract: dict[str, Any] = field(default_factory=dict)
    payouts: list[dict[str, Any]] = field(default_factory=list)
    worker_refs: dict[str, str] = field(default_factory=dict)
    """Line id -> the worker's pseudonym (what the worker is told, to check their wage)."""
    account_refs: dict[str, str] = field(default_factory=dict)
    """Line id -> the worker's account reference."""


def run_works(layout: CityDir, *, passphrase: str | None = None) -> DemoWorks:
    """Run the public-works part of the demo; raises if a step that must work does not."""
    return _Flow(layout, passphrase).run()


def _secret(directory: Path, name: str) -> bytes:
    """A demo secret kept off the ledger (created once): the payroll's or the bank's."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="ascii")
        path.chmod(0o600)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


class _Flow:
    def __init__(self, layout: CityDir, passphrase: str | None) -> None:
        self.layout = layout
        self.ledger = CityLedger(layout, passphrase)
        self.passphrase = passphrase
        self.out = DemoWorks()
        secrets_dir = layout.root / "works"
        self.payroll = _secret(secrets_dir, "payroll")
        self.bank = _secret(secrets_dir, "bank")
        self.transfers = 0

    def step(self, title: str, action: Callable[[], str], *, refused: bool = False) -> None:
        run_step(_PART, self.out.steps, title, action, refused=refused)

    def send(self, signer: str, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send(signer, "works", method, args)

    def account(self, bank_code: str, number: str) -> str:
        return account_reference(self.bank, bank_code, number)

    def transfer(self) -> str:
        self.transfers += 1
        return bank_reference(self.bank, f"{CONTRACT_ID}/transfer/{self.transfers}")

    def stage(self, **more: Any) -> dict[str, Any]:
        return {"contract_id": CONTRACT_ID, "stage": 1, **more}

    def run(self) -> DemoWorks:
        self.step("root registers the road department, escrow bank and supervisor", self._setup)
        self.step("the road department orders a 120,000,000 KRW repaving in 2 stages", self._order)
        self.step("the bank takes stage 1's 50,000,000 KRW into escrow", self._deposit)
        self.step("the prime registers a steel and a paving subcontractor", self._subcontractors)
        self.step("prime and subcontractors register stage 1's split", self._split)
        self.step("the supervisor verifies stage 1 (w-03: 8 days seen)", lambda: self._verify(8))
        self.step(
            "the prime claims stage 1 with 10 days for w-03 (above the verified 8)",
            self._claim,
            refused=True,
        )
        self.step(
            "the supervisor corrects w-03 to 10 days from the gate log", lambda: self._verify(10)
        )
        self.step("the prime claims stage 1", self._claim)
        self.step("the road department approves stage 1", lambda: self._approve(DEPARTMENT))
        self.step(
            "stage 1 is released with only the department's approval",
            self._release,
            refused=True,
        )
        self.step("the site supervisor approves stage 1", lambda: self._approve(SUPERVISOR))
        self.step("the release pays every party directly, in one transaction", self._release)
        self.step("the bank confirms every transfer", self._confirm)
        self.step("worker w-02 checks their wage by pseudonym", self._check_wage)
        self.step("someone flags stage 1 late before its deadline", self._flag, refused=True)
        self.out.contract = dict(
            self.ledger.query("works", "contract", {"contract_id": CONTRACT_ID})
        )
        return self.out

    # -- actions -------------------------------------------------------------------------------

    def _setup(self) -> str:
        keystore = self.layout.keystore
        for name in (DEPARTMENT, BANK, SUPERVISOR, PRIME, *SUBS):
            if name not in keystore.names():
                keystore.create(name, passphrase=self.passphrase)
        for agency_id, label, role in (
            (DEPARTMENT, "서울시 도로과 Seoul road department (demo)", "works_orderer"),
            (BANK, "대금e바로 에스크로 은행 Escrow bank (demo)", "custodian_bank"),
            (SUPERVISOR, "마포 감리단 Mapo site supervision (demo)", None),
        ):
            key = keystore.public(agency_id)
            agency = {"id": agency_id, "name": label, "keys": [key.did]}
            self.ledger.send("root", "governance", "register_agency", agency)
            if role is not None:
                grant = {"agency": agency_id, "role": role}
                self.ledger.send("root", "governance", "grant_role", grant)
        return (
            f"{DEPARTMENT}: works_orderer; {BANK}: custodian_bank; "
            f"{SUPERVISOR}: no role (named on the contract as its site supervisor)"
        )

    def _order(self) -> str:
        keystore = self.layout.keystore
        args = {
            "contract_id": CONTRACT_ID,
            "title": {"ko": "마포로 도로 재포장 2026", "en": "Mapo-ro repaving 2026"},
            "prime": keystore.public(PRIME).did,
            "prime_account_ref": self.account("088", "140-012-345678"),
            "supervisor": keystore.public(SUPERVISOR).did,
            "total": sum(STAGES),
            "stages": list(STAGES),
            "deadline_days": 5,
        }
        self.send(DEPARTMENT, "create_contract", args)
        return "stages 50,000,000 + 70,000,000 KRW; pay within 5 days of a claim"

    def _deposit(self) -> str:
        args = {"contract_id": CONTRACT_ID, "amount": STAGES[0], "bank_reference": self.transfer()}
        record = self.send(BANK, "deposit", args)
        return f"escrow holds {record['held']:,} KRW"

    def _subcontractors(self) -> str:
        keystore = self.layout.keystore
        for name, bank, number, amount in (
            (SUBS[0], "004", "555-01-000111", 40_000_000),
            (SUBS[1], "020", "1005-700-222333", 30_000_000),
        ):
            args = {
                "contract_id": CONTRACT_ID,
                "party_id": name.removeprefix("works-sub-"),
                "key": keystore.public(name).did,
                "account_ref": self.account(bank, number),
                "amount": amount,
            }
            self.send(PRIME, "register_subcontractor", args)
        return "steel 40,000,000 KRW, paving 30,000,000 KRW"

    def _split(self) -> str:
        steel = [
            {
                "line_id": "steel-share",
                "kind": "subcontract",
                "payee_ref": self.account("004", "555-01-000111"),
                "amount": 6_000_000,
            },
            {
                "line_id": "rebar",
                "kind": "materials",
                "payee_ref": self.account("011", "301-0099-8877-11"),
                "amount": 9_000_000,
            },
        ]
        for line_id, (payroll_id, _name, account, wage, days) in WORKERS.items():
            pseudonym = worker_pseudonym(self.payroll, CONTRACT_ID, payroll_id)
            account_ref = self.account("011", account)
            self.out.worker_refs[line_id] = pseudonym
            self.out.account_refs[line_id] = account_ref
            steel.append(
                {
                    "line_id": line_id,
                    "kind": "labour",
                    "payee_ref": account_ref,
                    "worker": pseudonym,
                    "daily_wage": wage,
                    "days": days,
                }
            )
        paving = [
            {
                "line_id": "asphalt",
                "kind": "materials",
                "payee_ref": self.account("003", "221-33-445566"),
                "amount": 12_000_000,
            }
        ]
        prime = [
            {
                "line_id": "roller",
                "kind": "equipment",
                "payee_ref": self.account("081", "620-11-778899"),
                "amount": 4_000_000,
            }
        ]
        self.send(SUBS[0], "register_split", self.stage(party_id="steel", lines=steel))
        self.send(SUBS[1], "register_split", self.stage(party_id="paving", lines=paving))
        record = self.send(PRIME, "register_split", self.stage(party_id="prime", lines=prime))
        return f"{record['lines']} lines, {record['split_total']:,} KRW (3 workers' wages)"

    def _verify(self, w03_days: int) -> str:
        quantities = {
            "steel-share": 6_000_000,
            "rebar": 9_000_000,
            "w-01": 10,
            "w-02": 12,
            "w-03": w03_days,
            "asphalt": 12_000_000,
            "roller": 4_000_000,
        }
        lines = [{"line_id": k, "quantity": v} for k, v in quantities.items()]
        self.send(SUPERVISOR, "verify_work", self.stage(work_amount=STAGES[0], lines=lines))
        return f"work worth {STAGES[0]:,} KRW; w-03 {w03_days} days"

    def _claim(self) -> str:
        stage = self.send(PRIME, "claim", self.stage(amount=STAGES[0]))
        return f"claimed {stage['claim']:,} KRW; due 5 days later in block time"

    def _approve(self, signer: str) -> str:
        stage = self.send(signer, "approve", self.stage())
        return "approvals: " + ", ".join(sorted(stage["approvals"]))

    def _release(self) -> str:
        result = self.send(DEPARTMENT, "release", self.stage())
        self.out.payouts = list(result["payouts"])
        return f"{len(result['payouts'])} payout orders, {result['stage']['claim']:,} KRW"

    def _confirm(self) -> str:
        items = [{"seq": o["seq"], "bank_reference": self.transfer()} for o in self.out.payouts]
        stage = self.send(BANK, "confirm_payouts", self.stage(items=items))
        return f"stage 1 {stage['status']}: {stage['paid']:,} KRW transferred"

    def _check_wage(self) -> str:
        found = self.ledger.query("works", "payments", {"ref": self.out.worker_refs["w-02"]})
        paid = sum(o["amount"] for o in found if o["status"] == "paid")
        return f"{paid:,} KRW paid to the worker's own account"

    def _flag(self) -> str:
        self.send(SUPERVISOR, "flag_late", self.stage())
        return "flagged"
