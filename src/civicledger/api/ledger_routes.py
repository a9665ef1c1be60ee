"""Reads of the ledger: blocks, signed tree heads, consistency proofs, queries, nonces, genesis."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from civicledger.api.models import (
    MAX_HEIGHT,
    BlockDetail,
    BlockList,
    NonceInfo,
    QueryResult,
)
from civicledger.api.problems import ApiError, problem_responses
from civicledger.crypto.encoding import canonical_json, parse_json
from civicledger.errors import CivicError
from civicledger.ledger.block import SignedTreeHead
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.proofs import ConsistencyBundle
from civicledger.ledger.receipt import log_leaf_bytes
from civicledger.ledger.tx import NAME_PATTERN, signer_key
from civicledger.node.chain import Chain
from civicledger.node.protocol import Node

Height = Annotated[int, Path(ge=0, le=MAX_HEIGHT)]
OptionalHeight = Annotated[int | None, Query(ge=0, le=MAX_HEIGHT)]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
MAX_PAGE = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"at most {MAX_PAGE}")]


def _json(data: bytes) -> Response:
    return Response(data, media_type="application/json")


def _require_block(chain: Chain, height: int | None) -> None:
    if height is not None and chain.block(height) is None:
        raise ApiError(404, "not_found", f"no block at height {height}")


def ledger_router(node: Node) -> APIRouter:
    router = APIRouter(tags=["ledger"])
    chain = node.chain

    @router.get("/blocks", response_model=BlockList, responses=problem_responses(422))
    def list_blocks(before: OptionalHeight = None, limit: Limit = 20) -> Response:
        """Block headers, newest first; page with ``before``."""
        top = chain.height if before is None else min(before - 1, chain.height)
        heights = range(top, max(top - limit, -1), -1)
        headers = [h for h in (chain.block(height) for height in heights) if h is not None]
        lowest = headers[-1].header.height if headers else 0
        body = {
            "blocks": [h.model_dump(mode="json") for h in headers],
            "next_before": lowest if lowest > 0 else None,
        }
        return _json(canonical_json(body))

    @router.get(
        "/blocks/{height}", response_model=BlockDetail, responses=problem_responses(404, 422)
    )
    def get_block(
        height: Height,
        offset: Annotated[int, Query(ge=0, le=MAX_HEIGHT)] = 0,
        limit: Limit = 100,
    ) -> Response:
        """A block's signed header, its signed tree head and a page of its transactions."""
        header = chain.block(height)
        if header is None:
            raise ApiError(404, "not_found", f"no block at height {height}")
        txs = chain.block_txs(height, offset, limit)
        parts = [
            b'{"header":',
            header.model_dump_json().encode(),
            b',"limit":%d,"offset":%d,"tree_head":' % (limit, offset),
            chain.tree_head(height).model_dump_json().encode(),
            b',"txs":[',
            b",".join(log_leaf_bytes(s.envelope, s.receipt_bytes) for s in txs),
            b"]}",
        ]
        return _json(b"".join(parts))

    @router.get("/tree-head", response_model=SignedTreeHead, responses=problem_responses(404, 422))
    def get_tree_head(height: OptionalHeight = None) -> Response:
        """The signed tree head at ``height`` (default: the latest block)."""
        _require_block(chain, height)
        return _json(chain.tree_head(height).model_dump_json().encode())

    @router.get(
        "/consistency",
        response_model=ConsistencyBundle,
        responses=problem_responses(400, 404, 422),
    )
    def get_consistency_proof(
        old: Annotated[int, Query(ge=0, le=MAX_HEIGHT)],
        new: OptionalHeight = None,
    ) -> Response:
        """Proof that the log at block ``new`` (default latest) extends the log at block ``old``."""
        _require_block(chain, old)
        _require_block(chain, new)
        if new is not None and new < old:
            raise ApiError(400, "bad_request", f"new height {new} is below old height {old}")
        return _json(chain.consistency_proof(old, new).model_dump_json().encode())

    @router.get(
        "/query/{contract}/{method}",
        response_model=QueryResult,
        responses=problem_responses(400, 403, 422),
    )
    def run_query(
        contract: Name,
        method: Name,
        args: Annotated[
            str, Query(max_length=4096, description="the query's arguments as a JSON object")
        ] = "{}",
    ) -> Response:
        """A read-only contract query at the latest block. Not proven: there is no state root."""
        try:
            parsed = parse_json(args.encode())
        except CivicError as e:
            raise ApiError(400, "invalid_query", f"args is not JSON: {e.message}") from e
        if not isinstance(parsed, dict):
            raise ApiError(400, "invalid_query", "args must be a JSON object")
        height, result = chain.query_at_head(contract, method, parsed)
        return _json(canonical_json({"height": height, "result": result}))

    @router.get("/nonce/{did}", response_model=NonceInfo, responses=problem_responses(400, 422))
    def get_nonce(did: Annotated[str, Path(max_length=128)]) -> NonceInfo:
        """The signer's last committed nonce; its next transaction uses ``next_nonce``."""
        signer_key(did)  # EncodingError (400) unless a well-formed did:key
        last = chain.last_nonce(did)
        return NonceInfo(signer=did, last_nonce=last, next_nonce=last + 1)

    @router.get("/genesis", response_model=Genesis)
    def get_genesis() -> Response:
        """The genesis document; compare it with the one the city publishes before trusting it."""
        return _json(chain.genesis.canonical_bytes())

    return router
