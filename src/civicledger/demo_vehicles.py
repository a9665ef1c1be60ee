"""The demo city's used cars, end to end: plain functions that return data.

Runs on any demo Seoul after ``run_scenario`` (it needs only root and the city's keystore). Root
registers the vehicle office (registry), an inspection station, a repair shop, an insurer and an
escrow bank, each under a ``vehicle-`` id. Two cars: car A is sold on and then shows 31,000 km
after 87,200 km, a rollback that is recorded and marks it for good; car B has a collision and a
cluster replacement, then a performance inspection. A lien blocks car B's sale until released;
the owner offers it with the inspection record, the buyer accepts, the bank holds the payment,
and the office's transfer releases it to the seller; the bank confirms the payout. A buyer's
report of car A counts its owners, flags the rollback and verifies by its QR payload; car A's
owner cannot pass off car B's inspection record as car A's.

Owners are fresh keys made here (a resident's wallet would hold them); the office keeps who
they are off the ledger (``PEOPLE``), and the ledger sees only the keys; the lender's record and
the bank slips reach it only as digests. Block times are the wall clock's, seconds apart, so
readings stay within the plausible rate except the rollback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from civicledger.agency.ledger import CityLedger
from civicledger.agency.vehicle_desk import VehicleDesk
from civicledger.city import CityDir
from civicledger.crypto.keys import PrivateKey
from civicledger.demo_steps import PartStep, run_step
from civicledger.services.vehicles.contract import CONTRACT_NAME
from civicledger.services.vehicles.report import VehicleReport

__all__ = [
    "AGENCIES",
    "CAR_A",
    "CAR_B",
    "DEPOSIT_SLIP",
    "LENDER",
    "PAYOUT_SLIP",
    "PEOPLE",
    "PRICE",
    "DemoVehicles",
    "run_vehicles",
]

CAR_A = "KMHDL41BP8A000451"
"""The rolled-back car."""
CAR_B = "KNAFX411BC5000982"
"""The car sold in escrow."""
OFFICE = "vehicle-office"
STATION = "vehicle-station"
GARAGE = "vehicle-garage"
INSURER = "vehicle-insurer"
BANK = "vehicle-bank"
AGENCIES = {
    OFFICE: ("서울 차량등록사업소 Seoul vehicle registration office", ("vehicle_registry",)),
    STATION: ("장안평 성능점검장 Janganpyeong inspection station", ("vehicle_inspector",)),
    GARAGE: ("성수 정비공장 Seongsu repair shop", ("vehicle_repairer",)),
    INSURER: ("서울 손해보험 Seoul insurer (demo)", ("vehicle_insurer",)),
    BANK: ("중고차 에스크로 은행 Used-car escrow bank (demo)", ("custodian_bank",)),
}
PRICE = 14_500_000
PEOPLE = {
    "a1": ("김민준", "850314-1234567"),
    "a2": ("이서연", "920728-2345678"),
    "seller": ("박지훈", "780905-1456789"),
    "buyer": ("최수아", "010212-4567890"),
}
"""The office's off-ledger register of owners (name, resident number) behind their keys."""
LENDER = "한빛캐피탈 auto loan 2026-118"
DEPOSIT_SLIP = "신한은행 110-482-339271 deposit 1"
PAYOUT_SLIP = "신한은행 302-118-004512 payout 1"
"""Bank slips and the lender's record: the ledger holds only their digests."""


@dataclass
class DemoVehicles:
    steps: list[PartStep] = field(default_factory=list)
    report: VehicleReport | None = None
    """The buyer's report of car A."""
    sale: dict[str, Any] = field(default_factory=dict)
    """Car B's settled sale."""
    escrow: dict[str, Any] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    """Role in the story -> the owner's did:key (what the ledger knows of them)."""
    register: dict[str, tuple[str, str]] = field(default_factory=dict)
    """The office's off-ledger register: did:key -> (name, resident number)."""


def run_vehicles(layout: CityDir, *, passphrase: str | None = None) -> DemoVehicles:
    """Run the used-car part of the demo; raises if a step that must work does not."""
    return _Flow(layout, passphrase).run()


def _document(text: str) -> str:
    """The digest of an off-ledger document (an inspection record, a claim, a bank slip)."""
    return hashlib.sha256(f"demo-vehicles/{text}".encode()).hexdigest()


class _Flow:
    def __init__(self, layout: CityDir, passphrase: str | None) -> None:
        self.layout = layout
        self.ledger = CityLedger(layout, passphrase)
        self.desk = VehicleDesk(self.ledger, layout.genesis().chain_id)
        self.out = DemoVehicles()
        self.keys = {name: PrivateKey.generate() for name in ("a1", "a2", "seller", "buyer")}
        self.out.owners = {name: key.public.did for name, key in self.keys.items()}
        self.out.register = {self.keys[n].public.did: person for n, person in PEOPLE.items()}
        self.sale_id = 0

    def step(self, title: str, action: Callable[[], str], *, refused: bool = False) -> None:
        run_step("vehicles", self.out.steps, title, action, refused=refused)

    def send(self, signer: str, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send(signer, CONTRACT_NAME, method, args)

    def send_as(self, owner: str, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send_as(self.keys[owner], CONTRACT_NAME, method, args)

    def run(self) -> DemoVehicles:
        self.step(
            "root registers the vehicle office, station, garage, insurer and bank", self._roles
        )
        self.step("the office registers two used cars", self._register)
        self.step(
            "the station inspects car A at 87,200 km; the office records its sale", self._car_a
        )
        self.step("the station reads car A at 31,000 km (a rollback)", self._rollback)
        self.step(
            "the insurer records car B's collision; the garage replaces its cluster", self._car_b
        )
        self.step(
            "the station records car B's performance inspection (성능·상태점검기록부)",
            self._inspect_b,
        )
        self.step("a lender's lien is recorded on car B", self._lien)
        self.step("the owner offers car B while the lien is open", self._offer, refused=True)
        self.step(
            "the lien is released; the owner offers car B with its inspection record",
            self._release_and_offer,
        )
        self.step("the buyer accepts; the bank holds the payment", self._accept_and_deposit)
        self.step("the office records the transfer; the payment goes to the seller", self._settle)
        self.step("the bank confirms the payout", self._confirm)
        self.step(
            "car A's owner offers it with car B's inspection record",
            self._false_disclosure,
            refused=True,
        )
        self.step("a buyer's report of car A, verified by its QR code", self._report)
        self.out.escrow = dict(self.desk.escrow())
        return self.out

    # -- actions -------------------------------------------------------------------------------

    def _roles(self) -> str:
        keystore = self.layout.keystore
        for agency_id, (name, roles) in AGENCIES.items():
            if agency_id not in keystore.names():
                keystore.create(agency_id)
            agency = {"id": agency_id, "name": name, "keys": [keystore.public(agency_id).did]}
            self.ledger.send("root", "governance", "register_agency", agency)
            for role in roles:
                grant = {"agency": agency_id, "role": role}
                self.ledger.send("root", "governance", "grant_role", grant)
        return ", ".join(f"{a}: {r[1][0]}" for a, r in AGENCIES.items())

    def _register(self) -> str:
        for vin, owner, make, year, km in (
            (CAR_A, "a1", "hyundai", 2016, 87_000),
            (CAR_B, "seller", "kia", 2019, 42_000),
        ):
            args = {
                "vin": vin,
                "owner": self.keys[owner].public.did,
                "make": make,
                "model_year": year,
                "fuel": "gasoline",
                "odometer_km": km,
            }
            self.send(OFFICE, "register", args)
        return f"{CAR_A} (87,000 km), {CAR_B} (42,000 km); owners by key only"

    def _inspect(self, vin: str, km: int, label: str, kind: str = "performance") -> Any:
        args = {"vin": vin, "odometer_km": km, "record_hash": _document(label), "kind": kind}
        return self.send(STATION, "inspect", args)

    def _car_a(self) -> str:
        self._inspect(CAR_A, 87_200, "car-a-2025", kind="periodic")
        self.send(OFFICE, "transfer", {"vin": CAR_A, "new_owner": self.keys["a2"].public.did})
        return "car A has its second owner"

    def _rollback(self) -> str:
        event = self._inspect(CAR_A, 31_000, "car-a-2026", kind="periodic")
        car = self.desk.vehicle(CAR_A)
        return f"recorded, flags {event['flags']}; discrepancy marks: {car['discrepancy_count']}"

    def _car_b(self) -> str:
        claim = {
            "vin": CAR_B,
            "kind": "collision",
            "claim_hash": _document("claim-b"),
            "paid_krw": 2_300_000,
            "odometer_km": 42_100,
        }
        self.send(INSURER, "accident", claim)
        cluster = {
            "vin": CAR_B,
            "work_hash": _document("cluster-b"),
            "before_km": 42_300,
            "after_km": 0,
        }
        event = self.send(GARAGE, "replace_cluster", cluster)
        return f"cluster 42,300 → 0 km, flags {event['flags']} (a legitimate reset)"

    def _inspect_b(self) -> str:
        self._inspect(CAR_B, 150, "car-b-disclosure")
        return f"record {_document('car-b-disclosure')[:12]}… on the ledger by digest"

    def _lien(self) -> str:
        lien = {
            "vin": CAR_B,
            "encumbrance_id": "capital-2026-118",
            "holder_hash": _document(LENDER),
        }
        self.send(OFFICE, "lien", lien)
        return "lien capital-2026-118 (the lender by digest)"

    def _offer_args(self, vin: str = CAR_B, record: str = "car-b-disclosure") -> dict[str, Any]:
        return {
            "vin": vin,
            "buyer": self.keys["buyer"].public.did,
            "price": PRICE,
            "disclosure_hash": _document(record),
        }

    def _offer(self) -> str:
        self.send_as("seller", "offer", self._offer_args())
        return "offered"

    def _release_and_offer(self) -> str:
        self.send(OFFICE, "release", {"vin": CAR_B, "encumbrance_id": "capital-2026-118"})
        sale = self.send_as("seller", "offer", self._offer_args())
        self.sale_id = int(sale["sale_id"])
        return f"sale {self.sale_id}: {PRICE:,} KRW"

    def _accept_and_deposit(self) -> str:
        self.send_as("buyer", "accept", {"sale_id": self.sale_id})
        deposit = {
            "sale_id": self.sale_id,
            "amount": PRICE,
            "bank_reference": _document(DEPOSIT_SLIP),
        }
        self.send(BANK, "deposit", deposit)
        return f"{PRICE:,} KRW held in escrow"

    def _settle(self) -> str:
        transfer = {
            "vin": CAR_B,
            "new_owner": self.keys["buyer"].public.did,
            "sale_id": self.sale_id,
        }
        self.send(OFFICE, "transfer", transfer)
        self.out.sale = dict(self.desk.sale(self.sale_id))
        return f"sale {self.out.sale['status']}; payout order {self.out.sale['order_id']}"

    def _confirm(self) -> str:
        confirm = {
            "order_id": self.out.sale["order_id"],
            "bank_reference": _document(PAYOUT_SLIP),
        }
        order = self.send(BANK, "confirm_order", confirm)
        return f"order {order['order_id']}: {order['amount']:,} KRW {order['status']}"

    def _false_disclosure(self) -> str:
        args = {**self._offer_args(CAR_A), "buyer": self.keys["seller"].public.did}
        self.send_as("a2", "offer", args)
        return "offered"

    def _report(self) -> str:
        report = self.desk.report(CAR_A)
        check = self.desk.verify(report.qr_payload)
        self.out.report = report
        return (
            f"{report.owner_count} owners, flags {', '.join(report.flags)}; "
            f"authentic, {check.newer_events} newer events"
        )
