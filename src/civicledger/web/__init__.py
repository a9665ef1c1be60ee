"""The web portal: server-rendered pages over the ledger, in Korean and English.

``create_site`` is what ``civic node run`` serves: the JSON API with the portal installed on it.
Later services add pages with a ``PortalSection`` (see docs/portal.md).
"""

from civicledger.web.i18n import LANGUAGES, load_messages
from civicledger.web.portal import render, render_not_found
from civicledger.web.sections import PortalSection
from civicledger.web.site import create_site, install_portal

__all__ = [
    "LANGUAGES",
    "PortalSection",
    "create_site",
    "install_portal",
    "load_messages",
    "render",
    "render_not_found",
]
