"""Typed quantities used across the ledger, so a height is never confused with a nonce."""

from __future__ import annotations

from typing import NewType

Height = NewType("Height", int)
Nonce = NewType("Nonce", int)
TimeMs = NewType("TimeMs", int)
"""Milliseconds since the Unix epoch; inside contracts only ever the block's time."""
Did = NewType("Did", str)
