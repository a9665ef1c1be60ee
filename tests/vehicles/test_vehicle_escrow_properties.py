"""Hypothesis drives sales on the real vehicles contract and checks escrow conservation.

Each example is a fresh city with three registered cars; steps (offer, accept, deposit, settle
by transfer, cancel by either party or the registry, liens on and off, bank confirmations) run
one transaction per block, in any order, so most are refused. After every step:
``deposited == held + released + refunded``, ``held`` equals the prices of funded sales, every
order pays one closed sale's price once, and the owner of each car is its registered owner or a
buyer of a settled sale. A refused step must carry one of its method's reasons.

``CIVIC_HYPOTHESIS_EXAMPLES`` raises the number of examples (default 60: about 3 s).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from vehicle_helpers import T0, grant_roles, inspect, owner, ref, register, send

from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from civicledger.services.registry import city_registry
from conftest import Ledger, make_city

EXAMPLES = int(os.environ.get("CIVIC_HYPOTHESIS_EXAMPLES", "60"))
VINS = ["KMHPR0P0000000001", "KMHPR0P0000000002", "KMHPR0P0000000003"]
PEOPLE = [owner(f"prop/{n}") for n in range(4)]
REASONS = {
    "offer": {"not_owner", "self_sale", "sale_pending", "vehicle_encumbered"},
    "accept": {"unknown_sale", "not_buyer", "sale_not_offered", "vehicle_encumbered"},
    "deposit": {"sale_not_accepted", "wrong_amount"},
    "transfer": {
        "unknown_sale",
        "sale_not_funded",
        "vehicle_encumbered",
        "sale_mismatch",
        "buyer_mismatch",
        "same_owner",
    },
    "cancel": {"unknown_sale", "not_party", "sale_closed"},
    "lien": {"encumbrance_exists"},
    "release": {"unknown_encumbrance"},
    "confirm_order": {"unknown_order", "already_paid"},
}


class Escrow:
    """One city and its cars; each method is one step."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="vehicle-escrow-"))
        self.city = make_city(self.tmp / "city", city_registry())
        self.chain = self.city.open_chain()
        self.ledger = Ledger(self.city, self.chain)
        grant_roles(self.city, self.ledger)
        self.owners: dict[str, set[str]] = {}
        for n, vin in enumerate(VINS):
            register(self.city, self.ledger, vin, PEOPLE[n], T0 + n)
            inspect(self.city, self.ledger, vin, 1_000, f"prop-{vin}", T0 + 10 + n)
            self.owners[vin] = {PEOPLE[n].public.did}
        self.refs = 0

    def teardown(self) -> None:
        self.chain.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _send(self, key: PrivateKey, method: str, args: dict[str, Any]) -> Receipt:
        receipt = send(self.ledger, key, method, args)
        event(f"{method}: {receipt.reason or 'ok'}")
        if receipt.status != "ok":
            assert receipt.reason in REASONS[method], (method, receipt.reason)
        return receipt

    def _bank_ref(self) -> str:
        self.refs += 1
        return ref(f"bank/{self.refs}")

    def _sale(self, pick: int) -> dict[str, Any] | None:
        """The ``pick``-th sale counting back from the newest (most steps act on a recent one)."""
        count = int(self.chain.query("vehicles", "escrow", {})["sale_seq"])
        if count == 0:
            return None
        return dict(self.chain.query("vehicles", "sale", {"sale_id": max(count - pick, 1)}))

    def _key(self, did: str) -> PrivateKey:
        return next(p for p in PEOPLE if p.public.did == did)

    def offer(self, vin: str, honest: int, buyer: PrivateKey, price: int) -> None:
        current = self.chain.query("vehicles", "vehicle", {"vin": vin})["owner"]
        seller = self._key(current) if honest else PEOPLE[price % len(PEOPLE)]
        args = {
            "vin": vin,
            "buyer": buyer.public.did,
            "price": price,
            "disclosure_hash": ref(f"prop-{vin}"),
        }
        self._send(seller, "offer", args)

    def accept(self, pick: int, honest: int, who: PrivateKey) -> None:
        sale = self._sale(pick)
        if sale is not None:
            key = self._key(sale["buyer"]) if honest else who
            self._send(key, "accept", {"sale_id": sale["sale_id"]})

    def deposit(self, pick: int, short: int) -> None:
        sale = self._sale(pick)
        if sale is None:
            return
        amount = max(sale["price"] - (short == 0), 1)
        args = {"sale_id": sale["sale_id"], "amount": amount, "bank_reference": self._bank_ref()}
        self._send(self.city.archivist, "deposit", args)

    def settle(self, pick: int) -> None:
        found = self._sale(pick)
        if found is None:
            return
        args = {"vin": found["vin"], "new_owner": found["buyer"], "sale_id": found["sale_id"]}
        if self._send(self.city.clerk, "transfer", args).status == "ok":
            self.owners[found["vin"]].add(found["buyer"])

    def cancel(self, pick: int, who: PrivateKey | None) -> None:
        sale = self._sale(pick)
        if sale is not None:
            self._send(who or self.city.clerk, "cancel", {"sale_id": sale["sale_id"]})

    def lien(self, vin: str, on: bool) -> None:
        if on:
            args = {"vin": vin, "encumbrance_id": "lien", "holder_hash": ref("creditor")}
            self._send(self.city.clerk, "lien", args)
        else:
            self._send(self.city.clerk, "release", {"vin": vin, "encumbrance_id": "lien"})

    def confirm(self, order: int) -> None:
        args = {"order_id": order, "bank_reference": self._bank_ref()}
        self._send(self.city.archivist, "confirm_order", args)

    def conserved(self) -> None:
        escrow = self.chain.query("vehicles", "escrow", {})
        assert escrow["deposited"] == escrow["held"] + escrow["released"] + escrow["refunded"]
        sales = self.chain.query("vehicles", "sales", {"limit": 1000})["sales"]
        assert escrow["held"] == sum(s["price"] for s in sales if s["status"] == "funded")
        orders = self.chain.query("vehicles", "orders", {"limit": 1000})["orders"]
        by_sale = {o["sale_id"]: o for o in orders}
        assert len(by_sale) == len(orders)
        released = sum(o["amount"] for o in orders if o["kind"] == "payout")
        refunded = sum(o["amount"] for o in orders if o["kind"] == "refund")
        assert (released, refunded) == (escrow["released"], escrow["refunded"])
        assert escrow["paid"] == sum(o["amount"] for o in orders if o["status"] == "paid")
        for sale in sales:
            order = by_sale.get(sale["sale_id"])
            if sale["status"] == "settled":
                assert order is not None
                assert (order["kind"], order["to"]) == ("payout", sale["seller"])
            elif order is not None:
                assert (sale["status"], order["kind"], order["to"]) == (
                    "cancelled",
                    "refund",
                    sale["buyer"],
                )
        for vin in VINS:
            car = self.chain.query("vehicles", "vehicle", {"vin": vin})
            assert car["owner"] in self.owners[vin]


STEPS = ("offer", "accept", "deposit", "settle", "cancel", "lien", "confirm")
steps = st.lists(
    st.tuples(
        st.sampled_from(STEPS),
        st.integers(0, 4),
        st.sampled_from(PEOPLE),
        st.integers(1, 50_000_000),
        st.sampled_from(VINS),
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(steps=steps)
def test_escrow_is_conserved(steps: list[tuple[str, int, PrivateKey, int, str]]) -> None:
    run = Escrow()
    try:
        for name, pick, who, number, vin in steps:
            honest = number % 5
            if name == "offer":
                run.offer(vin, honest, who, number)
            elif name == "accept":
                run.accept(pick % 4, honest, who)
            elif name == "deposit":
                run.deposit(pick % 4, number % 10)
            elif name == "settle":
                run.settle(pick % 4)
            elif name == "cancel":
                run.cancel(pick % 4, None if pick == 4 else who)
            elif name == "lien":
                run.lien(vin, number % 2 == 0)
            else:
                run.confirm(pick % 4 + 1)
            run.conserved()
    finally:
        run.teardown()
