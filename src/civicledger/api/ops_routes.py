"""Health and Prometheus metrics, for the city's operations team."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from civicledger.api.metrics import CONTENT_TYPE, NodeMetrics
from civicledger.api.models import Health
from civicledger.api.problems import ApiError
from civicledger.node.cluster.node import ClusterNode
from civicledger.node.protocol import Node


def ops_router(node: Node, metrics: NodeMetrics) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", response_model=Health)
    def health() -> Health:
        """The node answers and reads its ledger (503 while a cluster node has diverged)."""
        if isinstance(node, ClusterNode) and not node.serving:
            raise ApiError(503, "node_diverged", "this node diverged from the cluster")
        return Health(
            status="ok",
            chain_id=node.chain.chain_id,
            height=node.chain.height,
            mempool=node.mempool_size,
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    def prometheus_metrics() -> Response:
        """Prometheus text format: height, tx/s, mempool size, committed and rejected txs."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return router
