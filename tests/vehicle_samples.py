"""A served test city with used cars, for the vehicle API, CLI, portal and browser suites.

Imported as ``vehicles.vehicle_samples`` (``tests/`` is on the path through conftest; this
directory has no ``__init__.py``). Agencies: city-hall is the ``vehicle_registry``,
``vehicle-bank`` the ``custodian_bank``, ``vehicle-station`` the inspector, repairer and
insurer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from civicledger.agency.ledger import AgencyLedger, CityLedger
from civicledger.city import CityDir
from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from identity_samples import issuing_city

ROLLED = "KMHSAMPLE00000001"
CLEAN = "KMHSAMPLE00000002"
LIENED = "KMHSAMPLE00000003"
REGISTRY = "city-hall"
BANK = "vehicle-bank"
STATION = "vehicle-station"
ROLES = {
    "vehicle_registry": REGISTRY,
    "custodian_bank": BANK,
    "vehicle_inspector": STATION,
    "vehicle_repairer": STATION,
    "vehicle_insurer": STATION,
}
FIRST = PrivateKey.from_seed(sha256(b"vehicle-samples/first"))
SECOND = PrivateKey.from_seed(sha256(b"vehicle-samples/second"))
BUYER = PrivateKey.from_seed(sha256(b"vehicle-samples/buyer"))


def digest(label: str) -> str:
    return sha256(b"vehicle-samples/" + label.encode()).hex()


def vehicle_city(root: Path) -> CityDir:
    """A new city whose agencies hold the vehicle roles; call before serving it."""
    layout = issuing_city(root, more_agencies=[BANK, STATION])
    setup = CityLedger(layout)
    for role, agency in ROLES.items():
        setup.send("root", "governance", "grant_role", {"agency": agency, "role": role})
    return layout


def _register(ledger: AgencyLedger, vin: str, owner: PrivateKey, km: int) -> None:
    args: dict[str, Any] = {
        "vin": vin,
        "owner": owner.public.did,
        "make": "hyundai",
        "model_year": 2018,
        "fuel": "gasoline",
        "odometer_km": km,
    }
    ledger.send(REGISTRY, "vehicles", "register", args)


def _inspect(ledger: AgencyLedger, vin: str, km: int, label: str) -> None:
    args = {"vin": vin, "odometer_km": km, "record_hash": digest(label), "kind": "performance"}
    ledger.send(STATION, "vehicles", "inspect", args)


def populate(ledger: AgencyLedger) -> None:
    """ROLLED: two owners, 60,100 km then 20,000 km (a rollback), a collision (block times
    are the wall clock's, seconds apart, so readings stay within the plausible rate). CLEAN: one
    owner, an inspection (``digest("clean-disclosure")``). LIENED: a car with an open lien."""
    _register(ledger, ROLLED, FIRST, 60_000)
    _inspect(ledger, ROLLED, 60_100, "rolled-1")
    ledger.send(REGISTRY, "vehicles", "transfer", {"vin": ROLLED, "new_owner": SECOND.public.did})
    _inspect(ledger, ROLLED, 20_000, "rolled-2")
    accident = {
        "vin": ROLLED,
        "kind": "collision",
        "claim_hash": digest("claim"),
        "paid_krw": 900_000,
    }
    ledger.send(STATION, "vehicles", "accident", accident)
    _register(ledger, CLEAN, FIRST, 0)
    _inspect(ledger, CLEAN, 100, "clean-disclosure")
    _register(ledger, LIENED, SECOND, 0)
    _inspect(ledger, LIENED, 100, "liened-disclosure")
    lien = {"vin": LIENED, "encumbrance_id": "capital-1", "holder_hash": digest("capital")}
    ledger.send(REGISTRY, "vehicles", "lien", lien)
