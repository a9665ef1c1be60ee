"""The site ``civic node run`` and ``civic demo`` serve: the JSON API with the portal on top.

The API never imports the portal (``api`` sits below ``web``), so the two are put together here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from civicledger.agency.desk import IdentityDesk
from civicledger.api.app import create_app
from civicledger.api.settings import ApiSettings
from civicledger.node.embedded import EmbeddedNode
from civicledger.web.currency import PAY_BODY_LIMIT, PAY_PATH
from civicledger.web.currency import section as currency_section
from civicledger.web.explorer import section as explorer_section
from civicledger.web.identity import VERIFY_BODY_LIMIT, VERIFY_PATH
from civicledger.web.identity import section as identity_section
from civicledger.web.polls import section as polls_section
from civicledger.web.portal import (
    STATIC_DIR,
    ExceptionHandler,
    Portal,
    default_http_handler,
    language_router,
    not_found_handler,
)
from civicledger.web.sections import PortalSection
from civicledger.web.verify import section as verify_section

__all__ = ["create_site", "install_portal"]


def install_portal(app: FastAPI, sections: Sequence[PortalSection] = ()) -> Portal:
    """Add the portal (explorer, verify page and ``sections``) to an app made by ``create_app``.

    The app must hold the running node as ``app.state.node``. When it also holds an identity
    desk (``app.state.identity``), the identity pages are added too, and with a poll desk
    (``app.state.polls``) the poll pages, and with a currency desk (``app.state.currency``) the
    currency pages, unless ``sections`` brings its own. Raises
    ``CatalogError`` if a section's messages, slug or prefix are inconsistent, before anything
    is served.
    """
    defaults = [explorer_section(), verify_section()]
    has_desk = getattr(app.state, "identity", None) is not None
    if has_desk and all(s.slug != "identity" for s in sections):
        defaults.append(identity_section())
    has_polls = getattr(app.state, "polls", None) is not None
    if has_polls and all(s.slug != "polls" for s in sections):
        defaults.append(polls_section())
    has_currency = getattr(app.state, "currency", None) is not None
    if has_currency and all(s.slug != "currency" for s in sections):
        defaults.append(currency_section())
    portal = Portal([*defaults, *sections])
    app.state.portal = portal
    app.mount("/static/portal", StaticFiles(directory=STATIC_DIR), name="portal-static")
    for section in portal.sections:
        if section.static_dir is not None:
            app.mount(
                f"/static/{section.slug}",
                StaticFiles(directory=section.static_dir),
                name=f"{section.slug}-static",
            )
    app.include_router(language_router())
    for section in portal.sections:
        app.include_router(section.router, prefix=section.url_prefix, include_in_schema=False)
    previous: ExceptionHandler = (
        app.exception_handlers.get(404)
        or app.exception_handlers.get(StarletteHTTPException)
        or default_http_handler
    )
    app.add_exception_handler(404, not_found_handler(previous))
    return portal


def create_site(
    node: EmbeddedNode,
    settings: ApiSettings | None = None,
    sections: Sequence[PortalSection] = (),
    identity: IdentityDesk | None = None,
) -> FastAPI:
    """The API of ``node`` with the portal (and any extra ``sections``) installed on it.

    With ``identity`` (the node's identity desk) the API's and the portal's identity pages
    are served too.
    """
    settings = settings or ApiSettings()
    if identity is not None:
        # The identity verify page takes photos of QR codes: the API's image limit, plus the
        # form's other fields.
        # So does the currency pay page (a photo of a merchant's payment QR).
        limits = {
            VERIFY_PATH: VERIFY_BODY_LIMIT,
            PAY_PATH: PAY_BODY_LIMIT,
            **settings.extra_path_limits,
        }
        settings = dataclasses.replace(settings, extra_path_limits=limits)
    app = create_app(node, settings, identity)
    install_portal(app, sections)
    return app
