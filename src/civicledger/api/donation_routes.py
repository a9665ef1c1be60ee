"""``/api/v1/donations``: charities, campaigns, a campaign's public ledger of donations and
disbursements, one donation or disbursement, and traces (a campaign's, or a donor's own by the
receipt secret).

Read-only: every change (register, open, donate, disburse, link) is a signed transaction sent to
``POST /api/v1/tx``; see docs/donations.md. A donor's receipt secret is posted in a body, never
put in a URL (URLs end up in logs).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from civicledger.agency.donation_desk import DonationDesk
from civicledger.api.problems import problem_responses
from civicledger.contracts.base import HASH_PATTERN
from civicledger.crypto.encoding import canonical_json
from civicledger.services.donations.contract import CODE_PATTERN, MAX_TOTAL

__all__ = ["donation_router"]

CampaignId = Annotated[str, Path(pattern=CODE_PATTERN)]
CharityId = Annotated[str, Path(pattern=CODE_PATTERN)]
Seq = Annotated[int, Path(ge=1, le=MAX_TOTAL)]


class TraceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt: str = Field(
        min_length=1,
        max_length=200,
        description="The receipt secret printed for the donor, or its 64-hex commitment.",
    )


def _json(value: Any) -> Response:
    return Response(canonical_json(value), media_type="application/json")


def donation_router(desk: DonationDesk) -> APIRouter:
    router = APIRouter(prefix="/donations", tags=["donations"])

    @router.get("/charities")
    def charities() -> Response:
        """Registered charities by id (names, registration number hashes, keys, status)."""
        return _json({"charities": desk.charities()})

    @router.get("/charities/{charity_id}", responses=problem_responses(404, 422))
    def charity(charity_id: CharityId) -> Response:
        """One charity's record."""
        return _json(desk.charity(charity_id))

    @router.get("/campaigns")
    def campaigns() -> Response:
        """Every campaign with its goal, raised, disbursed and balance."""
        return _json({"campaigns": desk.campaigns()})

    @router.get("/campaigns/{campaign_id}", responses=problem_responses(404, 422))
    def campaign(campaign_id: CampaignId) -> Response:
        """A campaign's public ledger: the campaign, its donations and its disbursements."""
        return _json(desk.ledger_of(campaign_id))

    @router.get("/campaigns/{campaign_id}/donations/{seq}", responses=problem_responses(404, 422))
    def donation(campaign_id: CampaignId, seq: Seq) -> Response:
        """One donation with its FIFO shares in disbursements."""
        return _json(desk.donation(campaign_id, seq))

    @router.get(
        "/campaigns/{campaign_id}/disbursements/{seq}", responses=problem_responses(404, 422)
    )
    def disbursement(campaign_id: CampaignId, seq: Seq) -> Response:
        """One disbursement with its shares and (help coin) its linked mint entries."""
        return _json(desk.disbursement(campaign_id, seq))

    @router.get("/campaigns/{campaign_id}/trace", responses=problem_responses(404, 422))
    def campaign_trace(campaign_id: CampaignId) -> Response:
        """Every disbursement and what its help coin became: spent by merchant category,
        unspent, expired (exact where the replay is)."""
        return _json(desk.trace_campaign(campaign_id))

    @router.get(
        "/campaigns/{campaign_id}/donations/{seq}/trace", responses=problem_responses(404, 422)
    )
    def donation_trace(campaign_id: CampaignId, seq: Seq) -> Response:
        """One donation's tree: shares → disbursements → help-coin spending (proportional)."""
        return _json(desk.trace_donation(campaign_id, seq))

    @router.post("/trace", responses=problem_responses(404, 422))
    def donor_trace(body: TraceIn) -> Response:
        """A donor's own donation, found by the receipt secret (or its commitment), traced."""
        return _json(desk.trace_donor(body.receipt))

    @router.get(
        "/donors/{commitment}/trace",
        responses=problem_responses(404, 422),
    )
    def commitment_trace(commitment: Annotated[str, Path(pattern=HASH_PATTERN)]) -> Response:
        """The same by the commitment alone (what the bank recorded; reveals no secret)."""
        return _json(desk.trace_donor(commitment))

    return router
