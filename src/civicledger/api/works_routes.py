"""``/api/v1/works``: public works contracts with direct payment of subcontractors (대금e바로).

Reads only, over ``WorksDesk``: the contracts, a contract with its escrow, stages, split,
approvals and payout orders, its parties, late alerts and overdue stages, and a worker's
payments by pseudonym or account reference (how a worker checks their wage by phone). Every
works transaction is signed by its signer and sent to ``POST /api/v1/tx``; see docs/works.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from civicledger.agency.works_desk import WorksDesk
from civicledger.api.problems import problem_responses
from civicledger.contracts.base import HASH_PATTERN
from civicledger.crypto.encoding import canonical_json
from civicledger.services.works.contract import ID_PATTERN, MAX_PAGE, MAX_STAGES

__all__ = ["works_router"]

ContractId = Annotated[str, Path(pattern=ID_PATTERN)]
Stage = Annotated[int, Path(ge=1, le=MAX_STAGES)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
After = Annotated[str, Query(max_length=200)]


def _json(value: Any) -> Response:
    return Response(canonical_json(value), media_type="application/json")


def works_router(desk: WorksDesk) -> APIRouter:
    router = APIRouter(prefix="/works", tags=["works"])

    @router.get("/contracts", responses=problem_responses(422))
    def contracts(after: After = "", limit: Limit = 100) -> Response:
        """Works contracts by id, paginated with ``after``: ``{"contracts", "next"}``."""
        return _json(desk.contracts(after=after, limit=limit))

    @router.get("/contracts/{contract_id}", responses=problem_responses(404, 422))
    def contract(contract_id: ContractId) -> Response:
        """A contract with its escrow (deposited, released, held, paid), every stage in detail
        (split, verification, approvals, payout orders, alert), its parties, what each party
        was ordered and paid, and its late alerts."""
        return _json(desk.contract_view(contract_id))

    @router.get("/contracts/{contract_id}/stages", responses=problem_responses(404, 422))
    def stages(contract_id: ContractId) -> Response:
        """The contract's stages in order (status, claim, approvals, due time)."""
        return _json(desk.stages(contract_id))

    @router.get("/contracts/{contract_id}/stages/{stage}", responses=problem_responses(404, 422))
    def stage(contract_id: ContractId, stage: Stage) -> Response:
        """One stage with its split lines, verification, approvals, payout orders and alert."""
        return _json(desk.stage(contract_id, stage))

    @router.get("/contracts/{contract_id}/parties", responses=problem_responses(404, 422))
    def parties(contract_id: ContractId) -> Response:
        """The prime contractor and the subcontractors (keys, account references, amounts)."""
        return _json(desk.parties(contract_id))

    @router.get("/contracts/{contract_id}/payouts", responses=problem_responses(404, 422))
    def payouts(contract_id: ContractId) -> Response:
        """Every payout order of the contract (pending or paid, with the bank's reference)."""
        return _json(desk.payouts(contract_id))

    @router.get("/alerts", responses=problem_responses(422))
    def alerts(after: After = "", limit: Limit = 100) -> Response:
        """Late-payment alerts (kept after payment), paginated: ``{"alerts", "next"}``."""
        return _json(desk.alerts(after=after, limit=limit))

    @router.get("/overdue", responses=problem_responses(422))
    def overdue(limit: Limit = 100) -> Response:
        """Claimed stages not fully paid whose deadline has passed (by the head's time)."""
        return _json(desk.overdue(limit=limit))

    @router.get("/payments/{ref}", responses=problem_responses(422))
    def payments(ref: Annotated[str, Path(pattern=HASH_PATTERN)], limit: Limit = 100) -> Response:
        """A worker's (or any payee's) payout orders by pseudonym or account reference, with
        the totals ordered and paid."""
        return _json(desk.payments(ref, limit=limit))

    return router
