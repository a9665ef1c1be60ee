"""The site ``civic node run`` and ``civic demo`` serve: the JSON API with the portal on top.

The API never imports the portal (``api`` sits below ``web``), so the two are put together here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from civicledger.agency.desk import IdentityDesk
from civicledger.api.app import create_app
from civicledger.api.settings import ApiSettings
from civicledger.node.protocol import Node
from civicledger.web.certificates import VERIFY_BODY_LIMIT as CERTIFICATE_BODY_LIMIT
from civicledger.web.certificates import VERIFY_PATH as CERTIFICATE_PATH
from civicledger.web.certificates import section as certificates_section
from civicledger.web.currency import PAY_BODY_LIMIT, PAY_PATH
from civicledger.web.currency import section as currency_section
from civicledger.web.donations import section as donations_section
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
from civicledger.web.vehicles import section as vehicles_section
from civicledger.web.verify import section as verify_section
from civicledger.web.works import section as works_section

__all__ = ["create_site", "install_portal"]

_DESK_SECTIONS: tuple[tuple[str, Callable[[], PortalSection]], ...] = (
    ("identity", identity_section),
    ("polls", polls_section),
    ("currency", currency_section),
    ("certificates", certificates_section),
    ("vehicles", vehicles_section),
    ("donations", donations_section),
    ("works", works_section),
)
"""Each service's section: its slug is also the ``app.state`` attribute of its desk."""


def install_portal(app: FastAPI, sections: Sequence[PortalSection] = ()) -> Portal:
    """Add the portal (explorer, verify page and ``sections``) to an app made by ``create_app``.

    The app must hold the running node as ``app.state.node``. For each service desk it also
    holds (``app.state.identity``, ``.polls``, ``.currency``, ``.certificates``, ``.vehicles``,
    ``.donations``, ``.works``: see ``create_app``) that service's pages are added too, unless
    ``sections`` brings a section of the same slug. Raises
    ``CatalogError`` if a section's messages, slug or prefix are inconsistent, before anything
    is served.
    """
    defaults = [explorer_section(), verify_section()]
    given = {s.slug for s in sections}
    for slug, make_section in _DESK_SECTIONS:
        if getattr(app.state, slug, None) is not None and slug not in given:
            defaults.append(make_section())
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
    node: Node,
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
            CERTIFICATE_PATH: CERTIFICATE_BODY_LIMIT,
            **settings.extra_path_limits,
        }
        settings = dataclasses.replace(settings, extra_path_limits=limits)
    app = create_app(node, settings, identity)
    install_portal(app, sections)
    return app
