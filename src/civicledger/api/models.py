"""Response models: they document the API in OpenAPI and define its JSON shapes.

Ledger objects (headers, tree heads, receipts, genesis) are the ledger's own pydantic models,
so the API shows exactly what is signed and hashed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from civicledger.ledger.block import SignedBlockHeader, SignedTreeHead
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import TxBody

TX_ID_PATTERN = r"^[0-9a-f]{64}$"
MAX_HEIGHT = 2**53 - 1


class TxEnvelope(BaseModel):
    """A signed transaction as sent and stored."""

    body: TxBody
    signature: str = Field(description="base64url Ed25519 signature, no padding")


class Submitted(BaseModel):
    tx_id: str
    receipt: Receipt


class Pending(BaseModel):
    tx_id: str
    status: Literal["pending"]


class BatchItem(BaseModel):
    """What became of one line of a batch, in the order sent."""

    index: int
    status: Literal["ok", "failed", "rejected", "pending"]
    """``pending``: admitted, but its block was not durable within the wait limit."""
    receipt: Receipt | None = None
    reason: str | None = None
    detail: str | None = None


class BatchResult(BaseModel):
    results: list[BatchItem]


class BatchAccepted(BaseModel):
    accepted: int
    """Lines handed to the node; each is checked, then committed or rejected, in order."""


class TxRecord(BaseModel):
    """A committed transaction and its receipt (the same object as its log leaf)."""

    receipt: Receipt
    tx: TxEnvelope


class BlockList(BaseModel):
    blocks: list[SignedBlockHeader]
    next_before: int | None = Field(description="pass as `before` for the next (older) page")


class BlockDetail(BaseModel):
    header: SignedBlockHeader
    tree_head: SignedTreeHead
    txs: list[TxRecord]
    offset: int
    limit: int


class QueryResult(BaseModel):
    height: int = Field(description="the block the state was read at")
    result: Any


class NonceInfo(BaseModel):
    signer: str
    last_nonce: int
    next_nonce: int


class Health(BaseModel):
    status: Literal["ok"]
    chain_id: str
    height: int
    mempool: int


def submit_request_schema() -> dict[str, Any]:
    """The inline OpenAPI schema of ``POST /tx``'s body (read raw, so FastAPI cannot infer it)."""
    return {
        "type": "object",
        "required": ["body", "signature"],
        "additionalProperties": False,
        "properties": {
            "body": TxBody.model_json_schema(),
            "signature": {"type": "string", "description": "base64url Ed25519 signature"},
        },
    }
