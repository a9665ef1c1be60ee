"""``POST /tx`` (the only write) and reads of committed transactions and their proofs."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from civicledger.api.metrics import NodeMetrics
from civicledger.api.models import (
    MAX_HEIGHT,
    TX_ID_PATTERN,
    Pending,
    Submitted,
    TxRecord,
    submit_request_schema,
)
from civicledger.api.problems import ApiError, problem_responses
from civicledger.api.settings import ApiSettings
from civicledger.errors import TxRejected
from civicledger.ledger.proofs import InclusionBundle
from civicledger.ledger.receipt import Receipt, log_leaf_bytes
from civicledger.ledger.tx import decode_tx
from civicledger.node.protocol import Node

TxId = Annotated[str, Path(pattern=TX_ID_PATTERN, description="64 lowercase hex characters")]


def tx_router(node: Node, metrics: NodeMetrics, settings: ApiSettings) -> APIRouter:
    router = APIRouter(tags=["transactions"])
    chain = node.chain

    @router.post(
        "/tx",
        response_model=Submitted,
        responses={
            202: {"model": Pending, "description": "admitted; not yet in a durable block"},
            **problem_responses(400, 403, 408, 409, 413, 422, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": submit_request_schema()}},
            }
        },
    )
    async def submit(
        request: Request,
        wait: Annotated[bool, Query(description="wait for the receipt")] = True,
    ) -> Response:
        """Submit a signed transaction; with ``wait``, answer with its receipt once durable.

        A *failed* receipt (the contract refused it while executing) is a 200: it is recorded.
        A refused transaction is a problem whose ``reason`` says why; nothing was written.
        """
        raw = await request.body()
        try:
            signed = decode_tx(raw)
            future = node.submit_nowait(signed)
        except TxRejected as e:
            metrics.on_rejected(e.reason)
            raise
        metrics.watch(future)  # a drop at block time is counted even if nobody waits
        tx_id = signed.tx_id_hex
        pending = JSONResponse({"tx_id": tx_id, "status": "pending"}, status_code=202)
        if not wait:
            return pending
        outcome = asyncio.wrap_future(future)
        try:
            receipt = await asyncio.wait_for(asyncio.shield(outcome), settings.wait_timeout_s)
        except TimeoutError:
            outcome.add_done_callback(_discard)  # its fate is read later, with GET /tx
            return pending
        body = b'{"receipt":' + receipt.canonical_bytes() + b',"tx_id":"' + tx_id.encode() + b'"}'
        return Response(body, media_type="application/json")

    @router.get("/tx/{tx_id}", response_model=TxRecord, responses=problem_responses(404, 422))
    def get_tx(tx_id: TxId) -> Response:
        """A committed transaction with its receipt."""
        stored = chain.tx(bytes.fromhex(tx_id))
        if stored is None:
            raise ApiError(404, "not_found", f"no committed transaction {tx_id}")
        return Response(
            log_leaf_bytes(stored.envelope, stored.receipt_bytes), media_type="application/json"
        )

    @router.get(
        "/tx/{tx_id}/proof",
        response_model=InclusionBundle,
        responses=problem_responses(400, 404, 422),
    )
    def get_inclusion_proof(
        tx_id: TxId,
        height: Annotated[
            int | None, Query(ge=0, le=MAX_HEIGHT, description="tree head at this block")
        ] = None,
    ) -> Response:
        """An inclusion proof of the transaction and its receipt, against a signed tree head."""
        tx_bytes = bytes.fromhex(tx_id)
        stored = chain.tx(tx_bytes)
        if stored is None:
            raise ApiError(404, "not_found", f"no committed transaction {tx_id}")
        if height is not None and chain.block(height) is None:
            raise ApiError(404, "not_found", f"no block at height {height}")
        if height is not None and height < stored.receipt.height:
            raise ApiError(
                400,
                "not_in_tree",
                f"transaction {tx_id} is in block {stored.receipt.height}, after block {height}",
            )
        bundle = chain.inclusion_proof(tx_bytes, height)
        return Response(bundle.model_dump_json(), media_type="application/json")

    return router


def _discard(outcome: asyncio.Future[Receipt]) -> None:
    """Retrieve an outcome nobody waits for any more, so asyncio does not log it as lost."""
    if not outcome.cancelled():
        outcome.exception()
