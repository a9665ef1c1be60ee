"""The built-in notary contract: an authorised agency anchors a document's hash with a label.

The ledger keeps only the SHA-256 of the document, never the document; anyone holding the
document can later prove it existed, unaltered, at the anchoring block's time.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from civicledger.contracts.base import (
    Args,
    Contract,
    QueryContext,
    TxContext,
    has_role,
    query,
    transaction,
)

NOTARY_ROLE = "notary"


class Anchor(Args):
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the document, lowercase hex."""
    label: str = Field(default="", max_length=200)
    """A short public description; must not contain personal data."""


class Lookup(Args):
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class Notary(Contract):
    name = "notary"

    @transaction(Anchor, policy=has_role(NOTARY_ROLE))
    def anchor(self, ctx: TxContext, args: Anchor) -> dict[str, Any]:
        """Anchor a document hash; a hash can be anchored once."""
        existing = ctx.get(f"doc/{args.digest}")
        if existing is not None:
            ctx.fail("already_anchored", f"anchored at height {existing['height']}")
        record = {
            "agency": ctx.authority.agency_of(ctx.signer),
            "label": args.label,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(f"doc/{args.digest}", record)
        ctx.emit("anchored", digest=args.digest, agency=record["agency"])
        return record

    @query(Lookup)
    def lookup(self, ctx: QueryContext, args: Lookup) -> Any:
        """When and by whom a digest was anchored, or null."""
        return ctx.get(f"doc/{args.digest}")
