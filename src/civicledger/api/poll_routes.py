"""``/api/v1/polls``: polls, live turnout and results, turnout over time, ballot tracking, and
voter registration (eligibility proven with a presentation; the ledger gets a pseudonym).

Creating a poll, voting and the trustees' steps are transactions signed by their signers and
sent to ``POST /api/v1/tx``; see docs/voting.md for their arguments.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from civicledger.agency.desk import parse_presentation
from civicledger.agency.poll_desk import PollDesk
from civicledger.api.problems import ApiError, problem_responses
from civicledger.crypto.encoding import canonical_json

__all__ = ["poll_router"]

_POLL_ID = r"^[a-z0-9][a-z0-9-]{2,62}$"
_PSEUDONYM = r"^[0-9a-f]{64}$"
_DID = r"^did:key:z[1-9A-HJ-NP-Za-km-z]{40,60}$"

PollId = Annotated[str, Path(pattern=_POLL_ID)]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presentation: str | dict[str, Any] = Field(
        description="A presentation of the poll's credential type answering `challenge`."
    )
    challenge: str = Field(max_length=200, description="From POST /api/v1/identity/challenges.")
    voter_key: str = Field(
        pattern=_DID, description="The wallet's key for this poll only (Wallet.poll_key)."
    )


class RegisterOut(BaseModel):
    poll_id: str
    pseudonym: str
    """The voter's pseudonym in this poll: the ledger's only record of who may vote."""
    district: str


def _json(value: Any) -> Response:
    return Response(canonical_json(value), media_type="application/json")


def poll_router(desk: PollDesk) -> APIRouter:
    router = APIRouter(prefix="/polls", tags=["polls"])

    def _known(poll_id: str) -> None:
        desk.poll(poll_id)  # 404 through the problem handler (unknown_poll)

    @router.get("", responses=problem_responses(422))
    def list_polls(
        after: Annotated[str, Query(max_length=64)] = "",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Polls in id order, paginated with ``after``: ``{"polls": [...], "next": ...}``."""
        return _json(desk.polls(after=after, limit=limit))

    @router.get("/{poll_id}", responses=problem_responses(404, 422))
    def show(poll_id: PollId) -> Response:
        """A poll: its definition and phase, live turnout, and its tally (open polls: live;
        secret polls: null until the verified result is published)."""
        poll = desk.poll(poll_id)
        return _json({"poll": poll, "turnout": desk.turnout(poll_id), "tally": desk.tally(poll_id)})

    @router.get("/{poll_id}/series", responses=problem_responses(404, 422))
    def series(
        poll_id: PollId,
        after_ms: Annotated[int, Query(ge=-1, le=2**53)] = -1,
        limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    ) -> Response:
        """Turnout over time: one point per block time at which it changed."""
        _known(poll_id)
        return _json({"series": desk.series(poll_id, after_ms=after_ms, limit=limit)})

    @router.get("/{poll_id}/ballots/{pseudonym}", responses=problem_responses(404, 422))
    def ballot(poll_id: PollId, pseudonym: Annotated[str, Path(pattern=_PSEUDONYM)]) -> Response:
        """The ballot that counts for a pseudonym: tracking code and transaction id (prove its
        inclusion with GET /api/v1/tx/{tx_id}/proof)."""
        _known(poll_id)
        found = desk.ballot(poll_id, pseudonym)
        if found is None:
            raise ApiError(404, "not_found", "no ballot for that pseudonym in this poll")
        return _json(found)

    @router.post(
        "/{poll_id}/registrations",
        response_model=RegisterOut,
        status_code=201,
        responses=problem_responses(400, 403, 404, 409, 422, 503),
    )
    def register(poll_id: PollId, body: RegisterIn) -> RegisterOut:
        """Register to vote: the node's registrar checks the presentation and the poll's
        conditions and records only a per-poll pseudonym and the voter key."""
        presentation = (
            parse_presentation(body.presentation)
            if isinstance(body.presentation, str)
            else body.presentation
        )
        made = desk.register(poll_id, presentation, body.voter_key, challenge=body.challenge)
        return RegisterOut(poll_id=made.poll_id, pseudonym=made.pseudonym, district=made.district)

    return router
