"""The cluster surface: a node's view of the cluster, each block's attestations, snapshots.

Over an embedded node these answer 404 ``not_a_cluster``. A cluster node whose state diverged
from the cluster answers every ``/api/v1`` route but ``/api/v1/cluster/status`` with 503
``node_diverged`` (``DivergedGate``), and ``/healthz`` with 503, until it is repaired.
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Receive, Scope, Send

from civicledger.api.models import MAX_HEIGHT
from civicledger.api.problems import ApiError, problem_response, problem_responses
from civicledger.node.cluster.node import ClusterNode
from civicledger.node.cluster.snapshot import (
    HASH_HEADER,
    HEIGHT_HEADER,
    MEDIA_TYPE,
    SEQ_HEADER,
    make_snapshot,
)
from civicledger.node.protocol import Node

CLUSTER_STATUS_PATH = "/cluster/status"
Height = Annotated[int, Path(ge=0, le=MAX_HEIGHT)]


def _cluster(node: Node) -> ClusterNode:
    if not isinstance(node, ClusterNode):
        raise ApiError(404, "not_a_cluster", "this node runs alone (embedded), not in a cluster")
    return node


def cluster_status(node: ClusterNode) -> dict[str, Any]:
    head = node.chain.head.header
    peers = node.peers()
    return {
        "node": node.did,
        "height": head.height,
        "header_hash": head.hash().hex(),
        "state_hash": head.state_hash,
        "stream_seq": node.stream_seq,
        "final_height": node.final_height,
        "quorum": node.quorum,
        "serving": node.serving,
        "diverged": node.diverged,
        "peers": peers,
        "faulty": [{"node": f.node, "height": f.height, "reason": f.reason} for f in node.faulty],
        "silent": [p["node"] for p in peers if p["silent"]],
    }


def block_attestations(node: ClusterNode, height: int) -> dict[str, Any]:
    own = node.chain.block(height)
    if own is None:
        raise ApiError(404, "not_found", f"no block at height {height}")
    own_hash = own.header.hash().hex()
    atts = node.book.at(height)
    return {
        "height": height,
        "header_hash": own_hash,
        "quorum": node.quorum,
        "final": node.book.is_final(height, own_hash),
        "attestations": [
            {
                "node": a.attestation.node,
                "header_hash": a.attestation.header_hash,
                "state_hash": a.attestation.state_hash,
                "log_root": a.attestation.log_root,
                "signature": a.signature,
                "agrees": a.attestation.header_hash == own_hash,
            }
            for a in atts
        ],
    }


def cluster_router(node: Node) -> APIRouter:
    router = APIRouter(tags=["cluster"])

    @router.get(CLUSTER_STATUS_PATH, responses=problem_responses(404))
    def status() -> dict[str, Any]:
        """This node's head, stream position, finality, and what it knows of its peers."""
        return cluster_status(_cluster(node))

    @router.get("/blocks/{height}/attestations", responses=problem_responses(404, 422))
    def attestations(height: Height) -> dict[str, Any]:
        """Every node's signed attestation of this block's header; final at ``quorum``."""
        return block_attestations(_cluster(node), height)

    @router.get(
        "/cluster/snapshot",
        response_class=FileResponse,
        responses={200: {"content": {MEDIA_TYPE: {}}}, **problem_responses(404)},
    )
    def snapshot() -> FileResponse:
        """A consistent copy of this node's ledger database, to repair or start another node."""
        cluster = _cluster(node)
        scratch = tempfile.TemporaryDirectory(prefix="civic-snapshot-")
        path = FsPath(scratch.name) / "ledger.sqlite"
        info = make_snapshot(cluster.chain, path)
        return FileResponse(
            path,
            media_type=MEDIA_TYPE,
            headers={
                HEIGHT_HEADER: str(info.height),
                HASH_HEADER: info.header_hash,
                SEQ_HEADER: str(info.stream_cut_seq),
            },
            background=BackgroundTask(scratch.cleanup),
        )

    return router


class DivergedGate:
    """Plain ASGI: while the cluster node is not serving, ``/api/v1`` answers 503 except the
    cluster status (streaming responses pass untouched otherwise)."""

    def __init__(self, app: ASGIApp, node: Node, prefix: str) -> None:
        self.app = app
        self.node = node
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        node = self.node
        if (
            scope["type"] == "http"
            and isinstance(node, ClusterNode)
            and not node.serving
            and str(scope["path"]).startswith(self.prefix + "/")
            and scope["path"] != self.prefix + CLUSTER_STATUS_PATH
        ):
            response = problem_response(
                503,
                "node_diverged",
                "this node's state diverged from the cluster's; it serves nothing until it is "
                "repaired (civic node repair --from URL)",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


__all__ = ["DivergedGate", "block_attestations", "cluster_router", "cluster_status"]
