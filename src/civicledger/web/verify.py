"""The verify page: anyone pastes or uploads a proof and their own browser checks it.

The server only sends the page and, if the reader wants it, the genesis document; the proof
itself never leaves the browser (``static/verify.js`` reads files with FileReader and checks
them with ``static/verifier.js``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from civicledger.web.portal import render
from civicledger.web.sections import PortalSection

__all__ = ["section"]

router = APIRouter()


@router.get("", response_class=HTMLResponse)
def verify_page(request: Request) -> HTMLResponse:
    """The verifier; ``?tx=ID`` preloads that transaction's proof from the API."""
    return render(request, "verify/index.html")


def section() -> PortalSection:
    return PortalSection(slug="verify", nav_key="verify.nav", router=router, nav_order=10)
