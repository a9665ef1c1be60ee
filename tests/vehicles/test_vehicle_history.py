"""The vehicles contract's history side through a real Chain: registration, inspections,
repairs, cluster replacement, accidents, liens and seizures, odometer flags, every refusal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from vehicle_helpers import (
    DAY,
    T0,
    VIN,
    VIN2,
    grant_roles,
    inspect,
    owner,
    ref,
    register,
    send,
)

from civicledger.errors import TxRejected
from civicledger.node.chain import Chain
from civicledger.services.registry import city_registry
from civicledger.services.vehicles.contract import GRACE_KM, MAX_KM_PER_DAY, odometer_flags
from conftest import City, Ledger, make_city, ok, refused

KIM = owner("kim")
LEE = owner("lee")


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def world(city: City, ledger: Ledger) -> Ledger:
    grant_roles(city, ledger)
    register(city, ledger, VIN, KIM, T0, km=10)
    return ledger


def events(chain: Chain, vin: str = VIN) -> list[dict[str, Any]]:
    return list(chain.query("vehicles", "events", {"vin": vin, "limit": 1000})["events"])


def vehicle(chain: Chain, vin: str = VIN) -> dict[str, Any]:
    return dict(chain.query("vehicles", "vehicle", {"vin": vin}))


def test_registration_and_inspection_build_a_numbered_history(
    city: City, world: Ledger, chain: Chain
) -> None:
    inspect(city, world, VIN, 15_000, "insp-1", T0 + 30 * DAY, kind="periodic")
    inspect(city, world, VIN, 30_000, "insp-2", T0 + 60 * DAY)
    found = events(chain)
    assert [e["seq"] for e in found] == [1, 2, 3]
    assert [e["kind"] for e in found] == ["registration", "inspection", "inspection"]
    assert [e["odometer_km"] for e in found] == [10, 15_000, 30_000]
    assert all(e["flags"] == [] for e in found)
    assert found[2]["by"] == "district-office"
    assert found[0]["by"] == "city-hall"
    record = chain.query("vehicles", "record", {"record_hash": ref("insp-2")})
    assert record["vin"] == VIN
    assert record["seq"] == 3
    assert record["kind"] == "performance"
    car = vehicle(chain)
    assert car["owner"] == KIM.public.did
    assert car["owner_count"] == 1
    assert car["events"] == 3
    assert car["discrepancy_count"] == 0
    page = chain.query("vehicles", "events", {"vin": VIN, "after": 1, "limit": 1})
    assert [e["seq"] for e in page["events"]] == [2]
    assert page["next"] == 2


def test_an_odometer_rollback_is_recorded_and_marks_the_car_for_good(
    city: City, world: Ledger, chain: Chain
) -> None:
    inspect(city, world, VIN, 80_000, "before", T0 + 200 * DAY)
    rolled = inspect(city, world, VIN, 30_000, "after", T0 + 400 * DAY)
    assert rolled["flags"] == ["rollback"]
    car = vehicle(chain)
    assert car["discrepancy_count"] == 1
    (mark,) = car["discrepancies"]
    assert (mark["previous_km"], mark["reading_km"], mark["seq"]) == (80_000, 30_000, 3)
    # The baseline moves on: a later honest reading is not flagged, the mark stays.
    assert inspect(city, world, VIN, 35_000, "later", T0 + 430 * DAY)["flags"] == []
    ok(send(world, city.clerk, "transfer", {"vin": VIN, "new_owner": LEE.public.did}))
    car = vehicle(chain)
    assert car["discrepancy_count"] == 1
    assert car["owner_count"] == 2
    assert [e["flags"] for e in events(chain)][2] == ["rollback"]


def test_readings_faster_than_the_bound_are_flagged(
    city: City, world: Ledger, chain: Chain
) -> None:
    allowed = MAX_KM_PER_DAY * 10 + GRACE_KM
    assert inspect(city, world, VIN, 10 + allowed, "fast-ok", T0 + 10 * DAY)["flags"] == []
    flagged = inspect(city, world, VIN, 10 + allowed + 1 + 2 * allowed, "fast", T0 + 12 * DAY)
    assert flagged["flags"] == ["implausible_rate"]
    assert vehicle(chain)["discrepancy_count"] == 0


def test_odometer_flags_is_pure_and_bounded() -> None:
    assert odometer_flags({"last_km": None, "last_ms": None}, 5, 0) == []
    state = {"last_km": 1_000, "last_ms": 0}
    assert odometer_flags(state, 999, DAY) == ["rollback"]
    assert odometer_flags(state, 1_000 + MAX_KM_PER_DAY + GRACE_KM, DAY) == []
    assert odometer_flags(state, 1_001 + MAX_KM_PER_DAY + GRACE_KM, DAY) == ["implausible_rate"]


def test_a_cluster_replacement_is_a_legitimate_reset(
    city: City, world: Ledger, chain: Chain
) -> None:
    inspect(city, world, VIN, 50_000, "i1", T0 + 100 * DAY)
    args = {"vin": VIN, "work_hash": ref("cluster"), "before_km": 50_200, "after_km": 0}
    event = ok(send(world, city.district, "replace_cluster", args, at=T0 + 101 * DAY))
    assert event["flags"] == ["cluster_replacement"]
    assert inspect(city, world, VIN, 900, "i2", T0 + 110 * DAY)["flags"] == []
    car = vehicle(chain)
    assert car["discrepancy_count"] == 0
    assert car["odometer"]["offset_km"] == 50_200
    assert car["odometer"]["clusters"] == 2


def test_a_replacement_hiding_a_rollback_is_still_marked(
    city: City, world: Ledger, chain: Chain
) -> None:
    inspect(city, world, VIN, 50_000, "i1", T0 + 100 * DAY)
    args = {"vin": VIN, "work_hash": ref("cluster"), "before_km": 20_000, "after_km": 0}
    event = ok(send(world, city.district, "replace_cluster", args, at=T0 + 101 * DAY))
    assert event["flags"] == ["rollback", "cluster_replacement"]
    assert vehicle(chain)["discrepancy_count"] == 1
    bad = {**args, "before_km": 10, "after_km": 20}
    refused(send(world, city.district, "replace_cluster", bad), "bad_cluster_reading")


def test_repairs_and_accidents(city: City, world: Ledger, chain: Chain) -> None:
    repair = {"vin": VIN, "work_hash": ref("r1"), "parts": ["bumper", "headlamp"]}
    ok(send(world, city.district, "repair", repair))
    for kind in ("collision", "flood"):
        args = {"vin": VIN, "kind": kind, "claim_hash": ref(kind), "paid_krw": 1_200_000}
        ok(send(world, city.district, "accident", args))
    car = vehicle(chain)
    assert car["accidents"] == 2
    assert car["flags"] == ["flood"]
    assert [e["kind"] for e in events(chain)][1:] == ["repair", "accident", "accident"]


def test_liens_and_seizures_open_and_release(city: City, world: Ledger, chain: Chain) -> None:
    lien = {"vin": VIN, "encumbrance_id": "lien-1", "holder_hash": ref("capital")}
    ok(send(world, city.clerk, "lien", lien))
    refused(send(world, city.clerk, "lien", lien), "encumbrance_exists")
    seize = {"vin": VIN, "encumbrance_id": "tax-7", "holder_hash": ref("tax office")}
    ok(send(world, city.clerk, "seize", seize))
    assert vehicle(chain)["encumbrances"] == {
        "lien-1": {"kind": "lien", "seq": 2},
        "tax-7": {"kind": "seizure", "seq": 3},
    }
    transfer = {"vin": VIN, "new_owner": LEE.public.did}
    refused(send(world, city.clerk, "transfer", transfer), "vehicle_encumbered")
    ok(send(world, city.clerk, "release", {"vin": VIN, "encumbrance_id": "lien-1"}))
    refused(
        send(world, city.clerk, "release", {"vin": VIN, "encumbrance_id": "lien-1"}),
        "unknown_encumbrance",
    )
    ok(send(world, city.clerk, "release", {"vin": VIN, "encumbrance_id": "tax-7"}))
    ok(send(world, city.clerk, "transfer", transfer))
    assert [e["kind"] for e in events(chain)][1:] == [
        "lien",
        "seizure",
        "release",
        "release",
        "transfer",
    ]


def test_history_refusals(city: City, world: Ledger, chain: Chain) -> None:
    refused(
        send(world, city.clerk, "register", {**_reg(VIN), "owner": KIM.public.did}),
        "vehicle_exists",
    )
    insp = {"vin": VIN2, "odometer_km": 1, "record_hash": ref("x"), "kind": "periodic"}
    refused(send(world, city.district, "inspect", insp), "unknown_vehicle")
    inspect(city, world, VIN, 100, "dup", T0 + DAY)
    refused(
        send(world, city.district, "inspect", {**insp, "vin": VIN, "record_hash": ref("dup")}),
        "duplicate_record",
    )
    refused(
        send(world, city.clerk, "transfer", {"vin": VIN, "new_owner": KIM.public.did}),
        "same_owner",
    )
    for key in range(40):
        lien = {"vin": VIN, "encumbrance_id": f"l{key}", "holder_hash": ref(str(key))}
        receipt = send(world, city.clerk, "lien", lien)
        if key >= 32:
            refused(receipt, "too_many_encumbrances")
            break


def _reg(vin: str) -> dict[str, Any]:
    return {"vin": vin, "make": "kia", "model_year": 2020, "fuel": "diesel", "odometer_km": 0}


@pytest.mark.parametrize(
    ("signer", "method", "args"),
    [
        ("district", "register", {**_reg(VIN2), "owner": KIM.public.did}),
        (
            "clerk",
            "inspect",
            {"vin": VIN, "odometer_km": 1, "record_hash": ref("a"), "kind": "periodic"},
        ),
        ("clerk", "accident", {"vin": VIN, "kind": "fire", "claim_hash": ref("c")}),
        ("archivist", "lien", {"vin": VIN, "encumbrance_id": "l", "holder_hash": ref("h")}),
        ("outsider", "repair", {"vin": VIN, "work_hash": ref("w")}),
    ],
)
def test_roles_are_enforced(
    city: City, world: Ledger, signer: str, method: str, args: dict[str, object]
) -> None:
    with pytest.raises(TxRejected) as raised:
        send(world, getattr(city, signer), method, args)
    assert raised.value.reason == "unauthorized"


@pytest.mark.parametrize(
    "args",
    [
        {**_reg("KMHXX00XXXX00000I"), "owner": KIM.public.did},  # I is not a VIN letter
        {**_reg(VIN2), "owner": "Kim Minsu"},  # a name is not a key
        {**_reg(VIN2), "owner": KIM.public.did, "odometer_km": -1},
        {**_reg(VIN2), "owner": KIM.public.did, "odometer_km": 10_000_000},
        {**_reg(VIN2), "owner": KIM.public.did, "name": "Kim Minsu"},
    ],
)
def test_bad_arguments_are_rejected_at_admission(
    city: City, world: Ledger, args: dict[str, object]
) -> None:
    with pytest.raises(TxRejected):
        send(world, city.clerk, "register", args)


def test_every_refusal_reason_is_tested() -> None:
    """Each ``ctx.fail`` reason of the contract appears in a test of this directory."""
    here = Path(__file__).parent
    source = (here.parents[1] / "src/civicledger/services/vehicles/contract.py").read_text()
    reasons = set(re.findall(r'ctx\.fail\(\s*"([a-z_]+)"', source))
    assert len(reasons) >= 25
    tests = "".join(
        p.read_text() for p in sorted(here.glob("test_*.py")) if p.name != Path(__file__).name
    )
    tests += Path(__file__).read_text().split("def test_every_refusal_reason_is_tested")[0]
    missing = sorted(r for r in reasons if f'"{r}"' not in tests)
    assert missing == []
