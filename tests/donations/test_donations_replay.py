"""The trace's lot replay against the real currency contract.

Hypothesis drives one holder of a help coin with one-day lots on a real chain: mints at
drawn times, payments of a share of the balance to two merchants (some refused for want of
funds, some sweeping expired lots), ``expire`` calls. Then, for every minted lot,
``trace.follow_lot`` must agree with the ledger: a lot still alive has exactly the replay's
unspent amount as its remainder, a lot the ledger no longer holds (or that is past expiry) has
nothing unspent, and over all lots the replay attributes to each merchant category exactly
what the holder paid there.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from donation_helpers import COIN, DAY, coin_definition, grant_roles, ref
from hypothesis import event, given, settings
from hypothesis import strategies as st

from civicledger.services.donations.trace import follow_lot
from civicledger.services.registry import city_registry
from conftest import GENESIS_TIME_MS, Ledger, city_key, make_city

HOLDER = city_key("replay/holder")
SHOPS = {"food": city_key("replay/bakery"), "market": city_key("replay/stall")}

steps = st.lists(
    st.one_of(
        st.tuples(st.just("mint"), st.integers(1_000, 50_000)),
        st.tuples(st.just("pay"), st.sampled_from(sorted(SHOPS)), st.integers(1, 110)),
        st.tuples(st.just("expire")),
    ).flatmap(lambda op: st.tuples(st.just(op), st.integers(1_000, DAY // 2))),
    min_size=3,
    max_size=14,
)


def _world(ledger: Ledger, city: Any, now: int) -> None:
    grant_roles(city, ledger)
    definition = {**coin_definition(), "lot_ttl_days": 1}
    ledger.send(city.clerk, "currency", "define", definition, time_ms=now)
    deposit = {"currency_id": COIN, "amount": 10**9, "reference": ref("replay/reserve")}
    ledger.send(city.archivist, "currency", "attest_reserve", deposit, time_ms=now + 1)
    enroll = {"currency_id": COIN, "account": HOLDER.public.did}
    ledger.send(city.clerk, "currency", "enroll", enroll, time_ms=now + 2)
    for category, key in SHOPS.items():
        args = {
            "merchant_id": f"shop-{category}",
            "business_number_hash": ref(category),
            "category": category,
            "region": "mapo",
            "account": key.public.did,
        }
        ledger.send(city.clerk, "currency", "register_merchant", args, time_ms=now + 3)


@settings(max_examples=40, deadline=None)
@given(script=steps)
def test_replay_matches_the_ledger(script: list[tuple[tuple[Any, ...], int]]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="donations-replay-"))
    try:
        city = make_city(tmp / "city", city_registry())
        chain = city.open_chain()
        try:
            _check(city, chain, script)
        finally:
            chain.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check(city: Any, chain: Any, script: list[tuple[tuple[Any, ...], int]]) -> None:
    ledger = Ledger(city, chain)
    now = GENESIS_TIME_MS + 10 * DAY
    _world(ledger, city, now)
    now += 10
    paid: dict[str, int] = {}
    for op, delay in script:
        now += delay
        if op[0] == "mint":
            args = {"currency_id": COIN, "to": HOLDER.public.did, "amount": op[1], "reason": "aid"}
            assert ledger.send(city.clerk, "currency", "mint", args, time_ms=now).ok
        elif op[0] == "pay":
            found = chain.query(
                "currency", "balance", {"currency_id": COIN, "account": HOLDER.public.did}
            )
            amount = max(1, found["balance"] * op[2] // 100)
            args = {"currency_id": COIN, "to": SHOPS[op[1]].public.did, "amount": amount}
            if ledger.send(HOLDER, "currency", "pay", args, time_ms=now).ok:
                paid[op[1]] = paid.get(op[1], 0) + amount
        else:
            args = {"currency_id": COIN, "account": HOLDER.public.did}
            assert ledger.send(city.outsider, "currency", "expire", args, time_ms=now).ok
    account = {"currency_id": COIN, "account": HOLDER.public.did, "limit": 1000}
    history = chain.query("currency", "history", account)["entries"]
    lots = {lot["created_ms"]: lot for lot in chain.query("currency", "balance", account)["lots"]}
    categories = {key.public.did: category for category, key in SHOPS.items()}
    head = chain.head.header.time_ms
    attributed: dict[str, int] = {}
    for entry in history:
        if entry["kind"] != "minted":
            continue
        flow = follow_lot(history, entry["seq"], 1, categories, head)
        assert flow.exact
        assert flow.accounted == flow.minted == entry["change"]
        lot = lots.get(entry["time_ms"])
        alive = lot is not None and lot["expires_ms"] > head
        assert flow.unspent == (lot["remaining"] if alive else 0)
        for category, amount in flow.spent.items():
            attributed[category] = attributed.get(category, 0) + amount
    assert attributed == paid
    event(f"categories paid: {len(paid)}; lots alive: {len(lots)}")
