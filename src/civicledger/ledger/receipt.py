"""Receipts: what happened to a committed transaction, and the events it emitted."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from civicledger.crypto.encoding import canonical_json


class Event(BaseModel):
    """A fact a contract announces; subscribers (dashboards, SSE) read these."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    contract: str
    name: str
    data: dict[str, Any]


class Receipt(BaseModel):
    """Outcome of one committed transaction.

    A ``failed`` receipt means the contract refused it: no contract state changed, but the
    signer's nonce is consumed so the same transaction can never run later.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    tx_id: str
    height: int = Field(ge=1)
    index: int = Field(ge=0)
    """Position in the block."""
    leaf_index: int = Field(ge=0)
    """Position in the transparency log."""
    status: Literal["ok", "failed"]
    reason: str | None = None
    message: str | None = None
    events: tuple[Event, ...] = ()
    result: Any = None
    """What the method returned, if anything (JSON)."""

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json"))

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def log_leaf_bytes(envelope_bytes: bytes, receipt_bytes: bytes) -> bytes:
    """The transparency-log leaf of a committed transaction: ``{"receipt": r, "tx": t}``.

    Both parts are already RFC 8785 and the keys are in order, so concatenation is canonical.
    Committing the receipt in the leaf lets a citizen prove the outcome, not only the request.
    """
    return b'{"receipt":' + receipt_bytes + b',"tx":' + envelope_bytes + b"}"
