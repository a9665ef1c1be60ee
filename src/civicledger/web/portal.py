"""The portal's rendering: templates, languages, security headers, the language switch and 404s.

Pages are rendered on the server with Jinja2 (autoescaped, strict undefined) and work without
JavaScript; scripts only add live updates and in-browser proof verification. Every page gets
a strict Content-Security-Policy (scripts and styles from this origin only, no inline code), so
a string that slipped past escaping still could not run.

The portal leaves the JSON API alone: its 404 page is shown only to browsers asking for HTML
outside ``/api/``; everything else still gets the API's problem+json.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import civicledger
from civicledger.web import filters
from civicledger.web.i18n import (
    DEFAULT_LANGUAGE,
    LANG_COOKIE,
    LANGUAGES,
    Catalog,
    CatalogError,
    Messages,
    load_messages,
    pick_language,
)
from civicledger.web.sections import PortalSection

__all__ = [
    "SECURITY_HEADERS",
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "ExceptionHandler",
    "Portal",
    "default_http_handler",
    "language_router",
    "not_found_handler",
    "portal_of",
    "render",
    "render_not_found",
    "route_path",
]

_HERE = Path(__file__).parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"

_COOKIE_MAX_AGE_S = 365 * 24 * 3600
_SAFE_NEXT = re.compile(r"^/(?![/\\])[^\\\s]*$")

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
    "Vary": "Cookie",
}
"""Headers on every page: no inline script can run, and pages are not framed or cached stale."""

LANGUAGE_NAMES: Mapping[str, str] = {"ko": "한국어", "en": "English"}
"""Each language's name in itself, as the switch shows it."""


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    active: bool


class Portal:
    """The installed portal: its sections, message catalog and template environment."""

    def __init__(self, sections: Sequence[PortalSection]) -> None:
        slugs = [s.slug for s in sections]
        if len(set(slugs)) != len(slugs):
            raise CatalogError(f"two sections share a slug: {slugs}")
        prefixes = [s.url_prefix for s in sections]
        if len(set(prefixes)) != len(prefixes):
            raise CatalogError(f"two sections share a URL prefix: {prefixes}")
        self.sections = tuple(sorted(sections, key=lambda s: (s.nav_order, s.slug)))
        parts: dict[str, Messages] = {"": load_messages("civicledger.web")}
        parts.update({s.slug: s.messages for s in sections if s.messages})
        self.catalog = Catalog(parts)
        for section in sections:
            if section.nav_key not in self.catalog:
                raise CatalogError(f"section {section.slug!r}: no message {section.nav_key!r}")
        self.templates = Jinja2Templates(env=self._environment())

    def _environment(self) -> jinja2.Environment:
        prefixed: dict[str, jinja2.BaseLoader] = {
            s.slug: jinja2.FileSystemLoader(s.templates_dir)
            for s in self.sections
            if s.templates_dir is not None
        }
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(TEMPLATES_DIR), jinja2.PrefixLoader(prefixed)]
            ),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(filters.FILTERS)
        env.tests.update(filters.TESTS)
        return env

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any] | None = None,
        status_code: int = 200,
    ) -> HTMLResponse:
        """Render template ``name`` in the reader's language, with the portal's headers."""
        query_lang = request.query_params.get("lang")
        cookie_lang = request.cookies.get(LANG_COOKIE)
        lang = pick_language(query_lang, cookie_lang)
        root = request.scope.get("root_path", "")
        node = request.app.state.node
        page = {
            **self._page_context(request, lang, root),
            "city": node.chain.genesis.city,
            "chain_id": node.chain.chain_id,
            **(context or {}),
        }
        response = self.templates.TemplateResponse(
            request, name, page, status_code=status_code, headers=dict(SECURITY_HEADERS)
        )
        if query_lang in LANGUAGES and query_lang != cookie_lang:
            _set_language_cookie(response, query_lang, root)
        return response

    def _page_context(self, request: Request, lang: str, root: str) -> dict[str, Any]:
        path = route_path(request)
        here = _without_lang(request)

        def t(key: str, **params: object) -> str:
            return self.catalog.message(lang, key, **params)

        def href(target: str) -> str:
            return root + target

        def static(file: str) -> str:
            return f"{root}/static/portal/{file}?v={civicledger.__version__}"

        active = _active_section(self.sections, path)
        nav = [NavItem(href(s.home), t(s.nav_key), s is active) for s in self.sections]
        switch = [
            {
                "code": code,
                "name": LANGUAGE_NAMES[code],
                "href": href(f"/lang/{code}?" + urlencode({"next": here})),
                "current": code == lang,
            }
            for code in LANGUAGES
        ]
        return {
            "lang": lang,
            "t": t,
            "href": href,
            "static": static,
            "root": root,
            "nav": nav,
            "languages": switch,
            "browser_messages": self.catalog.browser_messages(lang),
        }


def _active_section(sections: Sequence[PortalSection], path: str) -> PortalSection | None:
    """The section whose prefix matches ``path`` longest; the root section matches any path."""
    matching = [
        s
        for s in sections
        if not s.url_prefix or path == s.url_prefix or path.startswith(s.url_prefix + "/")
    ]
    return max(matching, key=lambda s: len(s.url_prefix), default=None)


def route_path(request: Request) -> str:
    """The request's path below the site's root path (``/city/blocks/1`` -> ``/blocks/1``)."""
    root = request.scope.get("root_path", "")
    path = request.url.path
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def _without_lang(request: Request) -> str:
    """The current path and query without ``lang``, so a switch link is not overridden by it."""
    path = route_path(request)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return path + ("?" + urlencode(query) if query else "")


def _set_language_cookie(response: Response, lang: str, root: str) -> None:
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=_COOKIE_MAX_AGE_S,
        path=root or "/",
        httponly=True,
        samesite="lax",
    )


def portal_of(request: Request) -> Portal:
    """The portal installed on the request's app."""
    try:
        portal = request.app.state.portal
    except AttributeError as e:
        raise RuntimeError("the portal is not installed on this app; call install_portal") from e
    return cast(Portal, portal)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a portal page; what a section's route handlers call."""
    return portal_of(request).render(request, name, context, status_code)


def render_not_found(request: Request, what: str) -> HTMLResponse:
    """The 404 page; ``what`` (user input, escaped) says what was not found."""
    return render(request, "error.html", {"status": 404, "what": what}, status_code=404)


def language_router() -> APIRouter:
    """``/lang/{code}?next=PATH``: the switch link, which works without JavaScript."""
    router = APIRouter(include_in_schema=False)

    @router.get("/lang/{code}")
    def switch_language(request: Request, code: str, next: str = "/") -> Response:
        """Remember the reader's language in a cookie and go back to the page they were on."""
        root = request.scope.get("root_path", "")
        target = next if _SAFE_NEXT.match(next) else "/"
        response = RedirectResponse(root + target, status_code=303)
        _set_language_cookie(response, code if code in LANGUAGES else DEFAULT_LANGUAGE, root)
        return response

    return router


ExceptionHandler = Callable[[Request, Exception], Any]


def not_found_handler(previous: ExceptionHandler) -> ExceptionHandler:
    """A 404 handler that shows the portal's page to browsers and defers to the API otherwise."""

    async def handle(request: Request, exc: Exception) -> Response:
        path = route_path(request)
        wants_html = "text/html" in request.headers.get("accept", "")
        if wants_html and request.method in {"GET", "HEAD"} and not path.startswith("/api/"):
            return await run_in_threadpool(render_not_found, request, path)
        if inspect.iscoroutinefunction(previous):
            response: Response = await previous(request, exc)
        else:
            response = await run_in_threadpool(previous, request, exc)
        return response

    return handle


def default_http_handler(request: Request, exc: Exception) -> Response:
    """Starlette's plain answer, for an app that has no HTTP error handler of its own."""
    assert isinstance(exc, StarletteHTTPException)
    return Response(str(exc.detail), status_code=exc.status_code)
