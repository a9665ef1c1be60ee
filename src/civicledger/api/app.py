"""``create_app``: the JSON API over one running node, with its metrics and live events.

The app is thin: routes parse, call the node or its chain, and render; errors are problem+json
(``problems.py``); limits act before routes read anything (``limits.py``). The portal, when
wanted, is added on top by ``civicledger.web`` (the API never imports the portal).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import civicledger
from civicledger.agency.certificate_desk import CertificateDesk
from civicledger.agency.currency_desk import CurrencyDesk
from civicledger.agency.desk import IdentityDesk
from civicledger.agency.donation_desk import DonationDesk
from civicledger.agency.poll_desk import PollDesk
from civicledger.agency.vehicle_desk import VehicleDesk
from civicledger.agency.works_desk import WorksDesk
from civicledger.api.batch_routes import batch_router
from civicledger.api.certificate_routes import CERTIFICATE_PDF_PATH, certificate_router
from civicledger.api.cluster_routes import DivergedGate, cluster_router
from civicledger.api.currency_routes import currency_router
from civicledger.api.donation_routes import donation_router
from civicledger.api.events import EventHub
from civicledger.api.identity_routes import IDENTITY_QR_PATH, identity_router
from civicledger.api.ledger_routes import ledger_router
from civicledger.api.limits import BodyLimitMiddleware
from civicledger.api.metrics import NodeMetrics
from civicledger.api.ops_routes import ops_router
from civicledger.api.poll_routes import poll_router
from civicledger.api.problems import install_problem_handlers
from civicledger.api.settings import ApiSettings
from civicledger.api.stream_routes import stream_router
from civicledger.api.tx_routes import tx_router
from civicledger.api.vehicle_routes import vehicle_router
from civicledger.api.works_routes import works_router
from civicledger.node.protocol import Node
from civicledger.services.certificates.pdf import MAX_PDF_BYTES
from civicledger.services.identity.qr_image import MAX_IMAGE_BYTES

API_PREFIX = "/api/v1"


def create_app(
    node: Node,
    settings: ApiSettings | None = None,
    identity: IdentityDesk | None = None,
) -> FastAPI:
    """The API app for ``node``; the caller owns the node and closes it after the server stops.

    ``identity`` (the node's identity desk, which needs the city directory) adds the
    ``/identity``, ``/polls`` and ``/currencies`` routes; without it the node serves the
    ledger only.
    """
    settings = settings or ApiSettings()
    metrics = NodeMetrics(node, rate_window_s=settings.rate_window_s)
    hub = EventHub(settings.sse_queue_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.attach(asyncio.get_running_loop())
        node.on_block(metrics.on_block)
        node.on_block(hub.publish)
        try:
            yield
        finally:
            node.remove_block_listener(hub.publish)
            node.remove_block_listener(metrics.on_block)
            hub.attach(None)

    app = FastAPI(
        title="CivicLedger API",
        version=civicledger.__version__,
        summary=f"The ledger of {node.chain.genesis.city} ({node.chain.chain_id})",
        description=(
            "Submit signed transactions; read blocks, transactions and receipts; fetch "
            "inclusion and consistency proofs against signed tree heads. Errors are RFC 9457 "
            "problem+json with a stable `reason`."
        ),
        lifespan=lifespan,
    )
    app.state.node = node
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.events = hub
    app.state.identity = identity
    # Called by ``BackgroundServer.stop`` before it stops, so open event streams end at once.
    app.state.before_shutdown = [hub.end_streams]
    install_problem_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        read_timeout_s=settings.body_read_timeout_s,
        path_limits={
            **settings.extra_path_limits,
            f"{API_PREFIX}/txs": settings.max_batch_body_bytes,
            f"{API_PREFIX}{IDENTITY_QR_PATH}": MAX_IMAGE_BYTES,
            f"{API_PREFIX}{CERTIFICATE_PDF_PATH}": MAX_PDF_BYTES,
        },
    )
    app.add_middleware(DivergedGate, node=node, prefix=API_PREFIX)
    app.include_router(tx_router(node, metrics, settings), prefix=API_PREFIX)
    app.include_router(batch_router(node, metrics, settings), prefix=API_PREFIX)
    app.include_router(ledger_router(node), prefix=API_PREFIX)
    app.include_router(stream_router(node, hub, settings), prefix=API_PREFIX)
    app.include_router(cluster_router(node), prefix=API_PREFIX)
    if identity is not None:
        app.include_router(identity_router(identity), prefix=API_PREFIX)
        app.state.polls = PollDesk(identity.ledger, identity)
        app.include_router(poll_router(app.state.polls), prefix=API_PREFIX)
        app.state.currency = CurrencyDesk(identity.ledger, node.chain.chain_id)
        app.include_router(currency_router(app.state.currency, identity), prefix=API_PREFIX)
        app.state.certificates = CertificateDesk(identity.ledger, node.chain.chain_id)
        app.include_router(certificate_router(app.state.certificates, identity), prefix=API_PREFIX)
        app.state.donations = DonationDesk(identity.ledger)
        app.include_router(donation_router(app.state.donations), prefix=API_PREFIX)
        app.state.works = WorksDesk(identity.ledger)
        app.include_router(works_router(app.state.works), prefix=API_PREFIX)
        app.state.vehicles = VehicleDesk(identity.ledger, node.chain.chain_id)
        app.include_router(vehicle_router(app.state.vehicles), prefix=API_PREFIX)
    app.include_router(ops_router(node, metrics))
    return app
