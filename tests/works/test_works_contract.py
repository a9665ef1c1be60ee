"""The works contract through a real Chain: the whole flow and every refusal reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from works_helpers import (
    CID,
    PRIME_KEY,
    SUB2_KEY,
    SUB_KEY,
    TOTAL,
    check_conservation,
    create_args,
    goods,
    grant_roles,
    labour,
    q,
    ref,
    send,
    stage_args,
    worker,
)

from civicledger.errors import TxRejected
from civicledger.node.chain import Chain
from civicledger.services.registry import city_registry
from civicledger.services.works.contract import DAY_MS, MAX_LINES_PER_STAGE, MAX_SUBCONTRACTORS
from conftest import GENESIS_TIME_MS, City, Ledger, city_key, make_city, ok, refused

T0 = GENESIS_TIME_MS + 10 * DAY_MS


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city", city_registry())


@pytest.fixture
def world(city: City, ledger: Ledger) -> Ledger:
    """A contract of 100M in two stages, 40M deposited, the steel subcontractor registered."""
    grant_roles(city, ledger)
    ok(send(ledger, city.clerk, "create_contract", create_args(city), at=T0))
    ok(send(ledger, city.archivist, "deposit", deposit(40_000_000, "dep-1")))
    ok(send(ledger, PRIME_KEY, "register_subcontractor", sub("steel", SUB_KEY, 30_000_000)))
    return ledger


def deposit(amount: int, label: str) -> dict[str, Any]:
    return {"contract_id": CID, "amount": amount, "bank_reference": ref(label)}


def sub(party_id: str, key: Any, amount: int) -> dict[str, Any]:
    return {
        "contract_id": CID,
        "party_id": party_id,
        "key": key.public.did,
        "account_ref": ref(f"sub/{party_id}"),
        "amount": amount,
    }


STEEL_LINES = [
    {
        "line_id": "steel-margin",
        "kind": "subcontract",
        "payee_ref": ref("sub/steel"),
        "amount": 5_000_000,
    },
    goods("rebar", "materials", "supplier/rebar", 8_000_000),
    labour("w-kim", "worker-1", 200_000, 10),
    labour("w-lee", "worker-2", 180_000, 12),
]
PRIME_LINES = [goods("crane", "equipment", "supplier/crane", 3_000_000)]


def split(world: Ledger, city: City) -> None:
    ok(send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=STEEL_LINES)))
    ok(send(world, PRIME_KEY, "register_split", stage_args(party_id="prime", lines=PRIME_LINES)))


def verify(world: Ledger, city: City, **change: int) -> None:
    quantities = {
        "steel-margin": 5_000_000,
        "rebar": 8_000_000,
        "w-kim": 10,
        "w-lee": 12,
        "crane": 3_000_000,
        **change,
    }
    lines = [{"line_id": k, "quantity": v} for k, v in quantities.items()]
    ok(send(world, city.district, "verify_work", stage_args(work_amount=40_000_000, lines=lines)))


def claimed(world: Ledger, city: City, amount: int = 40_000_000) -> dict[str, Any]:
    split(world, city)
    verify(world, city)
    return dict(ok(send(world, PRIME_KEY, "claim", stage_args(amount=amount))))


def test_end_to_end_pays_every_party_directly(city: City, world: Ledger, chain: Chain) -> None:
    stage = claimed(world, city)
    assert stage["status"] == "claimed"
    assert stage["due_ms"] == stage["claimed_ms"] + 5 * DAY_MS
    ok(send(world, city.clerk, "approve", stage_args()))
    ok(send(world, city.district, "approve", stage_args()))
    result = ok(send(world, city.clerk2, "release", stage_args()))
    orders = result["payouts"]
    by_line = {o["line_id"]: o for o in orders}
    assert by_line["w-kim"]["amount"] == 2_000_000
    assert by_line["w-kim"]["payee_ref"] == ref("account/worker-1")
    assert by_line["w-lee"]["amount"] == 2_160_000
    assert by_line["steel-margin"]["payee_ref"] == ref("sub/steel")
    assert by_line["crane"]["amount"] == 3_000_000
    lines_total = 5_000_000 + 8_000_000 + 2_000_000 + 2_160_000 + 3_000_000
    assert by_line[None]["kind"] == "prime"
    assert by_line[None]["amount"] == 40_000_000 - lines_total
    assert by_line[None]["payee_ref"] == ref("prime-account")
    record = check_conservation(chain)
    assert (record["released"], record["held"]) == (40_000_000, 0)
    # A worker checks their wage by pseudonym or by their account reference.
    for key in (worker("worker-1"), ref("account/worker-1")):
        (mine,) = q(chain, "payments", ref=key)
        assert (mine["amount"], mine["status"]) == (2_000_000, "pending")
    items = [{"seq": o["seq"], "bank_reference": ref(f"tr/{o['seq']}")} for o in orders]
    done = ok(send(world, city.archivist, "confirm_payouts", stage_args(items=items)))
    assert done["status"] == "paid"
    assert q(chain, "payments", ref=worker("worker-1"))[0]["status"] == "paid"
    assert check_conservation(chain)["paid"] == 40_000_000
    assert q(chain, "alerts")["alerts"] == []
    assert q(chain, "overdue") == []


def test_second_stage_needs_more_escrow(city: City, world: Ledger, chain: Chain) -> None:
    lines = [labour("w-park", "worker-3", 150_000, 20)]
    ok(send(world, PRIME_KEY, "register_split", stage_args(2, party_id="prime", lines=lines)))
    ok(
        send(
            world,
            city.district,
            "verify_work",
            stage_args(2, work_amount=60_000_000, lines=[{"line_id": "w-park", "quantity": 20}]),
        )
    )
    ok(send(world, PRIME_KEY, "claim", stage_args(2, amount=60_000_000)))
    ok(send(world, city.clerk, "approve", stage_args(2)))
    ok(send(world, city.district, "approve", stage_args(2)))
    refused(send(world, city.clerk, "release", stage_args(2)), "escrow_insufficient")
    ok(send(world, city.archivist, "deposit", deposit(60_000_000, "dep-2")))
    ok(send(world, city.clerk, "release", stage_args(2)))
    assert check_conservation(chain)["held"] == 40_000_000


def test_release_missing_a_signature_is_refused(city: City, world: Ledger) -> None:
    claimed(world, city)
    refused(send(world, city.clerk, "release", stage_args()), "missing_approval")
    ok(send(world, city.clerk, "approve", stage_args()))
    refused(send(world, city.clerk, "release", stage_args()), "missing_approval")
    refused(send(world, city.clerk2, "approve", stage_args()), "already_approved")
    ok(send(world, city.district, "approve", stage_args()))
    refused(send(world, city.district, "approve", stage_args()), "already_approved")
    ok(send(world, city.clerk, "release", stage_args()))
    refused(send(world, city.clerk, "release", stage_args()), "already_released")


def test_supervisor_alone_cannot_release(city: City, world: Ledger) -> None:
    claimed(world, city)
    ok(send(world, city.district, "approve", stage_args()))
    refused(send(world, city.district, "release", stage_args()), "missing_approval")


def test_labour_claim_above_verified_days_is_refused(city: City, world: Ledger) -> None:
    split(world, city)
    verify(world, city, **{"w-lee": 11})
    refused(
        send(world, PRIME_KEY, "claim", stage_args(amount=40_000_000)),
        "labour_days_exceed_verified",
    )


def test_line_claim_above_verified_amount_is_refused(city: City, world: Ledger) -> None:
    split(world, city)
    verify(world, city, rebar=7_999_999)
    refused(
        send(world, PRIME_KEY, "claim", stage_args(amount=40_000_000)),
        "claim_exceeds_verified_work",
    )


def test_stage_claim_above_verified_work_is_refused(city: City, world: Ledger) -> None:
    split(world, city)
    lines = [{"line_id": "w-kim", "quantity": 10}]
    ok(send(world, city.district, "verify_work", stage_args(work_amount=30_000_000, lines=lines)))
    refused(
        send(world, PRIME_KEY, "claim", stage_args(amount=30_000_001)),
        "claim_exceeds_verified_work",
    )


def test_unverified_line_counts_as_zero(city: City, world: Ledger) -> None:
    split(world, city)
    ok(send(world, city.district, "verify_work", stage_args(work_amount=40_000_000, lines=[])))
    refused(
        send(world, PRIME_KEY, "claim", stage_args(amount=40_000_000)),
        "claim_exceeds_verified_work",
    )


def test_late_payment_raises_an_alert_that_stays(city: City, world: Ledger, chain: Chain) -> None:
    stage = claimed(world, city)
    due = stage["due_ms"]
    refused(send(world, city.outsider, "flag_late", stage_args(), at=due), "not_late")
    assert q(chain, "overdue") == []
    ok(send(world, city.clerk, "approve", stage_args(), at=due + 1))
    assert q(chain, "overdue") == [{"contract_id": CID, "stage": 1, "due_ms": due}]
    alert = ok(send(world, city.outsider, "flag_late", stage_args()))
    assert alert["flagged_by"] == city.outsider.public.did
    assert alert["late_ms"] > 0
    refused(send(world, city.outsider, "flag_late", stage_args()), "already_flagged")
    ok(send(world, city.district, "approve", stage_args()))
    orders = ok(send(world, city.clerk, "release", stage_args()))["payouts"]
    items = [{"seq": o["seq"], "bank_reference": ref(f"late/{o['seq']}")} for o in orders]
    ok(send(world, city.archivist, "confirm_payouts", stage_args(items=items)))
    assert q(chain, "overdue") == []
    (kept,) = q(chain, "alerts")["alerts"]
    assert kept["stage"] == 1
    assert q(chain, "stage", contract_id=CID, stage=1)["alert"] == kept


def test_paid_late_without_flag_records_the_alert(city: City, world: Ledger, chain: Chain) -> None:
    stage = claimed(world, city)
    ok(send(world, city.clerk, "approve", stage_args()))
    ok(send(world, city.district, "approve", stage_args()))
    orders = ok(send(world, city.clerk, "release", stage_args()))["payouts"]
    items = [{"seq": o["seq"], "bank_reference": ref(f"x/{o['seq']}")} for o in orders]
    ok(send(world, city.archivist, "confirm_payouts", stage_args(items=items[:1])))
    refused(
        send(world, city.archivist, "confirm_payouts", stage_args(items=items[:1])), "already_paid"
    )
    ok(
        send(
            world,
            city.archivist,
            "confirm_payouts",
            stage_args(items=items[1:]),
            at=stage["due_ms"] + 1,
        )
    )
    (alert,) = q(chain, "alerts")["alerts"]
    assert alert["flagged_by"] == city.archivist.public.did
    refused(send(world, city.outsider, "flag_late", stage_args()), "already_flagged")


def test_setup_refusals(city: City, world: Ledger) -> None:
    refused(send(world, city.clerk, "create_contract", create_args(city)), "contract_exists")
    refused(
        send(
            world,
            city.clerk,
            "create_contract",
            create_args(city, contract_id="other", stages=[1, 2]),
        ),
        "stages_mismatch",
    )
    refused(
        send(
            world,
            city.clerk,
            "create_contract",
            create_args(city, contract_id="other", supervisor=PRIME_KEY.public.did),
        ),
        "supervisor_is_prime",
    )
    clerk2 = create_args(city, contract_id="other", supervisor=city.clerk2.public.did)
    refused(send(world, city.clerk, "create_contract", clerk2), "supervisor_is_orderer")
    refused(
        send(world, city.archivist, "deposit", deposit(TOTAL, "dep-big")), "deposit_exceeds_total"
    )
    refused(send(world, city.archivist, "deposit", deposit(1, "dep-1")), "duplicate_reference")
    refused(
        send(world, city.archivist, "deposit", {**deposit(1, "d"), "contract_id": "nope"}),
        "unknown_works_contract",
    )
    refused(send(world, SUB_KEY, "register_subcontractor", sub("x", SUB2_KEY, 1)), "not_prime")
    refused(
        send(world, PRIME_KEY, "register_subcontractor", sub("steel", SUB2_KEY, 1)), "party_exists"
    )
    refused(
        send(world, PRIME_KEY, "register_subcontractor", sub("again", SUB_KEY, 1)), "key_in_use"
    )
    refused(
        send(world, PRIME_KEY, "register_subcontractor", sub("paint", SUB2_KEY, TOTAL)),
        "subcontracts_exceed_total",
    )


def test_split_refusals(city: City, world: Ledger) -> None:
    lines = [goods("paint", "materials", "supplier/paint", 1_000)]
    refused(
        send(world, PRIME_KEY, "register_split", stage_args(party_id="steel", lines=lines)),
        "not_party",
    )
    refused(
        send(world, SUB_KEY, "register_split", stage_args(party_id="ghost", lines=lines)),
        "unknown_party",
    )
    refused(
        send(world, SUB_KEY, "register_split", stage_args(3, party_id="steel", lines=lines)),
        "unknown_stage",
    )
    margin = [{"line_id": "m", "kind": "subcontract", "payee_ref": ref("sub/steel"), "amount": 1}]
    refused(
        send(world, PRIME_KEY, "register_split", stage_args(party_id="prime", lines=margin)),
        "bad_line",
    )
    elsewhere = [{**margin[0], "payee_ref": ref("someone-else")}]
    refused(
        send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=elsewhere)),
        "bad_line",
    )
    big = [goods("beam", "materials", "s", 30_000_001)]
    refused(
        send(world, SUB_KEY, "register_split", stage_args(2, party_id="steel", lines=big)),
        "split_exceeds_subcontract",
    )
    huge = [goods("asphalt", "materials", "s", 40_000_001)]
    refused(
        send(world, PRIME_KEY, "register_split", stage_args(party_id="prime", lines=huge)),
        "split_exceeds_stage",
    )
    ok(send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=lines)))
    refused(
        send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=lines)),
        "line_exists",
    )


def test_bad_lines_are_dropped_at_admission(city: City, world: Ledger) -> None:
    bad = [
        {**labour("w", "x", 1, 1), "amount": 5},
        {"line_id": "m", "kind": "materials", "payee_ref": ref("s"), "days": 2, "amount": 1},
        {"line_id": "m", "kind": "materials", "payee_ref": "not-a-hash", "amount": 1},
        {**labour("w", "x", 1, 1), "worker": "Kim Cheolsu"},
    ]
    for line in bad:
        with pytest.raises(TxRejected):
            send(world, PRIME_KEY, "register_split", stage_args(party_id="prime", lines=[line]))


def test_verification_and_claim_refusals(city: City, world: Ledger) -> None:
    split(world, city)
    refused(send(world, PRIME_KEY, "claim", stage_args(amount=1)), "work_not_verified")
    refused(send(world, PRIME_KEY, "verify_work", stage_args(work_amount=1)), "not_supervisor")
    refused(
        send(world, city.district, "verify_work", stage_args(work_amount=40_000_001)),
        "verified_above_stage",
    )
    refused(
        send(
            world,
            city.district,
            "verify_work",
            stage_args(work_amount=1, lines=[{"line_id": "ghost", "quantity": 1}]),
        ),
        "unknown_line",
    )
    verify(world, city)
    refused(send(world, SUB_KEY, "claim", stage_args(amount=40_000_000)), "not_prime")
    refused(send(world, PRIME_KEY, "claim", stage_args(amount=40_000_001)), "claim_exceeds_stage")
    refused(send(world, PRIME_KEY, "claim", stage_args(amount=1_000)), "split_exceeds_claim")
    ok(send(world, PRIME_KEY, "claim", stage_args(amount=40_000_000)))
    refused(send(world, PRIME_KEY, "claim", stage_args(amount=40_000_000)), "stage_claimed")
    refused(send(world, city.district, "verify_work", stage_args(work_amount=1)), "stage_claimed")
    extra = [goods("late", "materials", "s", 1)]
    refused(
        send(world, PRIME_KEY, "register_split", stage_args(party_id="prime", lines=extra)),
        "stage_claimed",
    )


def test_approval_and_payout_refusals(city: City, world: Ledger) -> None:
    refused(send(world, city.clerk, "approve", stage_args()), "not_claimed")
    refused(send(world, city.clerk, "release", stage_args()), "not_claimed")
    refused(send(world, city.outsider, "flag_late", stage_args()), "not_claimed")
    refused(
        send(
            world,
            city.archivist,
            "confirm_payouts",
            stage_args(items=[{"seq": 1, "bank_reference": ref("p")}]),
        ),
        "not_released",
    )
    claimed(world, city)
    refused(send(world, PRIME_KEY, "approve", stage_args()), "not_approver")
    refused(send(world, city.archivist, "approve", stage_args()), "not_approver")
    ok(send(world, city.clerk, "approve", stage_args()))
    ok(send(world, city.district, "approve", stage_args()))
    ok(send(world, city.outsider, "release", stage_args()))
    refused(
        send(
            world,
            city.archivist,
            "confirm_payouts",
            stage_args(items=[{"seq": 99, "bank_reference": ref("p")}]),
        ),
        "unknown_payout",
    )
    refused(
        send(
            world,
            city.archivist,
            "confirm_payouts",
            stage_args(
                items=[
                    {"seq": 1, "bank_reference": ref("p")},
                    {"seq": 1, "bank_reference": ref("q")},
                ]
            ),
        ),
        "duplicate_payout",
    )
    refused(
        send(
            world,
            city.archivist,
            "confirm_payouts",
            stage_args(items=[{"seq": 1, "bank_reference": ref("dep-1")}]),
        ),
        "duplicate_reference",
    )


def test_roles_are_enforced_at_admission(city: City, world: Ledger) -> None:
    with pytest.raises(TxRejected):
        send(world, city.outsider, "create_contract", create_args(city, contract_id="x"))
    with pytest.raises(TxRejected):
        send(world, PRIME_KEY, "deposit", deposit(1, "self-deposit"))
    with pytest.raises(TxRejected):
        send(
            world,
            PRIME_KEY,
            "confirm_payouts",
            stage_args(items=[{"seq": 1, "bank_reference": ref("p")}]),
        )


def test_another_orderer_cannot_approve(city: City, world: Ledger) -> None:
    ok(
        world.send(
            city.root,
            "governance",
            "grant_role",
            {"agency": "district-office", "role": "works_orderer"},
        )
    )
    # The supervisor's agency now orders works too, but approves this stage as supervisor only;
    # the archive (not an orderer) and an orderer of another agency cannot approve for city-hall.
    claimed(world, city)
    ok(
        world.send(
            city.root, "governance", "grant_role", {"agency": "archive", "role": "works_orderer"}
        )
    )
    refused(send(world, city.archivist, "approve", stage_args()), "not_approver")


def test_queries(city: City, world: Ledger, chain: Chain) -> None:
    assert q(chain, "contract", contract_id="nope") is None
    assert q(chain, "stage", contract_id=CID, stage=9) is None
    page = q(chain, "contracts", limit=1)
    assert [c["contract_id"] for c in page["contracts"]] == [CID]
    assert page["next"] == CID
    assert q(chain, "contracts", after=CID)["contracts"] == []
    assert [p["party_id"] for p in q(chain, "parties", contract_id=CID)] == ["prime", "steel"]
    assert [s["amount"] for s in q(chain, "stages", contract_id=CID)] == [40_000_000, 60_000_000]
    assert q(chain, "contract", contract_id=CID)["orderer"] == "city-hall"


def test_wages_go_only_to_workers_once_per_stage(city: City, world: Ledger) -> None:
    to_sub = [{**labour("w-x", "worker-x", 100_000, 1), "payee_ref": ref("sub/steel")}]
    refused(
        send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=to_sub)),
        "wage_to_party_account",
    )
    to_prime = [{**labour("w-x", "worker-x", 100_000, 1), "payee_ref": ref("prime-account")}]
    refused(
        send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=to_prime)),
        "wage_to_party_account",
    )
    twice = [labour("w-a", "worker-x", 100_000, 1), labour("w-b", "worker-x", 100_000, 2)]
    refused(
        send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=twice)),
        "duplicate_worker",
    )
    ok(send(world, SUB_KEY, "register_split", stage_args(party_id="steel", lines=twice[:1])))
    # The prime cannot list the subcontractor's worker again in the same stage...
    refused(
        send(world, PRIME_KEY, "register_split", stage_args(party_id="prime", lines=twice[1:])),
        "duplicate_worker",
    )
    # ...but the worker may work in the next stage.
    ok(send(world, PRIME_KEY, "register_split", stage_args(2, party_id="prime", lines=twice[1:])))


def test_a_full_stage_is_released_in_one_transaction(
    city: City, world: Ledger, chain: Chain
) -> None:
    full = MAX_LINES_PER_STAGE
    lines = [labour(f"w{i:03d}", f"crew-{i}", 100_000, 1) for i in range(full)]
    for start in range(0, full, 50):
        args = stage_args(party_id="prime", lines=lines[start : start + 50])
        ok(send(world, PRIME_KEY, "register_split", args))
    one_more = [goods("extra", "materials", "s", 1)]
    refused(
        send(world, PRIME_KEY, "register_split", stage_args(party_id="prime", lines=one_more)),
        "too_many_lines",
    )
    verified = [{"line_id": line["line_id"], "quantity": 1} for line in lines]
    ok(
        send(
            world, city.district, "verify_work", stage_args(work_amount=40_000_000, lines=verified)
        )
    )
    ok(send(world, PRIME_KEY, "claim", stage_args(amount=40_000_000)))
    ok(send(world, city.clerk, "approve", stage_args()))
    ok(send(world, city.district, "approve", stage_args()))
    orders = ok(send(world, city.clerk, "release", stage_args()))["payouts"]
    assert len(orders) == full + 1
    assert orders[-1]["amount"] == 40_000_000 - full * 100_000
    check_conservation(chain)


def test_subcontractors_are_bounded(city: City, world: Ledger) -> None:
    for i in range(MAX_SUBCONTRACTORS - 1):
        key = city_key(f"works/many/{i}")
        ok(send(world, PRIME_KEY, "register_subcontractor", sub(f"s{i}", key, 1)))
    last = city_key("works/many/last")
    refused(
        send(world, PRIME_KEY, "register_subcontractor", sub("last", last, 1)),
        "too_many_parties",
    )
