"""The portal's pages over HTTP, without a browser: content, languages, escaping, 404s, headers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest
from portal_helpers import HOSTILE_LABEL, Site, html_lang, running_site

from civicledger.ledger.proofs import load_bundle, verify_inclusion_bundle
from civicledger.web import create_site

HTML = {"accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_site(tmp_path_factory.mktemp("pages") / "city") as running:
        yield running


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    """A fresh client per test, so no language cookie leaks from one test to the next."""
    with httpx.Client(base_url=site.url, headers=HTML) as c:
        yield c


def test_pages_speak_korean_by_default(client: httpx.Client, site: Site) -> None:
    tx_id = site.receipts["tally"].tx_id
    for path in ["/", "/blocks/1", f"/tx/{tx_id}", "/verify"]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert html_lang(page.text) == "ko", path
        assert "원장 탐색기" in page.text, path
        assert "Ledger explorer" not in page.text, path


def test_query_parameter_switches_to_english_and_is_remembered(client: httpx.Client) -> None:
    page = client.get("/", params={"lang": "en"})
    assert html_lang(page.text) == "en"
    assert "Latest blocks" in page.text
    assert "최근 블록" not in page.text
    assert page.cookies.get("lang") == "en"
    assert html_lang(client.get("/verify").text) == "en"


def test_unknown_language_falls_back_to_korean(client: httpx.Client) -> None:
    assert html_lang(client.get("/", params={"lang": "fr"}).text) == "ko"
    client.cookies.set("lang", "xx")
    assert html_lang(client.get("/").text) == "ko"


def test_switch_link_sets_the_cookie_and_returns_to_the_page(client: httpx.Client) -> None:
    page = client.get("/blocks/1")
    links = re.findall(r'href="(/lang/en\?next=[^"]+)"', page.text)
    assert links, "no switch link to English"
    answer = client.get(unescape(links[0]))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/blocks/1"
    assert answer.cookies.get("lang") == "en"
    back = client.get(answer.headers["location"])
    assert html_lang(back.text) == "en"
    assert "Block 1" in back.text


def test_switch_link_keeps_the_query_but_drops_lang(client: httpx.Client) -> None:
    page = client.get("/blocks/1", params={"offset": "0", "lang": "en"})
    links = re.findall(r'href="(/lang/ko\?next=[^"]+)"', page.text)
    answer = client.get(unescape(links[0]))
    assert answer.headers["location"] == "/blocks/1?offset=0"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"]
)
def test_switch_link_never_redirects_off_site(client: httpx.Client, target: str) -> None:
    answer = client.get("/lang/en", params={"next": target})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_explorer_lists_blocks_and_transactions(client: httpx.Client, site: Site) -> None:
    page = client.get("/").text
    height = site.node.chain.height
    assert f'<tbody id="latest-blocks" data-height="{height}"' in page
    for h in range(height + 1):
        assert f'<tr data-height="{h}">' in page
    for receipt in site.receipts.values():
        assert f'data-tx-id="{receipt.tx_id}"' in page
    rows = re.findall(r'<tr data-tx-id="([0-9a-f]{64})"', page)
    assert rows[0] == site.receipts["tally"].tx_id, "newest transaction first"
    assert "tally.add" in page
    assert "status-failed" in page


def test_block_page_shows_header_tree_head_and_transactions(
    client: httpx.Client, site: Site
) -> None:
    receipt = site.receipts["failed"]
    header = site.node.chain.block(receipt.height)
    assert header is not None
    head = site.node.chain.tree_head(receipt.height)
    page = client.get(f"/blocks/{receipt.height}").text
    assert header.header.hash().hex() in page
    assert header.signature in page
    assert head.signature in page
    assert head.tree_head.root_hash in page
    assert "서명된 트리 헤드" in page
    assert f'<tr data-tx-id="{receipt.tx_id}">' in page
    assert "already_anchored" in page


def test_tx_page_shows_body_receipt_and_proof(client: httpx.Client, site: Site) -> None:
    receipt = site.receipts["failed"]
    page = client.get(f"/tx/{receipt.tx_id}").text
    assert "영수증" in page
    assert "포함 증명" in page
    assert 'data-status="failed"' in page
    assert "already_anchored" in page
    assert f'href="/tx/{receipt.tx_id}/proof.json"' in page
    embedded = re.search(r'<script type="application/json" id="tx-proof">(.*?)</script>', page)
    assert embedded is not None
    bundle = load_bundle(embedded.group(1).encode())
    tx, proven = verify_inclusion_bundle(bundle, frozenset(site.city.genesis.producers))
    assert proven == receipt
    assert tx.tx_id_hex == receipt.tx_id


def test_proof_download_is_a_verifiable_file(client: httpx.Client, site: Site) -> None:
    receipt = site.receipts["tally"]
    answer = client.get(f"/tx/{receipt.tx_id}/proof.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    bundle = load_bundle(answer.content)
    _, proven = verify_inclusion_bundle(bundle, frozenset(site.city.genesis.producers))
    assert proven == receipt


def test_user_strings_are_escaped_everywhere(client: httpx.Client, site: Site) -> None:
    receipt = site.receipts["hostile"]
    for path in [f"/tx/{receipt.tx_id}", f"/blocks/{receipt.height}", "/"]:
        page = client.get(path).text
        assert "<script>alert" not in page, path
        assert "<img src=x" not in page, path
    page = client.get(f"/tx/{receipt.tx_id}").text
    shown = re.search(r'<pre class="json" id="tx-args">(.*?)</pre>', page, re.DOTALL)
    assert shown is not None
    assert "&lt;script&gt;" in shown.group(1)
    assert json.loads(unescape(shown.group(1)))["label"] == HOSTILE_LABEL, "shown exactly, as text"
    embedded = re.search(r'id="tx-proof">(.*?)</script>', page)
    assert embedded is not None
    assert "\\u003cscript\\u003e" in embedded.group(1)
    label = json.loads(embedded.group(1))["entry"]["tx"]["body"]["args"]["label"]
    assert label == HOSTILE_LABEL


def test_a_search_for_html_shows_it_as_text(client: httpx.Client) -> None:
    page = client.get("/search", params={"q": "<b>bold</b>"})
    assert page.status_code == 404
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert "<b>bold" not in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/blocks/999",
        "/blocks/-1",
        "/blocks/abc",
        "/blocks/01",
        "/tx/" + "0" * 64,
        "/tx/xyz",
        "/tx/" + "0" * 64 + "/proof.json",
    ],
)
def test_unknown_block_or_tx_is_a_404_page(client: httpx.Client, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "찾을 수 없습니다" in page.text


def test_unknown_path_is_a_page_for_browsers_and_a_problem_for_the_api(
    client: httpx.Client,
) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "찾을 수 없습니다" in page.text
    api = client.get("/api/v1/no-such-route")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["reason"] == "not_found"
    plain = client.get("/no/such/page", headers={"accept": "application/json"})
    assert plain.headers["content-type"] == "application/problem+json"


def test_search_goes_to_a_block_or_a_transaction(client: httpx.Client, site: Site) -> None:
    tx_id = site.receipts["tally"].tx_id
    assert client.get("/search", params={"q": " 2 "}).headers["location"] == "/blocks/2"
    assert client.get("/search", params={"q": tx_id.upper()}).headers["location"] == f"/tx/{tx_id}"


def test_pages_carry_a_strict_content_security_policy(client: httpx.Client, site: Site) -> None:
    for path in ["/", f"/tx/{site.receipts['tally'].tx_id}", "/verify", "/nope"]:
        policy = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in policy, path
        assert "unsafe-inline" not in policy, path


def test_pages_have_no_inline_scripts_or_styles(client: httpx.Client, site: Site) -> None:
    """The CSP would block them; JSON data blocks are the only scripts without a src."""
    for path in ["/", "/blocks/1", f"/tx/{site.receipts['tally'].tx_id}", "/verify"]:
        page = client.get(path).text
        for attrs in re.findall(r"<script([^>]*)>", page):
            assert 'type="application/json"' in attrs or "src=" in attrs, (path, attrs)
        assert " style=" not in page, path
        assert not re.search(r"\son[a-z]+=", page), path


def test_static_files_and_the_api_are_served_alongside(client: httpx.Client) -> None:
    script = client.get("/static/portal/verifier.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/api/v1/genesis").json()["chain_id"] == "testville"


def test_pages_are_not_in_the_openapi_document(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/genesis" in paths
    portal = {"/", "/blocks/{height}", "/tx/{tx_id}", "/tx/{tx_id}/proof.json", "/verify"}
    assert not portal & set(paths)
    assert not [p for p in paths if p.startswith(("/lang", "/search", "/static"))]


def test_links_stay_under_the_root_path_behind_a_proxy(site: Site) -> None:
    """Served at /city by a reverse proxy, every link, script and redirect keeps the prefix."""

    async def fetch() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=create_site(site.node), root_path="/city")
        async with httpx.AsyncClient(
            transport=transport, base_url="http://portal", headers=HTML
        ) as client:
            page = await client.get("/city/blocks/1")
            switch = await client.get("/city/lang/en", params={"next": "/blocks/1"})
            return page, switch

    page, switch = asyncio.run(fetch())
    assert page.status_code == 200
    targets = re.findall(r'(?:href|src)="(/[^"]*)"', page.text)
    assert targets
    assert [t for t in targets if not t.startswith("/city/")] == []
    assert '<body data-root="/city">' in page.text
    assert switch.headers["location"] == "/city/blocks/1"
    assert "Path=/city" in switch.headers["set-cookie"]
