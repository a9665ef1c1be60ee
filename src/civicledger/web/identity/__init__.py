"""The portal's identity pages (``/identity``): issuer grants, asking for a presentation,
verifying one (pasted or a photo of its QR code), and, for an agency's staff, issuing and
revoking. See ``pages`` for the invariants and docs/portal.md for the routes.
"""

from civicledger.web.identity.pages import (
    CLAIM_FIELDS,
    EXPLAINED_REASONS,
    VERIFY_BODY_LIMIT,
    VERIFY_PATH,
    ClaimField,
    section,
)

__all__ = [
    "CLAIM_FIELDS",
    "EXPLAINED_REASONS",
    "VERIFY_BODY_LIMIT",
    "VERIFY_PATH",
    "ClaimField",
    "section",
]
