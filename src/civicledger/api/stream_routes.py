"""``GET /events``: committed blocks and contract events as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from civicledger.api.events import EventHub
from civicledger.api.models import MAX_HEIGHT
from civicledger.api.problems import problem_responses
from civicledger.api.settings import ApiSettings
from civicledger.ledger.tx import NAME_PATTERN
from civicledger.node.protocol import Node

_RECONNECT_MS = 1000
_EVENT_SCHEMA = {
    "type": "object",
    "description": "one server-sent event; `data` is a JSON object (see docs/api.md)",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["block", "event"]},
        "id": {"type": "string", "description": "the block height"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}


def stream_router(node: Node, hub: EventHub, settings: ApiSettings) -> APIRouter:
    router = APIRouter(tags=["events"])

    @router.get(
        "/events",
        response_class=EventSourceResponse,
        responses={
            200: {
                "description": "an event stream (`block` and `event` messages)",
                "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
            },
            **problem_responses(422),
        },
    )
    async def events(
        contract: Annotated[
            str | None, Query(pattern=NAME_PATTERN, description="only this contract's events")
        ] = None,
        since: Annotated[
            int | None,
            Query(ge=0, le=MAX_HEIGHT, description="send the blocks after this height first"),
        ] = None,
        last_event_id: Annotated[str | None, Header(max_length=32)] = None,
    ) -> Response:
        """Live blocks and contract events; resumes after ``Last-Event-ID`` (or ``since``)."""
        after = since
        if last_event_id is not None and last_event_id.isdigit():
            after = min(int(last_event_id), MAX_HEIGHT)

        async def messages() -> AsyncIterator[ServerSentEvent]:
            yield ServerSentEvent(comment="connected", retry=_RECONNECT_MS)
            stream = hub.stream(
                node.chain, after=after, contract=contract, replay_chunk=settings.sse_replay_blocks
            )
            async for message in stream:
                yield ServerSentEvent(
                    data=message.data, event=message.event, id=str(message.height)
                )

        return EventSourceResponse(messages(), ping=settings.sse_ping_s, send_timeout=30)

    return router
