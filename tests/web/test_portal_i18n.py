"""Message catalogs: complete in every language, consistent placeholders, bad ones refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from civicledger.web.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    Catalog,
    CatalogError,
    load_messages,
    pick_language,
    placeholders,
)

WEB = Path(__file__).parents[2] / "src/civicledger/web"


def test_korean_is_the_default_and_english_the_other() -> None:
    assert DEFAULT_LANGUAGE == "ko"
    assert set(LANGUAGES) == {"ko", "en"}


def test_both_catalogs_have_the_same_keys_and_placeholders() -> None:
    messages = load_messages("civicledger.web")
    assert messages["ko"].keys() == messages["en"].keys()
    for key, text in messages["ko"].items():
        assert placeholders(text) == placeholders(messages["en"][key]), key
        assert text.strip(), key
        assert messages["en"][key].strip(), key


def test_korean_and_english_differ_where_they_should() -> None:
    """A copied-over English string in the Korean catalog is a missed translation."""
    messages = load_messages("civicledger.web")
    hangul = re.compile(r"[\uac00-\ud7a3]")
    untranslated = [k for k, v in messages["ko"].items() if not hangul.search(v)]
    assert untranslated == ["verify.paste_placeholder"]
    assert not [k for k, v in messages["en"].items() if hangul.search(v)]


def test_every_key_used_by_templates_and_scripts_exists() -> None:
    keys = Catalog({"": load_messages("civicledger.web")}).keys()
    used: set[str] = set()
    for template in (WEB / "templates").rglob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", template.read_text()))
    for script in (WEB / "static").glob("*.js"):
        text = script.read_text()
        used |= set(re.findall(r"""["'](js\.[a-z0-9_.]+)["']""", text))
    assert used, "found no message keys at all"
    prefixes = {k for k in used if k.endswith(".")}
    assert prefixes == {"status."}
    dynamic = {
        "status.ok",
        "status.failed",
        "js.status.ok",
        "js.status.failed",
        "js.explorer.live_on",
        "js.explorer.live_off",
        "js.explorer.live_reconnecting",
        "js.verify.which.tree_head",
        "js.verify.which.old_head",
        "js.verify.which.new_head",
        "js.verify.trust_server",
        "js.verify.trust_file",
    }
    script = (WEB / "static/verify.js").read_text()
    show_valid = script[script.index("function showValid") : script.index("function showProblem")]
    facts = re.findall(r'\[\s*"([a-z_]+)",', show_valid)
    assert "tx_id" in facts
    dynamic |= {f"js.fact.{fact}" for fact in facts}
    assert sorted((used - prefixes | dynamic) - keys) == []


def test_every_check_a_script_can_report_has_a_name() -> None:
    keys = Catalog({"": load_messages("civicledger.web")}).keys()
    checks = set()
    for script in (WEB / "static").glob("*.js"):
        checks |= set(re.findall(r'new VerifyError\("([a-z_]+)"', script.read_text()))
        checks |= set(re.findall(r'VerifyError\(\s*"([a-z_]+)"', script.read_text()))
    assert {"tree_head_signer", "inclusion", "receipt", "consistency"} <= checks
    assert sorted(c for c in checks if f"js.verify.check.{c}" not in keys) == []


def test_browser_gets_only_script_messages() -> None:
    catalog = Catalog({"": load_messages("civicledger.web")})
    sent = catalog.browser_messages("en")
    assert sent["js.verify.valid"] == "Valid proof"
    assert all("js" in key.split(".") for key in sent)
    assert "explorer.title" not in sent


def test_message_fills_placeholders_and_refuses_gaps() -> None:
    catalog = Catalog({"": load_messages("civicledger.web")})
    assert catalog.message("en", "block.title", height=7) == "Block 7"
    assert catalog.message("ko", "block.title", height=7) == "블록 7"
    with pytest.raises(CatalogError, match="needs the parameter"):
        catalog.message("en", "block.title")
    with pytest.raises(CatalogError, match="no message"):
        catalog.message("en", "block.no_such_key")


@pytest.mark.parametrize(
    ("query", "cookie", "expected"),
    [
        (None, None, "ko"),
        ("en", None, "en"),
        (None, "en", "en"),
        ("ko", "en", "ko"),
        ("fr", "en", "en"),
        ("EN", None, "ko"),
        ("", "", "ko"),
    ],
)
def test_pick_language(query: str | None, cookie: str | None, expected: str) -> None:
    assert pick_language(query, cookie) == expected


GOOD = {"ko": {"notices.nav": "공지"}, "en": {"notices.nav": "Notices"}}


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ({"ko": GOOD["ko"]}, "exactly"),
        ({**GOOD, "fr": {"notices.nav": "Avis"}}, "exactly"),
        ({"ko": GOOD["ko"], "en": {}}, "differ"),
        ({"ko": {"other.nav": "x"}, "en": {"other.nav": "x"}}, "only define keys"),
        ({"ko": {"notices": "x"}, "en": {"notices": "x"}}, "bad message key"),
        ({"ko": {"notices.n": "{count}건"}, "en": {"notices.n": "{total} items"}}, "placeholders"),
    ],
)
def test_bad_section_catalogs_are_refused(messages: dict[str, dict[str, str]], error: str) -> None:
    core = load_messages("civicledger.web")
    assert Catalog({"": core, "notices": GOOD}).message("ko", "notices.nav") == "공지"
    with pytest.raises(CatalogError, match=error):
        Catalog({"": core, "notices": messages})


def test_a_section_cannot_overwrite_a_core_message() -> None:
    core = load_messages("civicledger.web")
    widened = {lang: {**core[lang], "notices.nav": "core"} for lang in LANGUAGES}
    with pytest.raises(CatalogError, match="redefines"):
        Catalog({"": widened, "notices": GOOD})


def test_catalog_files_are_plain_string_maps() -> None:
    for lang in LANGUAGES:
        data = json.loads((WEB / "messages" / f"{lang}.json").read_text(encoding="utf-8"))
        assert all(isinstance(v, str) for v in data.values())
