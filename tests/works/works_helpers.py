"""Shared by the works tests: roles, keys, a contract, a stage's split, sending.

Roles in ``testville`` for these tests: city-hall (clerk, clerk2) is the ordering department
(``works_orderer``), archive (archivist) the ``custodian_bank``; the district office's key is the
site supervisor. The prime and the subcontractors are keys of no agency.
"""

from __future__ import annotations

from typing import Any

from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import Chain
from civicledger.services.works.pseudonyms import account_reference, worker_pseudonym
from conftest import City, Ledger, city_key

CID = "mapo-road-7"
SECRET = b"works-tests-payroll-secret-32byte"
PRIME_KEY = city_key("works/prime")
SUB_KEY = city_key("works/sub-steel")
SUB2_KEY = city_key("works/sub-paint")
TOTAL = 100_000_000
STAGES = [40_000_000, 60_000_000]


def grant_roles(city: City, ledger: Ledger) -> None:
    for role, agency in (("works_orderer", "city-hall"), ("custodian_bank", "archive")):
        assert ledger.send(
            city.root, "governance", "grant_role", {"agency": agency, "role": role}
        ).ok


def ref(label: str) -> str:
    """A bank reference or account reference for ``label`` (a keyed hash, as in production)."""
    return account_reference(SECRET, "088", sha256(label.encode()).hex()[:12])


def worker(label: str) -> str:
    return worker_pseudonym(SECRET, CID, label)


def create_args(city: City, **change: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "contract_id": CID,
        "title": {"ko": "마포로 7 포장", "en": "Mapo-ro 7 paving"},
        "prime": PRIME_KEY.public.did,
        "prime_account_ref": ref("prime-account"),
        "supervisor": city.district.public.did,
        "total": TOTAL,
        "stages": STAGES,
        "deadline_days": 5,
    }
    return {**args, **change}


def labour(line_id: str, who: str, wage: int, days: int) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "kind": "labour",
        "payee_ref": ref(f"account/{who}"),
        "worker": worker(who),
        "daily_wage": wage,
        "days": days,
    }


def goods(line_id: str, kind: str, payee: str, amount: int) -> dict[str, Any]:
    return {"line_id": line_id, "kind": kind, "payee_ref": ref(payee), "amount": amount}


def send(
    ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any], at: int | None = None
) -> Receipt:
    return ledger.send(key, "works", method, args, time_ms=at)


def q(chain: Chain, method: str, **args: Any) -> Any:
    return chain.query("works", method, args)


def stage_args(stage: int = 1, **more: Any) -> dict[str, Any]:
    return {"contract_id": CID, "stage": stage, **more}


def check_conservation(chain: Chain) -> dict[str, Any]:
    """The escrow identities, from the contract record and from the payout orders themselves."""
    record = q(chain, "contract", contract_id=CID)
    assert record["deposited"] == record["released"] + record["held"]
    assert record["held"] >= 0
    assert record["deposited"] <= record["total"]
    assert record["paid"] <= record["released"] <= record["total"]
    released = paid = 0
    for stage in q(chain, "stages", contract_id=CID):
        detail = q(chain, "stage", contract_id=CID, stage=stage["stage"])
        orders = detail["payout_orders"]
        if stage["status"] in ("released", "paid"):
            assert sum(o["amount"] for o in orders) == stage["claim"] <= stage["amount"]
            lines = {o["line_id"] for o in orders if o["line_id"] is not None}
            assert len(lines) == len([o for o in orders if o["line_id"] is not None])
        else:
            assert orders == []
        released += sum(o["amount"] for o in orders)
        paid += sum(o["amount"] for o in orders if o["status"] == "paid")
    assert (released, paid) == (record["released"], record["paid"])
    return dict(record)
