"""Hypothesis drives the real donations contract on a real chain and checks its invariants.

Each example is a fresh city with one open campaign; steps donate, disburse (sometimes more than
the balance: refused) and check after every step: donated == disbursed + balance, balance >= 0,
FIFO (donations before ``fifo_next`` fully allocated, after it untouched), every
disbursement's shares sum to its amount, every donation's shares sum to its ``allocated``.

``CIVIC_HYPOTHESIS_EXAMPLES`` raises the number of examples (default 25: a few seconds).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from donation_helpers import (
    CAMPAIGN,
    CHARITY_KEY,
    disbursement,
    donation,
    send,
    setup_world,
)
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from civicledger.services.registry import city_registry
from conftest import Ledger, make_city

EXAMPLES = int(os.environ.get("CIVIC_HYPOTHESIS_EXAMPLES", "25"))


class CampaignMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="donations-prop-"))
        self.city = make_city(self.tmp / "city", city_registry())
        self.chain = self.city.open_chain()
        self.ledger = Ledger(self.city, self.chain)
        setup_world(self.city, self.ledger)
        self.labels = 0
        self.donated = 0
        self.disbursed = 0

    def teardown(self) -> None:
        self.chain.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def label(self) -> str:
        self.labels += 1
        return f"p{self.labels}"

    def query(self, method: str, **args: Any) -> Any:
        return self.chain.query("donations", method, {"campaign_id": CAMPAIGN, **args})

    @rule(amount=st.integers(min_value=1, max_value=50_000), named=st.booleans())
    def donate(self, amount: int, named: bool) -> None:
        label = self.label()
        args = donation(amount, label, f"secret/{label}" if named else None)
        receipt = send(self.ledger, self.city.archivist, "donate", args)
        assert receipt.status == "ok", receipt.reason
        self.donated += amount

    @rule(percent=st.integers(min_value=1, max_value=130), kind=st.sampled_from(["cash", "goods"]))
    def disburse(self, percent: int, kind: str) -> None:
        balance = self.query("campaign")["balance"]
        amount = max(1, balance * percent // 100)
        receipt = send(
            self.ledger, CHARITY_KEY, "disburse", disbursement(amount, self.label(), kind)
        )
        event(f"disburse: {receipt.reason or 'ok'}")
        if amount > balance:
            assert receipt.reason == "insufficient_campaign_balance"
            return
        assert receipt.status == "ok", receipt.reason
        assert sum(s["amount"] for s in receipt.result["shares"]) == amount
        self.disbursed += amount

    @invariant()
    def conserved(self) -> None:
        campaign = self.query("campaign")
        assert campaign["donated"] == self.donated
        assert campaign["disbursed"] == self.disbursed
        assert campaign["donated"] == campaign["disbursed"] + campaign["balance"]
        assert campaign["balance"] >= 0

    @invariant()
    def fifo(self) -> None:
        campaign = self.query("campaign")
        donations = self.query("donations", limit=1000)["donations"]
        assert len(donations) == campaign["donations"]
        unallocated = 0
        for d in donations:
            shares = self.query("donation", seq=d["seq"])["shares"]
            assert sum(s["amount"] for s in shares) == d["allocated"]
            if d["seq"] < campaign["fifo_next"]:
                assert d["allocated"] == d["amount"]
            elif d["seq"] > campaign["fifo_next"]:
                assert d["allocated"] == 0
            unallocated += d["amount"] - d["allocated"]
        assert unallocated == campaign["balance"]


CampaignMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=12, deadline=None
)
TestCampaignProperties = CampaignMachine.TestCase
