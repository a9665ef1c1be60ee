"""Many clients spending the same balance at once, through a running EmbeddedNode.

Exactly the affordable payments commit; the others get a failed receipt with reason
``insufficient_funds``; no balance goes negative and the currency's invariants hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from currency_helpers import CUR, ROLES, check_invariants, definition, holder, merchant, ref

from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.registry import city_registry
from conftest import City, make_city

BAKERY = merchant("concurrent/bakery")


class Wallet:
    """One key's nonces, shared by every thread (device) that signs with it."""

    def __init__(self, city: City, node: EmbeddedNode, key: PrivateKey) -> None:
        self.city, self.node, self.key = city, node, key
        self.nonce = node.chain.last_nonce(key.public.did)
        self.lock = threading.Lock()

    def submit(self, method: str, args: dict[str, Any]) -> tuple[int, Future[Receipt]]:
        """Sign with the next nonce and hand the transaction to the node (no waiting)."""
        with self.lock:
            self.nonce += 1
            tx = self.city.tx(self.key, "currency", method, args, nonce=self.nonce)
            return self.nonce, self.node.submit_nowait(tx)

    def send(self, contract: str, method: str, args: dict[str, Any]) -> Receipt:
        with self.lock:
            self.nonce += 1
            tx = self.city.tx(self.key, contract, method, args, nonce=self.nonce)
        receipt = self.node.submit(tx, timeout=10)
        assert receipt.ok, (receipt.reason, receipt.message)
        return receipt


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def running(city: City) -> Iterator[EmbeddedNode]:
    """A node whose currency has 1,000,000 of reserve and a food merchant, the bakery."""
    with city.open_node() as node:
        root = Wallet(city, node, city.root)
        for role, agency in ROLES.items():
            root.send("governance", "grant_role", {"agency": agency, "role": role})
        Wallet(city, node, city.clerk).send("currency", "define", definition(balance_cap=None))
        reserve = {"currency_id": CUR, "amount": 1_000_000, "reference": ref("reserve")}
        Wallet(city, node, city.archivist).send("currency", "attest_reserve", reserve)
        merchant_args = {
            "merchant_id": "bakery",
            "business_number_hash": ref("brn/bakery"),
            "category": "food",
            "region": "north",
            "account": BAKERY.public.did,
        }
        Wallet(city, node, city.district).send("currency", "register_merchant", merchant_args)
        yield node


def fund(city: City, node: EmbeddedNode, holders: list[PrivateKey], amount: int) -> None:
    district, clerk = Wallet(city, node, city.district), Wallet(city, node, city.clerk)
    for key in holders:
        district.send("currency", "enroll", {"currency_id": CUR, "account": key.public.did})
    items = [{"to": key.public.did, "amount": amount} for key in holders]
    clerk.send("currency", "mint_batch", {"currency_id": CUR, "items": items, "batch_id": "fund"})


def pay_args(amount: int) -> dict[str, Any]:
    return {"currency_id": CUR, "to": BAKERY.public.did, "amount": amount}


def balance(node: EmbeddedNode, key: PrivateKey) -> int:
    info = node.chain.query("currency", "balance", {"currency_id": CUR, "account": key.public.did})
    return int(info["balance"])


def test_devices_sharing_one_wallet_spend_exactly_the_balance(
    city: City, running: EmbeddedNode
) -> None:
    """50 payments of 300 from 8 threads against 10,000: 33 commit, 17 are refused."""
    shared = holder("concurrent/shared")
    fund(city, running, [shared], 10_000)
    wallet = Wallet(city, running, shared)
    start = threading.Barrier(8)
    todo = iter(range(50))
    todo_lock = threading.Lock()

    def device() -> list[tuple[int, Receipt]]:
        start.wait()
        sent: list[tuple[int, Future[Receipt]]] = []
        while True:
            with todo_lock:
                if next(todo, None) is None:
                    break
            sent.append(wallet.submit("pay", pay_args(300)))
        return [(nonce, future.result(timeout=30)) for nonce, future in sent]

    with ThreadPoolExecutor(8) as pool:
        results = sorted(r for job in [pool.submit(device) for _ in range(8)] for r in job.result())
    assert len(results) == 50
    committed = [nonce for nonce, receipt in results if receipt.ok]
    refused = [receipt for _, receipt in results if not receipt.ok]
    assert len(committed) == 10_000 // 300 == 33
    assert committed == [nonce for nonce, _ in results[:33]]  # Nonce order is spend order.
    assert {(r.status, r.reason) for r in refused} == {("failed", "insufficient_funds")}
    assert balance(running, shared) == 10_000 - 33 * 300 == 100
    assert balance(running, BAKERY) == 9_900
    assert check_invariants(running.chain)["supply"] == 10_000


def test_many_holders_pay_one_merchant_at_once(city: City, running: EmbeddedNode) -> None:
    """12 holders with 1,000 each send 5 payments of 300 at once: 3 each commit."""
    holders = [holder(f"concurrent/{n}") for n in range(12)]
    fund(city, running, holders, 1_000)
    start = threading.Barrier(len(holders))

    def spend(key: PrivateKey) -> list[Receipt]:
        wallet = Wallet(city, running, key)
        start.wait()
        sent = [wallet.submit("pay", pay_args(300)) for _ in range(5)]
        return [future.result(timeout=30) for _, future in sent]

    with ThreadPoolExecutor(len(holders)) as pool:
        outcomes = list(pool.map(spend, holders))
    for receipts in outcomes:
        assert [(r.status, r.reason) for r in receipts] == [("ok", None)] * 3 + [
            ("failed", "insufficient_funds")
        ] * 2
    assert all(balance(running, key) == 100 for key in holders)
    assert balance(running, BAKERY) == 12 * 900
    history = running.chain.query(
        "currency", "history", {"currency_id": CUR, "account": BAKERY.public.did, "limit": 1000}
    )
    assert len(history["entries"]) == 36
    check_invariants(running.chain)
