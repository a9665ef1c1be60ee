"""``POST /txs``: many signed transactions in one request, for agencies' bulk feeds."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from civicledger.api.metrics import NodeMetrics
from civicledger.api.models import BatchAccepted, BatchResult
from civicledger.api.problems import ApiError, problem_responses
from civicledger.api.settings import ApiSettings
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError
from civicledger.ledger.receipt import Receipt
from civicledger.node.protocol import Node


def batch_router(node: Node, metrics: NodeMetrics, settings: ApiSettings) -> APIRouter:
    router = APIRouter(tags=["transactions"])

    @router.post(
        "/txs",
        response_model=BatchResult,
        responses={
            202: {"model": BatchAccepted, "description": "handed to the node (wait=false)"},
            **problem_responses(400, 408, 413, 422, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-ndjson": {
                        "schema": {
                            "type": "string",
                            "description": "one signed envelope (JSON) per line",
                        }
                    }
                },
            }
        },
    )
    async def submit_batch(
        request: Request,
        wait: Annotated[bool, Query(description="wait for every outcome")] = True,
    ) -> Response:
        """Submit many signed transactions at once: one envelope per line (NDJSON), in order.

        For agencies' systems that feed the ledger in bulk: signatures are checked in worker
        processes, and one signer's transactions keep the order of the lines. Each line gets
        its own outcome (``results[i]``): a refused line does not affect the others.
        """
        lines = [line for line in (await request.body()).split(b"\n") if line.strip()]
        if not lines:
            raise ApiError(400, "bad_request", "the body holds no transactions")
        if len(lines) > settings.max_batch_txs:
            raise ApiError(
                413,
                "payload_too_large",
                f"{len(lines)} transactions; a batch holds at most {settings.max_batch_txs}",
            )
        futures = node.submit_many(lines)
        for future in futures:
            metrics.watch(future)  # refused lines are counted even if nobody waits for them
        if not wait:
            return JSONResponse({"accepted": len(lines)}, status_code=202)
        waiting = [asyncio.wrap_future(f) for f in futures]
        await asyncio.wait(waiting, timeout=settings.wait_timeout_s)
        results = [_batch_item(index, done) for index, done in enumerate(waiting)]
        return Response(canonical_json({"results": results}), media_type="application/json")

    return router


def _batch_item(index: int, outcome: asyncio.Future[Receipt]) -> dict[str, object]:
    if not outcome.done():
        # Never cancel: the node commits or drops it regardless. Take its outcome when it comes
        # so asyncio does not log an exception nobody retrieved.
        outcome.add_done_callback(_discard)
        return {"index": index, "status": "pending"}
    error = outcome.exception()
    if error is None:
        receipt = outcome.result()
        return {
            "index": index,
            "status": receipt.status,
            "receipt": receipt.model_dump(mode="json"),
        }
    if isinstance(error, CivicError):
        return {
            "index": index,
            "status": "rejected",
            "reason": error.reason,
            "detail": error.message,
        }
    raise error


def _discard(outcome: asyncio.Future[Receipt]) -> None:
    if not outcome.cancelled():
        outcome.exception()
