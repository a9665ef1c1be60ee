"""The ledger explorer: latest blocks and transactions (live), one block, one transaction.

Handlers are plain ``def``: they run in the threadpool, where ``Chain`` readers use one SQLite
connection per thread and see whole blocks only. Anything a reader typed into a URL is parsed
here with a strict pattern; what does not parse is a 404 page, never an error from deeper down.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from civicledger.ledger.block import SignedBlockHeader
from civicledger.ledger.proofs import InclusionBundle
from civicledger.node.chain import Chain, StoredTx
from civicledger.node.cluster.node import ClusterNode
from civicledger.node.embedded import EmbeddedNode
from civicledger.web.portal import SECURITY_HEADERS, render, render_not_found
from civicledger.web.sections import PortalSection

__all__ = [
    "AttestationPanel",
    "AttestationRow",
    "BlockRow",
    "TxRow",
    "block_attestations",
    "latest_blocks",
    "latest_txs",
    "proof_file_text",
    "section",
]

BLOCKS_SHOWN = 20
"""Blocks on the front page; the live list keeps this many too."""
TXS_SHOWN = 20
BLOCK_PAGE_TXS = 100
"""Transactions per page of a block (a block holds up to 2000)."""

_HEIGHT = re.compile(r"^(0|[1-9][0-9]{0,15})$")
_TX_ID = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class BlockRow:
    """A block in a list: what the live ``block`` event carries too."""

    height: int
    time_ms: int
    tx_count: int
    hash: str


@dataclass(frozen=True, slots=True)
class TxRow:
    """A transaction in a list: what the live event's ``txs`` entries carry, plus the block."""

    tx_id: str
    height: int
    signer: str
    contract: str
    method: str
    status: str


@dataclass(frozen=True, slots=True)
class AttestationRow:
    """One node's signed statement of a block's header, as this node received it."""

    node: str
    header_hash: str
    state_hash: str
    signature: str
    agrees: bool
    """Whether it attests the same header hash as this node's own block."""


@dataclass(frozen=True, slots=True)
class AttestationPanel:
    """The attestations of one block on a cluster node; ``final`` once ``quorum`` agree."""

    rows: list[AttestationRow]
    quorum: int
    agreeing: int
    final: bool


def block_attestations(node: object, signed: SignedBlockHeader) -> AttestationPanel | None:
    """The block's attestations when ``node`` is a cluster node; None on the embedded node."""
    if not isinstance(node, ClusterNode):
        return None
    own = signed.header.hash().hex()
    rows = [
        AttestationRow(
            node=a.attestation.node,
            header_hash=a.attestation.header_hash,
            state_hash=a.attestation.state_hash,
            signature=a.signature,
            agrees=a.attestation.header_hash == own,
        )
        for a in sorted(node.book.at(signed.header.height), key=lambda a: a.attestation.node)
    ]
    agreeing = len({r.node for r in rows if r.agrees})
    return AttestationPanel(rows, node.quorum, agreeing, node.is_final(signed.header.height))


def _chain(request: Request) -> Chain:
    return cast(EmbeddedNode, request.app.state.node).chain


def latest_blocks(chain: Chain, limit: int) -> list[BlockRow]:
    """The newest ``limit`` blocks, newest first."""
    rows: list[BlockRow] = []
    for height in range(chain.height, max(chain.height - limit, -1), -1):
        signed = chain.block(height)
        if signed is None:
            continue
        header = signed.header
        rows.append(BlockRow(height, header.time_ms, header.tx_count, header.hash().hex()))
    return rows


def _tx_row(stored: StoredTx) -> TxRow:
    body = stored.tx.body
    receipt = stored.receipt
    return TxRow(
        receipt.tx_id, receipt.height, body.signer, body.contract, body.method, receipt.status
    )


def latest_txs(chain: Chain, blocks: list[BlockRow], limit: int) -> list[TxRow]:
    """The newest ``limit`` transactions of ``blocks`` (newest first), last in block first."""
    rows: list[TxRow] = []
    for block in blocks:
        if len(rows) >= limit:
            break
        if block.tx_count:
            wanted = limit - len(rows)
            stored = chain.block_txs(block.height, max(block.tx_count - wanted, 0), wanted)
            rows.extend(_tx_row(s) for s in reversed(stored))
    return rows


def proof_file_text(bundle: InclusionBundle) -> str:
    """A proof file exactly as ``civic proof --out`` writes it."""
    return json.dumps(bundle.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def _parse_offset(raw: str | None) -> int:
    return int(raw) if raw is not None and _HEIGHT.match(raw) else 0


router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """Latest blocks and transactions; ``explorer.js`` keeps both lists live."""
    chain = _chain(request)
    blocks = latest_blocks(chain, BLOCKS_SHOWN)
    context: dict[str, Any] = {
        "blocks": blocks,
        "txs": latest_txs(chain, blocks, TXS_SHOWN),
        "height": blocks[0].height if blocks else 0,
        "blocks_shown": BLOCKS_SHOWN,
        "txs_shown": TXS_SHOWN,
    }
    return render(request, "explorer/index.html", context)


@router.get("/blocks/{height}", response_class=HTMLResponse)
def block_page(request: Request, height: str) -> HTMLResponse:
    """A block's header, signature, tree head and a page of its transactions."""
    chain = _chain(request)
    signed = chain.block(int(height)) if _HEIGHT.match(height) else None
    if signed is None:
        return render_not_found(request, f"/blocks/{height}")
    header = signed.header
    offset = _parse_offset(request.query_params.get("offset"))
    stored = (
        chain.block_txs(header.height, offset, BLOCK_PAGE_TXS) if offset < header.tx_count else []
    )
    context: dict[str, Any] = {
        "signed": signed,
        "header": header,
        "block_hash": header.hash().hex(),
        "tree_head": chain.tree_head(header.height),
        "txs": stored,
        "offset": offset,
        "page_size": BLOCK_PAGE_TXS,
        "is_latest": header.height >= chain.height,
        "attestations": block_attestations(request.app.state.node, signed),
    }
    return render(request, "explorer/block.html", context)


def _stored(request: Request, tx_id: str) -> StoredTx | None:
    if not _TX_ID.match(tx_id):
        return None
    return _chain(request).tx(bytes.fromhex(tx_id))


@router.get("/tx/{tx_id}", response_class=HTMLResponse)
def tx_page(request: Request, tx_id: str) -> HTMLResponse:
    """A transaction, its receipt and its inclusion proof, with in-browser verification."""
    stored = _stored(request, tx_id)
    if stored is None:
        return render_not_found(request, f"/tx/{tx_id}")
    bundle = _chain(request).inclusion_proof(stored.tx.tx_id)
    context: dict[str, Any] = {
        "tx_id": stored.tx.tx_id_hex,
        "body": stored.tx.body,
        "signature": stored.tx.to_json()["signature"],
        "receipt": stored.receipt,
        "proof": bundle.model_dump(mode="json"),
        "proof_text": proof_file_text(bundle),
    }
    return render(request, "explorer/tx.html", context)


@router.get("/tx/{tx_id}/proof.json")
def tx_proof_file(request: Request, tx_id: str) -> Response:
    """The inclusion proof as a file to keep, against the latest signed tree head."""
    stored = _stored(request, tx_id)
    if stored is None:
        return render_not_found(request, f"/tx/{tx_id}/proof.json")
    bundle = _chain(request).inclusion_proof(stored.tx.tx_id)
    name = f"civicledger-{stored.tx.tx_id_hex[:16]}.proof.json"
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{name}"',
    }
    return Response(proof_file_text(bundle), media_type="application/json", headers=headers)


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, q: str = "") -> Response:
    """Go to a block by height or a transaction by id."""
    query = q.strip()
    root = request.scope.get("root_path", "")
    if _HEIGHT.match(query):
        return RedirectResponse(f"{root}/blocks/{query}", status_code=303)
    if _TX_ID.match(query):
        return RedirectResponse(f"{root}/tx/{query.lower()}", status_code=303)
    return render_not_found(request, query)


def section() -> PortalSection:
    """The explorer, at the site root."""
    return PortalSection(
        slug="explorer", nav_key="explorer.nav", router=router, prefix="", nav_order=0
    )
