"""Hypothesis drives the real currency contract on a real chain and checks its invariants.

Each example is a fresh city; every step is one transaction in a block of its own, its block
time advanced by a drawn delay (mostly under an hour, sometimes up to two days, so one-day lots
expire along the way). After every step the committed state must satisfy the invariants:
supply = minted - burned - expired, the balances sum to the supply, no balance is negative,
reserve >= supply + pending settlement, caps hold. A refused step must carry one of the reasons
its transaction may give; a payment that commits credits its payee with exactly its amount.

``CIVIC_HYPOTHESIS_EXAMPLES`` raises the number of examples (default 50: about 15 s).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from currency_helpers import (
    CUR,
    check_invariants,
    definition,
    grant_roles,
    holder,
    merchant,
    ref,
    send,
)
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from civicledger.services.registry import city_registry
from conftest import GENESIS_TIME_MS, Ledger, make_city

EXAMPLES = int(os.environ.get("CIVIC_HYPOTHESIS_EXAMPLES", "50"))
HOLDERS = [holder(f"prop/{n}") for n in range(4)]
MERCHANTS = {
    "bakery": (merchant("prop/bakery"), "food", "north"),
    "cafe": (merchant("prop/cafe"), "food", "north"),
    "kiosk": (merchant("prop/kiosk"), "food", "south"),
    "garage": (merchant("prop/garage"), "cars", "north"),
}
MERCHANT_KEYS = [key for key, _, _ in MERCHANTS.values()]
ACCOUNTS = HOLDERS + MERCHANT_KEYS
DAY = 86_400_000

amounts = st.integers(min_value=1, max_value=40_000)
percents = st.integers(min_value=1, max_value=120)
hours = st.integers(min_value=1_000, max_value=3_600_000)
delays = st.one_of(hours, hours, hours, st.integers(min_value=DAY // 2, max_value=2 * DAY))
"""Mostly minutes, sometimes a day or two: lots live one day."""
holders = st.sampled_from(HOLDERS)
accounts = st.sampled_from(ACCOUNTS)
merchants = st.sampled_from(MERCHANT_KEYS)

MINT_REASONS = {"reserve_exceeded", "balance_cap", "too_many_lots"}
PAY_REASONS = {
    "insufficient_funds",
    "merchant_not_allowed",
    "p2p_not_allowed",
    "merchant_suspended",
    "balance_cap",
    "self_payment",
    "too_many_lots",
}


class CurrencyMachine(RuleBasedStateMachine):
    """A city with a p2p currency, 4 holders and 4 merchants.

    The bakery is never suspended; the garage's category is excluded from spending.
    """

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="currency-prop-"))
        self.city = make_city(self.tmp / "city", city_registry())
        self.chain = self.city.open_chain()
        self.ledger = Ledger(self.city, self.chain)
        self.now = GENESIS_TIME_MS
        self.refs = 0
        self.orders = 0
        grant_roles(self.city, self.ledger)
        rules = definition(
            p2p=True,
            lot_ttl_days=1,
            balance_cap=60_000,
            monthly_purchase_cap=50_000,
            spend_categories=["food"],
        )
        self.send(self.city.clerk, "define", rules, 1_000)
        self.send(self.city.archivist, "attest_reserve", self.reserve(100_000), 1_000)
        for key in HOLDERS:
            args = {"currency_id": CUR, "account": key.public.did, "region": "north"}
            self.send(self.city.district, "enroll", args, 1_000)
        for merchant_id, (key, category, region) in MERCHANTS.items():
            args = {
                "merchant_id": merchant_id,
                "business_number_hash": ref(merchant_id),
                "category": category,
                "region": region,
                "account": key.public.did,
            }
            self.send(self.city.district, "register_merchant", args, 1_000)
        items = [{"to": key.public.did, "amount": 10_000} for key in HOLDERS]
        batch = {"currency_id": CUR, "items": items, "batch_id": "start"}
        self.send(self.city.clerk, "mint_batch", batch, 1_000)
        bakery = MERCHANT_KEYS[0].public.did
        self.send(HOLDERS[0], "pay", {"currency_id": CUR, "to": bakery, "amount": 5_000}, 1_000)

    def teardown(self) -> None:
        self.chain.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers --

    def send(self, key: PrivateKey, method: str, args: dict[str, Any], delay: int) -> Receipt:
        self.now += delay
        receipt = send(self.ledger, key, method, args, at=self.now)
        event(f"{method}: {receipt.reason or 'ok'}")
        return receipt

    def ref(self) -> str:
        self.refs += 1
        return ref(f"prop/{self.refs}")

    def reserve(self, amount: int) -> dict[str, Any]:
        return {"currency_id": CUR, "amount": amount, "reference": self.ref()}

    def balance(self, key: PrivateKey, field: str = "spendable") -> int:
        """What the account may spend at the head's time (or its whole ``balance``)."""
        args = {"currency_id": CUR, "account": key.public.did}
        info = self.chain.query("currency", "balance", args)
        return 0 if info is None else int(info[field])

    @staticmethod
    def expect(receipt: Receipt, reasons: set[str]) -> bool:
        assert receipt.status == "ok" or receipt.reason in reasons, (
            receipt.reason,
            receipt.message,
        )
        return receipt.status == "ok"

    # -- rules --

    @rule(amount=st.integers(min_value=1, max_value=80_000), delay=delays)
    def attest_reserve(self, amount: int, delay: int) -> None:
        receipt = self.send(self.city.archivist, "attest_reserve", self.reserve(amount), delay)
        self.expect(receipt, set())

    @rule(to=holders, amount=amounts, delay=delays)
    def mint(self, to: PrivateKey, amount: int, delay: int) -> None:
        args = {"currency_id": CUR, "to": to.public.did, "amount": amount, "reason": "welfare"}
        self.expect(self.send(self.city.clerk, "mint", args, delay), MINT_REASONS)

    @rule(
        items=st.lists(st.tuples(holders, amounts), min_size=1, max_size=6),
        delay=delays,
    )
    def mint_batch(self, items: list[tuple[PrivateKey, int]], delay: int) -> None:
        self.refs += 1
        args = {
            "currency_id": CUR,
            "items": [{"to": key.public.did, "amount": amount} for key, amount in items],
            "batch_id": f"batch-{self.refs}",
        }
        self.expect(self.send(self.city.clerk, "mint_batch", args, delay), MINT_REASONS)

    @rule(to=holders, amount=amounts, delay=delays)
    def purchase(self, to: PrivateKey, amount: int, delay: int) -> None:
        args = {
            "currency_id": CUR,
            "account": to.public.did,
            "amount": amount,
            "bank_reference": self.ref(),
        }
        receipt = self.send(self.city.archivist, "purchase", args, delay)
        self.expect(receipt, {"monthly_cap", "balance_cap", "too_many_lots"})

    @rule(payer=accounts, payee=accounts, amount=amounts, delay=delays)
    def pay(self, payer: PrivateKey, payee: PrivateKey, amount: int, delay: int) -> None:
        before = self.balance(payee, "balance")
        args = {"currency_id": CUR, "to": payee.public.did, "amount": amount}
        if self.expect(self.send(payer, "pay", args, delay), PAY_REASONS):
            assert self.balance(payee, "balance") == before + amount

    @rule(payer=holders, payee=st.sampled_from(MERCHANT_KEYS[:2]), percent=percents, delay=delays)
    def shop(self, payer: PrivateKey, payee: PrivateKey, percent: int, delay: int) -> None:
        """Pay a food merchant a share of the balance (over 100%: more than one has)."""
        self.pay(payer, payee, max(1, self.balance(payer) * percent // 100), delay)

    @rule(key=merchants, percent=percents, delay=delays)
    def redeem(self, key: PrivateKey, percent: int, delay: int) -> None:
        amount = max(1, self.balance(key) * percent // 100)
        args = {"currency_id": CUR, "amount": amount, "payout_reference_hash": self.ref()}
        if self.expect(self.send(key, "redeem", args, delay), {"insufficient_funds"}):
            self.orders += 1

    @rule(pick=st.integers(min_value=1, max_value=50), delay=delays)
    def settle(self, pick: int, delay: int) -> None:
        args = {
            "currency_id": CUR,
            "order_id": pick % (self.orders + 1) + 1,
            "bank_reference": self.ref(),
        }
        receipt = self.send(self.city.archivist, "settle", args, delay)
        self.expect(receipt, {"unknown_order", "already_settled"})

    @rule(key=holders, delay=delays)
    def expire(self, key: PrivateKey, delay: int) -> None:
        args = {"currency_id": CUR, "account": key.public.did}
        self.expect(self.send(self.city.outsider, "expire", args, delay), set())

    @rule(to=holders, hours=st.integers(min_value=1, max_value=40), delay=delays)
    def attest_activity(self, to: PrivateKey, hours: int, delay: int) -> None:
        args = {
            "currency_id": CUR,
            "account": to.public.did,
            "activity": "volunteer_hour",
            "quantity": hours,
            "reference": self.ref(),
        }
        self.expect(self.send(self.city.district, "attest_activity", args, delay), MINT_REASONS)

    @rule(merchant_id=st.sampled_from(["cafe", "garage"]), delay=delays)
    def suspend(self, merchant_id: str, delay: int) -> None:
        args = {"merchant_id": merchant_id}
        receipt = self.send(self.city.district, "suspend_merchant", args, delay)
        self.expect(receipt, {"merchant_suspended"})

    @invariant()
    def invariants_hold(self) -> None:
        check_invariants(self.chain)


CurrencyMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=30, deadline=None
)
TestCurrencyInvariants = CurrencyMachine.TestCase
