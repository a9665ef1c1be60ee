"""Shared by the vehicle tests: roles, keys, digests and a car with a history.

Roles in ``testville`` for these tests: city-hall is the ``vehicle_registry``, archive the
``custodian_bank``, district-office the ``vehicle_inspector``, ``vehicle_repairer`` and
``vehicle_insurer``.
"""

from __future__ import annotations

from typing import Any

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from conftest import GENESIS_TIME_MS, City, Ledger, city_key, ok

VIN = "KMHXX00XXXX000001"
VIN2 = "KMHXX00XXXX000002"
DAY = 86_400_000
T0 = GENESIS_TIME_MS + 10 * DAY
ROLES = {
    "vehicle_registry": "city-hall",
    "custodian_bank": "archive",
    "vehicle_inspector": "district-office",
    "vehicle_repairer": "district-office",
    "vehicle_insurer": "district-office",
}


def grant_roles(city: City, ledger: Ledger) -> None:
    for role, agency in ROLES.items():
        ok(ledger.send(city.root, "governance", "grant_role", {"agency": agency, "role": role}))


def ref(label: str) -> str:
    """A document digest: the SHA-256 (hex) of an off-ledger record called ``label``."""
    return sha256(b"vehicle-tests/" + label.encode()).hex()


def owner(label: str) -> PrivateKey:
    return city_key(f"owner/{label}")


def send(
    ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any], at: int | None = None
) -> Receipt:
    """One vehicles transaction in a block of its own (at block time ``at``)."""
    return ledger.send(key, "vehicles", method, args, time_ms=at)


def register(city: City, ledger: Ledger, vin: str, first: PrivateKey, at: int, km: int = 0) -> Any:
    args = {
        "vin": vin,
        "owner": first.public.did,
        "make": "hyundai",
        "model_year": 2019,
        "fuel": "gasoline",
        "odometer_km": km,
    }
    return ok(send(ledger, city.clerk, "register", args, at=at))


def inspect(
    city: City, ledger: Ledger, vin: str, km: int, label: str, at: int, kind: str = "performance"
) -> Any:
    args = {"vin": vin, "odometer_km": km, "record_hash": ref(label), "kind": kind}
    return ok(send(ledger, city.district, "inspect", args, at=at))
