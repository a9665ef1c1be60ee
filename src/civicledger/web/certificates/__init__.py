"""The portal's certificate pages (``/certificates``): verify a certificate PDF or QR code
(three verdicts, separately) and the holder's "who verified it" log. See ``pages``."""

from civicledger.web.certificates.pages import (
    EXPLAINED_REASONS,
    VERIFY_BODY_LIMIT,
    VERIFY_PATH,
    section,
)

__all__ = ["EXPLAINED_REASONS", "VERIFY_BODY_LIMIT", "VERIFY_PATH", "section"]
