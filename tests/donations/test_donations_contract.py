"""The donations contract through a real Chain: every transaction, query and refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from donation_helpers import (
    CAMPAIGN,
    CHARITY,
    CHARITY_KEY,
    COIN,
    DAY,
    OTHER_CHARITY_KEY,
    T0,
    campaign_args,
    charity_args,
    disbursement,
    donation,
    ref,
    send,
    setup_world,
)

from civicledger.errors import TxRejected
from civicledger.node.chain import Chain
from civicledger.services.donations.contract import MAX_SHARES, reserve_reference
from civicledger.services.donations.trace import donor_commitment
from civicledger.services.registry import city_registry
from conftest import City, Ledger, city_key, make_city, ok, refused

HOLDERS = [city_key(f"holder/{n}") for n in range(3)]


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def world(city: City, ledger: Ledger) -> Ledger:
    setup_world(city, ledger)
    return ledger


def q(chain: Chain, method: str, **args: Any) -> Any:
    return chain.query("donations", method, args)


def campaign(chain: Chain) -> Any:
    return q(chain, "campaign", campaign_id=CAMPAIGN)


def test_register_and_read_charity(city: City, world: Ledger, chain: Chain) -> None:
    record = q(chain, "charity", charity_id=CHARITY)
    assert record["status"] == "active"
    assert record["keys"] == [CHARITY_KEY.public.did]
    assert record["campaigns"] == 1
    assert [c["charity_id"] for c in q(chain, "charities")["charities"]] == [CHARITY]
    assert q(chain, "charity", charity_id="nobody") is None


def test_charity_refusals(city: City, world: Ledger) -> None:
    refused(send(world, city.district, "register_charity", charity_args()), "charity_exists")
    refused(send(world, city.district, "register_charity", charity_args("copycat")), "key_in_use")
    with pytest.raises(TxRejected):
        send(world, city.clerk, "register_charity", charity_args("x", OTHER_CHARITY_KEY))
    refused(
        send(world, city.district, "reinstate_charity", {"charity_id": CHARITY}), "charity_active"
    )
    refused(
        send(world, city.district, "suspend_charity", {"charity_id": "nobody"}), "unknown_charity"
    )
    ok(send(world, city.district, "suspend_charity", {"charity_id": CHARITY}))
    refused(
        send(world, city.district, "suspend_charity", {"charity_id": CHARITY}), "charity_suspended"
    )
    refused(send(world, city.archivist, "donate", donation(100, "s")), "charity_suspended")
    args = campaign_args(campaign_id="spring")
    refused(send(world, CHARITY_KEY, "open_campaign", args), "charity_suspended")
    ok(send(world, city.district, "reinstate_charity", {"charity_id": CHARITY}))
    ok(send(world, city.archivist, "donate", donation(100, "s")))


def test_open_campaign_refusals(city: City, world: Ledger) -> None:
    cases = [
        (CHARITY_KEY, campaign_args(), "campaign_exists"),
        (OTHER_CHARITY_KEY, campaign_args(campaign_id="b"), "wrong_signer"),
        (CHARITY_KEY, campaign_args(campaign_id="b", charity_id="nobody"), "unknown_charity"),
        (CHARITY_KEY, campaign_args(campaign_id="b", bank="city-hall"), "bank_not_custodian"),
        (CHARITY_KEY, campaign_args(campaign_id="b", help_coin="no-coin"), "unknown_currency"),
        (
            CHARITY_KEY,
            campaign_args(campaign_id="b", starts_ms=T0 - 10 * DAY, ends_ms=T0 - DAY),
            "bad_period",
        ),
    ]
    for key, args, reason in cases:
        refused(send(world, key, "open_campaign", args), reason)
    assert q(world.chain, "campaigns")["campaigns"][0]["campaign_id"] == CAMPAIGN
    assert len(q(world.chain, "campaigns")["campaigns"]) == 1


def test_donations_are_recorded_in_order(city: City, world: Ledger, chain: Chain) -> None:
    first = ok(send(world, city.archivist, "donate", donation(30_000, "a", "secret-a")))
    second = ok(send(world, city.archivist, "donate", donation(20_000, "b")))
    assert (first["seq"], second["seq"]) == (1, 2)
    assert second["donor_commitment"] is None
    record = campaign(chain)
    assert (record["donated"], record["balance"], record["donations"]) == (50_000, 50_000, 2)
    found = q(chain, "donor", donor_commitment=donor_commitment("secret-a"))
    assert found == {"campaign_id": CAMPAIGN, "seq": 1}
    page = q(chain, "donations", campaign_id=CAMPAIGN, limit=1)
    assert [d["seq"] for d in page["donations"]] == [1]
    assert page["next"] == 1
    page = q(chain, "donations", campaign_id=CAMPAIGN, after=1)
    assert [d["seq"] for d in page["donations"]] == [2]
    assert page["next"] is None


def test_donation_refusals(city: City, world: Ledger) -> None:
    ok(send(world, city.archivist, "donate", donation(1000, "a", "secret-a")))
    cases = [
        (donation(1, "a"), "duplicate_bank"),
        (donation(1, "b", "secret-a"), "duplicate_donor_commitment"),
        (donation(1, "c", campaign_id="nowhere"), "unknown_campaign"),
    ]
    for args, reason in cases:
        refused(send(world, city.archivist, "donate", args), reason)
    ok(
        world.send(
            city.root,
            "governance",
            "grant_role",
            {"agency": "district-office", "role": "custodian_bank"},
        )
    )
    refused(send(world, city.district, "donate", donation(1, "d")), "wrong_bank")
    with pytest.raises(TxRejected):
        send(world, city.clerk, "donate", donation(1, "e"))
    refused(
        send(world, city.archivist, "donate", donation(1, "f"), at=T0 + 30 * DAY), "outside_period"
    )


def test_donation_before_start(city: City, ledger: Ledger) -> None:
    setup_world(city, ledger)
    args = campaign_args(campaign_id="later", starts_ms=T0 + DAY, ends_ms=T0 + 2 * DAY)
    ok(send(ledger, CHARITY_KEY, "open_campaign", args))
    refused(
        send(ledger, city.archivist, "donate", donation(1, "x", campaign_id="later")),
        "outside_period",
    )


def test_disbursement_fifo_allocation(city: City, world: Ledger, chain: Chain) -> None:
    for n, amount in enumerate((30_000, 20_000, 50_000)):
        ok(send(world, city.archivist, "donate", donation(amount, f"d{n}", f"s{n}")))
    first = ok(send(world, CHARITY_KEY, "disburse", disbursement(40_000, "one")))
    assert first["shares"] == [{"donation": 1, "amount": 30_000}, {"donation": 2, "amount": 10_000}]
    second = ok(send(world, CHARITY_KEY, "disburse", disbursement(35_000, "two", "goods")))
    assert second["shares"] == [
        {"donation": 2, "amount": 10_000},
        {"donation": 3, "amount": 25_000},
    ]
    record = campaign(chain)
    assert (record["donated"], record["disbursed"], record["balance"]) == (100_000, 75_000, 25_000)
    assert record["fifo_next"] == 3
    two = q(chain, "donation", campaign_id=CAMPAIGN, seq=2)
    assert two["allocated"] == 20_000
    assert two["shares"] == [
        {"disbursement": 1, "amount": 10_000},
        {"disbursement": 2, "amount": 10_000},
    ]
    assert q(chain, "donation", campaign_id=CAMPAIGN, seq=3)["allocated"] == 25_000
    assert [d["seq"] for d in q(chain, "disbursements", campaign_id=CAMPAIGN)["disbursements"]] == [
        1,
        2,
    ]
    assert q(chain, "disbursement", campaign_id=CAMPAIGN, seq=9) is None
    assert q(chain, "donation", campaign_id=CAMPAIGN, seq=9) is None


def test_disbursement_refusals(city: City, world: Ledger) -> None:
    ok(send(world, city.archivist, "donate", donation(10_000, "a")))
    ok(send(world, CHARITY_KEY, "disburse", disbursement(1_000, "used")))
    no_coin = campaign_args(campaign_id="plain", help_coin=None)
    ok(send(world, CHARITY_KEY, "open_campaign", no_coin))
    ok(send(world, city.archivist, "donate", donation(500, "p", campaign_id="plain")))
    cases = [
        (CHARITY_KEY, disbursement(9_001, "big"), "insufficient_campaign_balance"),
        (CHARITY_KEY, disbursement(1, "used"), "duplicate_receipt"),
        (CHARITY_KEY, disbursement(1, "x", campaign_id="nowhere"), "unknown_campaign"),
        (OTHER_CHARITY_KEY, disbursement(1, "y"), "wrong_signer"),
        (city.district, disbursement(1, "z"), "wrong_signer"),
        (
            CHARITY_KEY,
            disbursement(1, "c", "help_coin", campaign_id="plain"),
            "help_coin_not_allowed",
        ),
    ]
    for key, args, reason in cases:
        refused(send(world, key, "disburse", args), reason)
    late = T0 + 60 * DAY
    refused(
        send(world, CHARITY_KEY, "disburse", disbursement(1, "late"), at=late), "outside_period"
    )
    assert campaign(world.chain)["balance"] == 9_000


def test_disbursement_after_donations_end_within_grace(city: City, world: Ledger) -> None:
    ok(send(world, city.archivist, "donate", donation(10_000, "a")))
    ok(send(world, CHARITY_KEY, "disburse", disbursement(1_000, "r"), at=T0 + 45 * DAY))


def test_closed_and_suspended_campaigns(city: City, world: Ledger, chain: Chain) -> None:
    ok(send(world, city.archivist, "donate", donation(10_000, "a")))
    ok(send(world, city.district, "suspend_campaign", {"campaign_id": CAMPAIGN}))
    refused(send(world, city.archivist, "donate", donation(1, "b")), "campaign_suspended")
    refused(send(world, CHARITY_KEY, "disburse", disbursement(1, "c")), "campaign_suspended")
    refused(
        send(world, city.district, "suspend_campaign", {"campaign_id": CAMPAIGN}),
        "campaign_suspended",
    )
    ok(send(world, city.district, "resume_campaign", {"campaign_id": CAMPAIGN}))
    refused(
        send(world, city.district, "resume_campaign", {"campaign_id": CAMPAIGN}),
        "campaign_not_suspended",
    )
    refused(
        send(world, OTHER_CHARITY_KEY, "close_campaign", {"campaign_id": CAMPAIGN}), "wrong_signer"
    )
    closed = ok(send(world, CHARITY_KEY, "close_campaign", {"campaign_id": CAMPAIGN}))
    assert closed["status"] == "closed"
    assert closed["balance"] == 10_000
    refused(
        send(world, CHARITY_KEY, "close_campaign", {"campaign_id": CAMPAIGN}), "campaign_closed"
    )
    refused(send(world, city.archivist, "donate", donation(1, "d")), "campaign_closed")
    refused(send(world, CHARITY_KEY, "disburse", disbursement(1, "e")), "campaign_closed")
    refused(
        send(world, city.district, "suspend_campaign", {"campaign_id": CAMPAIGN}), "campaign_closed"
    )
    refused(
        send(world, city.district, "suspend_campaign", {"campaign_id": "nowhere"}),
        "unknown_campaign",
    )


def test_too_many_shares(city: City, world: Ledger) -> None:
    for n in range(MAX_SHARES + 1):
        world.block(world.tx(city.archivist, "donations", "donate", donation(1, f"tiny{n}")))
    refused(
        send(world, CHARITY_KEY, "disburse", disbursement(MAX_SHARES + 1, "all")),
        "too_many_shares",
    )
    ok(send(world, CHARITY_KEY, "disburse", disbursement(MAX_SHARES, "most")))


def test_argument_validation(city: City, world: Ledger) -> None:
    bad = [
        disbursement(1, "a", beneficiary=None),
        disbursement(0, "b"),
        disbursement(1, "c", kind="crypto"),
        disbursement(1, "d", beneficiary="Kim Minsu"),
    ]
    for args in bad:
        with pytest.raises(TxRejected):
            send(world, CHARITY_KEY, "disburse", args)
    with pytest.raises(TxRejected):
        send(world, city.archivist, "donate", donation(1, "f", donor_commitment="alice"))


# -- help-coin funding --


def _fund(city: City, world: Ledger, amount: int = 60_000) -> dict[str, Any]:
    """A donation, a help-coin disbursement, its reserve deposit and a mint batch for it."""
    ok(send(world, city.archivist, "donate", donation(100_000, "big", "secret-big")))
    record = ok(send(world, CHARITY_KEY, "disburse", disbursement(amount, "coin", "help_coin")))
    for key in HOLDERS:
        args = {"currency_id": COIN, "account": key.public.did}
        ok(world.send(city.clerk, "currency", "enroll", args))
    return record


def _attest_and_mint(city: City, world: Ledger, record: dict[str, Any], batch: str) -> None:
    deposit = {
        "currency_id": COIN,
        "amount": record["amount"],
        "reference": record["reserve_reference"],
    }
    ok(world.send(city.archivist, "currency", "attest_reserve", deposit))
    share = record["amount"] // len(HOLDERS)
    items = [{"to": k.public.did, "amount": share} for k in HOLDERS]
    ok(
        world.send(
            city.clerk,
            "currency",
            "mint_batch",
            {"currency_id": COIN, "items": items, "batch_id": batch},
        )
    )


def _mints(chain: Chain) -> list[dict[str, Any]]:
    found = []
    for key in HOLDERS:
        args = {"currency_id": COIN, "account": key.public.did}
        entries = chain.query("currency", "history", args)["entries"]
        found += [
            {"account": key.public.did, "seq": e["seq"]} for e in entries if e["kind"] == "minted"
        ]
    return found


def test_help_coin_disbursement_links_to_its_mint_batch(
    city: City, world: Ledger, chain: Chain
) -> None:
    record = _fund(city, world)
    assert record["reserve_reference"] == reserve_reference(record["tx_id"])
    assert record["currency_id"] == COIN
    assert record["beneficiary"] is None
    link = {
        "campaign_id": CAMPAIGN,
        "seq": 1,
        "batch_id": "don-1",
        "mints": [{"account": HOLDERS[0].public.did, "seq": 1}],
    }
    refused(send(world, CHARITY_KEY, "link_funding", link), "reserve_not_attested")
    assert q(chain, "reserve_deposit", campaign_id=CAMPAIGN, seq=1) is None
    _attest_and_mint(city, world, record, "don-1")
    assert q(chain, "reserve_deposit", campaign_id=CAMPAIGN, seq=1) is not None
    mints = _mints(chain)
    cases = [
        (OTHER_CHARITY_KEY, {**link, "mints": mints}, "wrong_signer"),
        (CHARITY_KEY, {**link, "seq": 7}, "unknown_disbursement"),
        (CHARITY_KEY, {**link, "batch_id": "nope"}, "unknown_batch"),
        (CHARITY_KEY, link, "funding_mismatch"),
        (CHARITY_KEY, {**link, "mints": [*mints[:2], {**mints[2], "seq": 9}]}, "funding_mismatch"),
    ]
    for key, args, reason in cases:
        refused(send(world, key, "link_funding", args), reason)
    linked = ok(send(world, CHARITY_KEY, "link_funding", {**link, "mints": mints}))
    assert linked["funding"]["batch_id"] == "don-1"
    assert linked["funding"]["recipients"] == 3
    full = q(chain, "disbursement", campaign_id=CAMPAIGN, seq=1)
    assert [m["amount"] for m in full["mints"]] == [20_000] * 3
    assert q(chain, "mint_batch", currency_id=COIN, batch_id="don-1")["linked"] == {
        "campaign_id": CAMPAIGN,
        "seq": 1,
    }
    refused(send(world, CHARITY_KEY, "link_funding", {**link, "mints": mints}), "already_linked")


def test_link_refusals_for_other_kinds_and_batches(city: City, world: Ledger, chain: Chain) -> None:
    record = _fund(city, world)
    _attest_and_mint(city, world, record, "don-1")
    mints = _mints(chain)
    ok(send(world, CHARITY_KEY, "disburse", disbursement(1_000, "cash")))
    link = {"campaign_id": CAMPAIGN, "seq": 2, "batch_id": "don-1", "mints": mints}
    refused(send(world, CHARITY_KEY, "link_funding", link), "not_help_coin")
    second = ok(send(world, CHARITY_KEY, "disburse", disbursement(30_000, "coin2", "help_coin")))
    deposit = {"currency_id": COIN, "amount": 30_000, "reference": second["reserve_reference"]}
    ok(world.send(city.archivist, "currency", "attest_reserve", deposit))
    ok(send(world, CHARITY_KEY, "link_funding", {**link, "seq": 1}))
    refused(send(world, CHARITY_KEY, "link_funding", {**link, "seq": 3}), "batch_already_linked")
    small = {
        "currency_id": COIN,
        "items": [{"to": HOLDERS[0].public.did, "amount": 5}],
        "batch_id": "tiny",
    }
    ok(world.send(city.clerk, "currency", "mint_batch", small))
    refused(
        send(world, CHARITY_KEY, "link_funding", {**link, "seq": 3, "batch_id": "tiny"}),
        "funding_mismatch",
    )


def test_reused_reserve_reference_is_refused_by_the_currency(city: City, world: Ledger) -> None:
    record = _fund(city, world)
    deposit = {"currency_id": COIN, "amount": 1, "reference": record["reserve_reference"]}
    ok(world.send(city.archivist, "currency", "attest_reserve", deposit))
    refused(
        world.send(city.archivist, "currency", "attest_reserve", deposit), "duplicate_reference"
    )
    assert ref("x") != record["reserve_reference"]


def test_campaign_total_stays_json_safe(city: City, world: Ledger) -> None:
    """9,007 donations of the largest amount fit under 2**53 - 1; the next one is refused."""
    biggest = 10**12
    for start in range(0, 9_007, 2_000):
        txs = [
            world.tx(city.archivist, "donations", "donate", donation(biggest, f"max{n}"))
            for n in range(start, min(start + 2_000, 9_007))
        ]
        assert all(r.receipt.ok for r in world.block(*txs).included)
    refused(send(world, city.archivist, "donate", donation(biggest, "over")), "total_overflow")
    assert campaign(world.chain)["donated"] == 9_007 * biggest
