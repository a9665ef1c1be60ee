"""The works desk: read the ``works`` contract for the API, the portal and the CLI.

Every works transaction (a deposit, a split, a verification, an approval, a release) is signed
by its signer (the department's, the supervisor's, the prime's, the bank's key) and sent to
``POST /api/v1/tx`` or by ``civic works``; the desk only reads and shapes what it read: a
contract with its stages, the split per kind, what each party was ordered and paid, and a
worker's payments by pseudonym or account reference. Unknown contracts and stages raise
``WorksDeskError`` (the API maps them to 404).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from civicledger.agency.ledger import LedgerAccess
from civicledger.contracts.base import HASH_PATTERN
from civicledger.errors import CivicError
from civicledger.services.works.contract import (
    CONTRACT_NAME,
    ID_PATTERN,
    LINE_KINDS,
    MAX_PAGE,
)

__all__ = ["WorksDesk", "WorksDeskError", "split_by_kind"]

_ID = re.compile(ID_PATTERN)
_HASH = re.compile(HASH_PATTERN)


class WorksDeskError(CivicError):
    """A read of something the ledger does not have. Reasons: ``unknown_works_contract``,
    ``unknown_stage``, ``bad_reference``."""

    reason = "works_desk"


def split_by_kind(lines: list[Mapping[str, Any]], claim: int | None) -> dict[str, int]:
    """A stage's split per kind (subcontract, materials, equipment, labour) and the prime's
    rest of the claim (``prime``: zero before the claim). Pure."""
    totals = dict.fromkeys(LINE_KINDS, 0)
    for line in lines:
        totals[str(line["kind"])] += int(line["value"])
    totals["prime"] = max(0, (claim or 0) - sum(totals.values()))
    return totals


class WorksDesk:
    def __init__(self, ledger: LedgerAccess) -> None:
        self.ledger = ledger

    def _query(self, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.query(CONTRACT_NAME, method, args)

    def contracts(self, *, after: str = "", limit: int = 100) -> Any:
        return self._query("contracts", {"after": after, "limit": limit})

    def contract(self, contract_id: str) -> dict[str, Any]:
        found = None
        if _ID.fullmatch(contract_id):
            found = self._query("contract", {"contract_id": contract_id})
        if not isinstance(found, Mapping):
            raise WorksDeskError(
                f"there is no works contract {contract_id[:70]!r}", reason="unknown_works_contract"
            )
        return dict(found)

    def stages(self, contract_id: str) -> list[Any]:
        self.contract(contract_id)
        return list(self._query("stages", {"contract_id": contract_id}))

    def parties(self, contract_id: str) -> list[Any]:
        self.contract(contract_id)
        return list(self._query("parties", {"contract_id": contract_id}))

    def stage(self, contract_id: str, stage: int) -> dict[str, Any]:
        self.contract(contract_id)
        found = None
        if 1 <= stage <= 1000:
            found = self._query("stage", {"contract_id": contract_id, "stage": stage})
        if not isinstance(found, Mapping):
            raise WorksDeskError(
                f"works contract {contract_id!r} has no stage {stage}", reason="unknown_stage"
            )
        return dict(found)

    def payments(self, ref: str, *, limit: int = 100) -> dict[str, Any]:
        """Payout orders to a worker's pseudonym or account reference, with the totals ordered
        and paid (what a worker checks "by phone")."""
        ref = ref.strip().lower()
        if not _HASH.fullmatch(ref):
            raise WorksDeskError(
                "a payment reference is 64 hexadecimal characters", reason="bad_reference"
            )
        orders = list(self._query("payments", {"ref": ref, "limit": min(limit, MAX_PAGE)}))
        return {
            "ref": ref,
            "payouts": orders,
            "ordered": sum(int(o["amount"]) for o in orders),
            "paid": sum(int(o["amount"]) for o in orders if o["status"] == "paid"),
        }

    def alerts(self, *, after: str = "", limit: int = 100) -> Any:
        return self._query("alerts", {"after": after, "limit": limit})

    def overdue(self, *, limit: int = 100) -> list[Any]:
        return list(self._query("overdue", {"limit": limit}))

    def payouts(self, contract_id: str) -> list[Any]:
        """Every payout order of the contract, stage by stage."""
        return [
            order
            for stage in self.stages(contract_id)
            if stage["payouts"]
            for order in self.stage(contract_id, int(stage["stage"]))["payout_orders"]
        ]

    def contract_view(self, contract_id: str) -> dict[str, Any]:
        """The contract page: the record, each stage in detail with its split per kind, the
        parties with what each was ordered and paid, and the contract's late alerts."""
        record = self.contract(contract_id)
        stages = []
        per_party: dict[str, dict[str, int]] = {}
        for summary in self._query("stages", {"contract_id": contract_id}):
            detail = self.stage(contract_id, int(summary["stage"]))
            detail["by_kind"] = split_by_kind(detail["split"], detail.get("claim"))
            stages.append(detail)
            for order in detail["payout_orders"]:
                key = order["party_id"] if order["kind"] != "labour" else "labour"
                party = per_party.setdefault(key, {"ordered": 0, "paid": 0, "orders": 0})
                party["ordered"] += int(order["amount"])
                party["orders"] += 1
                if order["status"] == "paid":
                    party["paid"] += int(order["amount"])
        alerts = [s["alert"] for s in stages if s.get("alert")]
        return {
            "contract": record,
            "stages": stages,
            "parties": self._query("parties", {"contract_id": contract_id}),
            "per_party": per_party,
            "alerts": alerts,
        }
