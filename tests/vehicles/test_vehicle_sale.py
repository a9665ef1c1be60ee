"""The escrowed sale through a real Chain: offer with disclosure, accept, deposit, settle by
transfer (payout), cancel (refund), bank confirmation, and every refusal on the way, including
the sale of a car with a lien."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from vehicle_helpers import DAY, T0, VIN, VIN2, grant_roles, inspect, owner, ref, register, send

from civicledger.node.chain import Chain
from civicledger.services.registry import city_registry
from civicledger.services.vehicles.contract import DISCLOSURE_MAX_AGE_MS
from conftest import City, Ledger, make_city, ok, refused

SELLER = owner("seller")
BUYER = owner("buyer")
OTHER = owner("other")
PRICE = 18_500_000


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def world(city: City, ledger: Ledger) -> Ledger:
    grant_roles(city, ledger)
    register(city, ledger, VIN, SELLER, T0, km=0)
    register(city, ledger, VIN2, OTHER, T0 + 1000, km=0)
    inspect(city, ledger, VIN, 42_000, "disclosure", T0 + 300 * DAY)
    inspect(city, ledger, VIN2, 1_000, "other-car", T0 + 300 * DAY)
    inspect(city, ledger, VIN, 42_100, "periodic", T0 + 301 * DAY, kind="periodic")
    return ledger


def offer_args(**change: Any) -> dict[str, Any]:
    args = {
        "vin": VIN,
        "buyer": BUYER.public.did,
        "price": PRICE,
        "disclosure_hash": ref("disclosure"),
    }
    return {**args, **change}


def escrow(chain: Chain) -> dict[str, int]:
    return dict(chain.query("vehicles", "escrow", {}))


def funded(city: City, ledger: Ledger) -> int:
    sale = ok(send(ledger, SELLER, "offer", offer_args()))
    ok(send(ledger, BUYER, "accept", {"sale_id": sale["sale_id"]}))
    deposit = {"sale_id": sale["sale_id"], "amount": PRICE, "bank_reference": ref("dep")}
    ok(send(ledger, city.archivist, "deposit", deposit))
    return int(sale["sale_id"])


def test_a_sale_settles_with_the_transfer(city: City, world: Ledger, chain: Chain) -> None:
    sale_id = funded(city, world)
    assert escrow(chain)["held"] == PRICE
    transfer = {"vin": VIN, "new_owner": BUYER.public.did, "sale_id": sale_id}
    event = ok(send(world, city.clerk, "transfer", transfer))
    assert event["kind"] == "transfer"
    assert event["price"] == PRICE
    sale = chain.query("vehicles", "sale", {"sale_id": sale_id})
    assert sale["status"] == "settled"
    assert sale["order_id"] == 1
    (order,) = chain.query("vehicles", "orders", {"status": "pending"})["orders"]
    assert (order["kind"], order["to"], order["amount"]) == ("payout", SELLER.public.did, PRICE)
    totals = escrow(chain)
    assert (totals["deposited"], totals["held"], totals["released"]) == (PRICE, 0, PRICE)
    assert (totals["refunded"], totals["paid"]) == (0, 0)
    car = chain.query("vehicles", "vehicle", {"vin": VIN})
    assert car["owner"] == BUYER.public.did
    assert car["owner_count"] == 2
    assert car["sale"] is None
    confirm = {"order_id": 1, "bank_reference": ref("payout")}
    ok(send(world, city.archivist, "confirm_order", confirm))
    refused(send(world, city.archivist, "confirm_order", confirm), "already_paid")
    assert escrow(chain)["paid"] == PRICE
    # The new owner can sell on; the old one no longer can.
    refused(send(world, SELLER, "offer", offer_args(buyer=OTHER.public.did)), "not_owner")


def test_a_sale_of_a_car_with_a_lien_is_refused(city: City, world: Ledger, chain: Chain) -> None:
    lien = {"vin": VIN, "encumbrance_id": "capital-1", "holder_hash": ref("capital")}
    ok(send(world, city.clerk, "lien", lien))
    refused(send(world, SELLER, "offer", offer_args()), "vehicle_encumbered")
    assert chain.query("vehicles", "sale", {"sale_id": 1}) is None


def test_a_lien_after_the_offer_blocks_acceptance_and_settlement(
    city: City, world: Ledger, chain: Chain
) -> None:
    sale = ok(send(world, SELLER, "offer", offer_args()))
    lien = {"vin": VIN, "encumbrance_id": "tax-1", "holder_hash": ref("tax")}
    ok(send(world, city.clerk, "seize", lien))
    refused(send(world, BUYER, "accept", {"sale_id": sale["sale_id"]}), "vehicle_encumbered")
    ok(send(world, city.clerk, "release", {"vin": VIN, "encumbrance_id": "tax-1"}))
    ok(send(world, BUYER, "accept", {"sale_id": sale["sale_id"]}))
    deposit = {"sale_id": sale["sale_id"], "amount": PRICE, "bank_reference": ref("dep")}
    ok(send(world, city.archivist, "deposit", deposit))
    ok(send(world, city.clerk, "lien", {**lien, "encumbrance_id": "lien-2"}))
    transfer = {"vin": VIN, "new_owner": BUYER.public.did, "sale_id": sale["sale_id"]}
    refused(send(world, city.clerk, "transfer", transfer), "vehicle_encumbered")
    # The registry cancels: the held payment goes back to the buyer.
    cancelled = ok(send(world, city.clerk, "cancel", {"sale_id": sale["sale_id"]}))
    assert cancelled["status"] == "cancelled"
    (order,) = chain.query("vehicles", "orders", {})["orders"]
    assert (order["kind"], order["to"], order["amount"]) == ("refund", BUYER.public.did, PRICE)
    totals = escrow(chain)
    assert (totals["held"], totals["refunded"], totals["released"]) == (0, PRICE, 0)
    assert chain.query("vehicles", "vehicle", {"vin": VIN})["owner"] == SELLER.public.did


def test_the_buyer_withdraws_before_funding(city: City, world: Ledger, chain: Chain) -> None:
    sale = ok(send(world, SELLER, "offer", offer_args()))
    ok(send(world, BUYER, "cancel", {"sale_id": sale["sale_id"]}))
    assert chain.query("vehicles", "orders", {})["orders"] == []
    refused(send(world, SELLER, "cancel", {"sale_id": sale["sale_id"]}), "sale_closed")
    refused(send(world, BUYER, "accept", {"sale_id": sale["sale_id"]}), "sale_not_offered")
    # The car is free to be offered again.
    assert ok(send(world, SELLER, "offer", offer_args()))["sale_id"] == 2


def test_offer_refusals(city: City, world: Ledger) -> None:
    refused(send(world, BUYER, "offer", offer_args()), "not_owner")
    refused(send(world, SELLER, "offer", offer_args(buyer=SELLER.public.did)), "self_sale")
    refused(
        send(world, SELLER, "offer", offer_args(disclosure_hash=ref("nope"))), "unknown_disclosure"
    )
    refused(
        send(world, SELLER, "offer", offer_args(disclosure_hash=ref("other-car"))),
        "disclosure_mismatch",
    )
    refused(
        send(world, SELLER, "offer", offer_args(disclosure_hash=ref("periodic"))),
        "disclosure_mismatch",
    )
    refused(send(world, SELLER, "offer", offer_args(vin="KMHXX00XXXX000009")), "unknown_vehicle")
    ok(send(world, SELLER, "offer", offer_args()))
    refused(send(world, SELLER, "offer", offer_args()), "sale_pending")
    transfer = {"vin": VIN, "new_owner": OTHER.public.did}
    refused(send(world, city.clerk, "transfer", transfer), "sale_pending")


def test_a_stale_disclosure_is_refused(city: City, world: Ledger) -> None:
    late = T0 + 300 * DAY + DISCLOSURE_MAX_AGE_MS + 1
    refused(send(world, SELLER, "offer", offer_args(), at=late), "stale_disclosure")


def test_accept_deposit_transfer_and_cancel_refusals(
    city: City, world: Ledger, chain: Chain
) -> None:
    refused(send(world, BUYER, "accept", {"sale_id": 9}), "unknown_sale")
    sale_id = ok(send(world, SELLER, "offer", offer_args()))["sale_id"]
    refused(send(world, OTHER, "accept", {"sale_id": sale_id}), "not_buyer")
    deposit = {"sale_id": sale_id, "amount": PRICE, "bank_reference": ref("dep")}
    refused(send(world, city.archivist, "deposit", deposit), "sale_not_accepted")
    transfer = {"vin": VIN, "new_owner": BUYER.public.did, "sale_id": sale_id}
    refused(send(world, city.clerk, "transfer", transfer), "sale_not_funded")
    ok(send(world, BUYER, "accept", {"sale_id": sale_id}))
    refused(
        send(world, city.archivist, "deposit", {**deposit, "amount": PRICE - 1}), "wrong_amount"
    )
    ok(send(world, city.archivist, "deposit", deposit))
    refused(send(world, city.archivist, "deposit", deposit), "sale_not_accepted")
    refused(
        send(world, city.clerk, "transfer", {**transfer, "new_owner": OTHER.public.did}),
        "buyer_mismatch",
    )
    refused(send(world, city.clerk, "transfer", {**transfer, "vin": VIN2}), "sale_mismatch")
    refused(send(world, OTHER, "cancel", {"sale_id": sale_id}), "not_party")
    refused(send(world, city.district, "cancel", {"sale_id": sale_id}), "not_party")
    ok(send(world, city.clerk, "transfer", transfer))
    refused(send(world, BUYER, "cancel", {"sale_id": sale_id}), "sale_closed")
    refused(
        send(world, city.archivist, "confirm_order", {"order_id": 7, "bank_reference": ref("x")}),
        "unknown_order",
    )


def test_bank_references_are_single_use_and_only_the_holding_bank_confirms(
    city: City, world: Ledger, chain: Chain
) -> None:
    sale_id = funded(city, world)
    ok(send(world, city.clerk, "cancel", {"sale_id": sale_id}))
    confirm = {"order_id": 1, "bank_reference": ref("dep")}
    refused(send(world, city.archivist, "confirm_order", confirm), "duplicate_reference")
    # A second custodian bank may not confirm what the first holds.
    ok(
        world.send(
            city.root,
            "governance",
            "grant_role",
            {"agency": "district-office", "role": "custodian_bank"},
        )
    )
    confirm = {"order_id": 1, "bank_reference": ref("refund")}
    refused(send(world, city.district, "confirm_order", confirm), "wrong_bank")
    assert ok(send(world, city.archivist, "confirm_order", confirm))["status"] == "paid"
