"""Limits and timeouts of the HTTP API, in one place so operators can see and change them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiSettings:
    max_body_bytes: int = 64 * 1024
    """Bodies above this are refused with 413 before being read (a transaction is <= 32 KiB)."""
    max_batch_body_bytes: int = 8 * 1024 * 1024
    """The limit for ``POST /txs`` (NDJSON batches), instead of ``max_body_bytes``."""
    max_batch_txs: int = 2000
    """Transactions in one batch: one block's worth."""
    body_read_timeout_s: float = 10.0
    """A client must deliver each chunk of its body within this, or get 408."""
    wait_timeout_s: float = 10.0
    """``POST /tx?wait=true`` answers 202 (pending) if its block takes longer than this."""
    sse_queue_size: int = 256
    """Messages buffered per live-event subscriber; a subscriber that falls further behind is
    disconnected (it resumes with Last-Event-ID) so it can never slow the node."""
    sse_replay_blocks: int = 200
    """How many missed blocks a reconnecting subscriber is sent from the ledger."""
    sse_ping_s: float = 15.0
    rate_window_s: float = 10.0
    """Window of the tx/s gauge."""
    extra_path_limits: Mapping[str, int] = field(default_factory=dict)
    """Body limits for more exact paths (``{"/identity/verify": ...}``), e.g. for pages the
    portal adds that take uploads; the API's own path limits win where both name a path."""
