"""A later service adds its pages with one PortalSection; bad sections fail when the app is built.

The section here is the worked example of docs/portal.md: a "notices" page showing the tally.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from portal_helpers import html_lang

from civicledger.api.server import BackgroundServer
from civicledger.node.embedded import EmbeddedNode
from civicledger.web import PortalSection, create_site, render
from civicledger.web.i18n import CatalogError
from conftest import City

NOTICES_TEMPLATE = """{% extends "base.html" %}
{% block title %}{{ t("notices.title") }}{% endblock %}
{% block head %}
<link rel="stylesheet" href="{{ href('/static/notices/notices.css') }}">
{% endblock %}
{% block content %}
<h1>{{ t("notices.title") }}</h1>
<p id="total">{{ t("notices.total", total=total) }}</p>
<p id="note">{{ note }}</p>
{% endblock %}
"""

MESSAGES = {
    "ko": {"notices.nav": "공지", "notices.title": "시 공지", "notices.total": "합계 {total}"},
    "en": {
        "notices.nav": "Notices",
        "notices.title": "City notices",
        "notices.total": "Total {total}",
    },
}

router = APIRouter()


@router.get("", response_class=HTMLResponse)
def notices(request: Request) -> HTMLResponse:
    node = cast(EmbeddedNode, request.app.state.node)
    total = node.chain.query("tally", "total", {})
    return render(request, "notices/index.html", {"total": total, "note": "<i>as text</i>"})


def notices_section(root: Path, **overrides: object) -> PortalSection:
    templates = root / "templates"
    static = root / "static"
    templates.mkdir(parents=True, exist_ok=True)
    static.mkdir(parents=True, exist_ok=True)
    (templates / "index.html").write_text(NOTICES_TEMPLATE, encoding="utf-8")
    (static / "notices.css").write_text("#total { font-weight: bold; }\n", encoding="utf-8")
    options: dict[str, object] = {
        "slug": "notices",
        "nav_key": "notices.nav",
        "router": router,
        "templates_dir": templates,
        "static_dir": static,
        "messages": MESSAGES,
        "nav_order": 50,
        **overrides,
    }
    return PortalSection(**options)  # type: ignore[arg-type]


@pytest.fixture
def served(city: City, tmp_path: Path) -> Iterator[tuple[EmbeddedNode, httpx.Client]]:
    with city.open_node() as node:
        node.submit(city.tx(city.outsider, "tally", "add", {"amount": 5}, nonce=1))
        app = create_site(node, sections=[notices_section(tmp_path / "notices")])
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
            yield node, client


def test_a_section_page_renders_in_both_languages(
    served: tuple[EmbeddedNode, httpx.Client],
) -> None:
    _, client = served
    page = client.get("/notices")
    assert page.status_code == 200
    assert html_lang(page.text) == "ko"
    assert '<p id="total">합계 5</p>' in page.text
    assert "&lt;i&gt;as text&lt;/i&gt;" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    english = client.get("/notices", params={"lang": "en"})
    assert '<p id="total">Total 5</p>' in english.text


def test_a_section_gets_a_navigation_link_in_its_order(
    served: tuple[EmbeddedNode, httpx.Client],
) -> None:
    _, client = served
    page = client.get("/notices", params={"lang": "en"}).text
    nav = page[page.index('<nav class="site-nav"') : page.index("</nav>")]
    labels = [nav.index(label) for label in ("Ledger explorer", "Verify a proof", "Notices")]
    assert labels == sorted(labels)
    assert '<a href="/notices" aria-current="page">Notices</a>' in nav
    home = client.get("/", params={"lang": "en"}).text
    assert '<a href="/" aria-current="page">Ledger explorer</a>' in home
    assert '<a href="/notices">Notices</a>' in home


def test_a_section_serves_its_static_files(served: tuple[EmbeddedNode, httpx.Client]) -> None:
    _, client = served
    css = client.get("/static/notices/notices.css")
    assert css.status_code == 200
    assert "#total" in css.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"slug": "api"}, "reserved"),
        ({"slug": "static"}, "reserved"),
        ({"slug": "Notices"}, "invalid"),
        ({"prefix": "/notices/"}, "invalid prefix"),
        ({"prefix": "notices"}, "invalid prefix"),
        ({"templates_dir": Path("/nonexistent/templates")}, "not a directory"),
    ],
)
def test_bad_sections_cannot_be_made(
    tmp_path: Path, overrides: dict[str, object], error: str
) -> None:
    with pytest.raises(CatalogError, match=error):
        notices_section(tmp_path, **overrides)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"nav_key": "notices.missing"}, "no message"),
        ({"messages": {"ko": MESSAGES["ko"]}}, "exactly"),
        ({"messages": {"ko": MESSAGES["ko"], "en": {"notices.nav": "Notices"}}}, "differ"),
        ({"prefix": "/verify"}, "share a URL prefix"),
        ({"slug": "verify", "messages": {}, "nav_key": "verify.nav"}, "share a slug"),
    ],
)
def test_inconsistent_sections_fail_when_the_site_is_built(
    node: EmbeddedNode, tmp_path: Path, overrides: dict[str, object], error: str
) -> None:
    section = notices_section(tmp_path, **overrides)
    with pytest.raises(CatalogError, match=error):
        create_site(node, sections=[section])
