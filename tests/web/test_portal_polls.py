"""The portal's poll pages over a real served city with an identity desk (and so a poll desk).

City hall holds the ``poll_officer`` role and is the polls' registrar; voters are registered
directly with ``polls.register_voter`` signed by city hall (eligibility through presentations is
tested with the registrar). One open poll has votes from two districts in separate blocks; one
secret poll is still in its key ceremony. Pages render in Korean and English; the open poll's
tally is shown, the secret poll's is not; the chart has one point per series entry.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from portal_helpers import html_lang
from test_portal_identity import ServedCity, served_identity_city

from civicledger.agency.ledger import NodeLedger
from civicledger.api.server import BackgroundServer
from civicledger.crypto.encoding import sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.services.identity.credentials import CREDENTIAL_TYPES
from civicledger.web import create_site
from civicledger.web.i18n import Catalog, load_messages
from civicledger.web.polls import CHART_SIZE, turnout_chart
from civicledger.web.polls import section as polls_section
from conftest import city_key

OPEN_POLL = "park-2025"
SECRET_POLL = "budget-2025"
REGISTRAR = "city-hall"
VOTERS = {"ana": "riverside", "bo": "riverside", "cy": "hillside", "dee": "hillside"}
"""Registered voters of the open poll and their districts."""
VOTES = {"ana": [0], "bo": [1], "cy": [0]}
"""Who voted for which option in the module's city; ``dee`` has not voted yet."""


def text(label: str, korean: str) -> dict[str, str]:
    return {"ko": korean, "en": label}


def pseudonym(poll_id: str, label: str) -> str:
    return sha256(f"pseudonym/{poll_id}/{label}".encode()).hex()


def voter_key(poll_id: str, label: str) -> PrivateKey:
    return city_key(f"voter/{poll_id}/{label}")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class PollCity:
    served: ServedCity
    ledger: NodeLedger
    voters: dict[str, PrivateKey] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.served.url

    def send_as(self, key: PrivateKey, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send_as(key, "polls", method, args)

    def register(self, poll_id: str, label: str, district: str) -> PrivateKey:
        key = voter_key(poll_id, label)
        args = {
            "poll_id": poll_id,
            "pseudonym": pseudonym(poll_id, label),
            "voter_key": key.public.did,
            "district": district,
        }
        self.ledger.send(REGISTRAR, "polls", "register_voter", args)
        self.voters[label] = key
        return key

    def vote(self, label: str, choices: list[int], poll_id: str = OPEN_POLL) -> Any:
        return self.send_as(self.voters[label], "cast", {"poll_id": poll_id, "choices": choices})


def poll_args(poll_id: str, opens_ms: int, **change: Any) -> dict[str, Any]:
    args = {
        "poll_id": poll_id,
        "question": text("Which park is renewed first?", "어느 공원을 먼저 정비할까요?"),
        "options": [text("North park", "북쪽 공원"), text("River park", "강변 공원")],
        "min_selections": 1,
        "max_selections": 1,
        "mode": "open",
        "eligibility": {"credential_type": "ResidentCard", "districts": [], "min_age": 19},
        "registrar": REGISTRAR,
        "opens_ms": opens_ms,
        "closes_ms": opens_ms + 3_600_000,
        "observers": ["archive"],
        "rules": text("One resident, one vote.", "주민 한 명당 한 표입니다."),
    }
    return {**args, **change}


@contextmanager
def served_poll_city(root: Path, votes: dict[str, list[int]] = VOTES) -> Iterator[PollCity]:
    """A served city with an open poll (voters ``VOTERS``, ``votes`` cast one block each) and
    a secret poll in its key ceremony. Also used by the browser test."""
    with served_identity_city(root) as served:
        ledger = NodeLedger(served.layout, served.node)
        ledger.send(
            "root", "governance", "grant_role", {"agency": REGISTRAR, "role": "poll_officer"}
        )
        city = PollCity(served, ledger)
        opens = now_ms() + 400
        ledger.send(REGISTRAR, "polls", "create", poll_args(OPEN_POLL, opens))
        trustees = [city_key(f"trustee/{j}").public.did for j in (1, 2, 3)]
        secret = poll_args(
            SECRET_POLL,
            now_ms() + 3_600_000,
            mode="secret",
            question=text("Which project gets the budget?", "어느 사업에 예산을 줄까요?"),
            trustees=trustees,
            threshold=2,
        )
        ledger.send(REGISTRAR, "polls", "create", secret)
        for label, district in VOTERS.items():
            city.register(OPEN_POLL, label, district)
        city.register(SECRET_POLL, "ana-secret", "riverside")
        while now_ms() <= opens:
            time.sleep(0.05)
        for label, choices in votes.items():
            city.vote(label, choices)
        yield city


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PollCity, httpx.Client]]:
    root = tmp_path_factory.mktemp("polls-portal")
    with served_poll_city(root) as city, httpx.Client(base_url=city.url) as client:
        yield city, client


def get(site: tuple[PollCity, httpx.Client], path: str, lang: str = "ko") -> str:
    answer = site[1].get(path, params={"lang": lang})
    assert answer.status_code == 200, answer.text[:500]
    assert html_lang(answer.text) == lang
    return answer.text


MESSAGES = load_messages("civicledger.web.polls")
POLLS_DIR = Path(__file__).parents[2] / "src/civicledger/web/polls"


def message(lang: str, key: str) -> str:
    return html.escape(MESSAGES[lang][key], quote=False)


# -- the list ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_the_list_shows_both_polls(site: tuple[PollCity, httpx.Client], lang: str) -> None:
    page = get(site, "/polls", lang)
    nav = {"ko": ">투표</a>", "en": ">Polls</a>"}[lang]
    assert nav in page
    assert f"<h1>{message(lang, 'polls.list_title')}</h1>" in page
    rows = re.findall(r'<tr data-poll-id="([a-z0-9-]+)">', page)
    assert rows == sorted([OPEN_POLL, SECRET_POLL])
    assert {"ko": "어느 공원을 먼저 정비할까요?", "en": "Which park is renewed first?"}[
        lang
    ] in page
    assert message(lang, "polls.mode.open") in page
    assert message(lang, "polls.mode.secret") in page
    assert message(lang, "polls.phase.joining") in page
    open_row = page.split(f'data-poll-id="{OPEN_POLL}"')[1].split("</tr>")[0]
    assert '<span class="voted">3</span> / 4' in open_row
    assert "75.0%" in open_row
    assert message(lang, "polls.status.open") in open_row
    assert open_row.count("<time datetime=") == 2


# -- the dashboard -----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ko", "en"])
@pytest.mark.parametrize("poll_id", [OPEN_POLL, SECRET_POLL])
def test_dashboard_renders_in_both_languages(
    site: tuple[PollCity, httpx.Client], lang: str, poll_id: str
) -> None:
    page = get(site, f"/polls/{poll_id}", lang)
    questions = {
        (OPEN_POLL, "ko"): "어느 공원을 먼저 정비할까요?",
        (OPEN_POLL, "en"): "Which park is renewed first?",
        (SECRET_POLL, "ko"): "어느 사업에 예산을 줄까요?",
        (SECRET_POLL, "en"): "Which project gets the budget?",
    }
    assert f'<h1 id="question">{questions[poll_id, lang]}</h1>' in page
    other = questions[poll_id, "en" if lang == "ko" else "ko"]
    assert other not in page
    assert (
        "script-src 'self'" in site[1].get(f"/polls/{poll_id}").headers["content-security-policy"]
    )
    assert re.search(r"<script(?![^>]*(type=\"application/json\"|src=))", page) is None
    assert " style=" not in page
    # The rules, with the contract's sentence on changing one's vote, in the page's language.
    rules = re.search(r'<dd class="rules" id="rules">(.*?)</dd>', page, re.S)
    assert rules is not None
    assert {"ko": "마지막으로 제출한 투표만", "en": "only your last vote is counted"}[
        lang
    ] in rules[1]
    assert {"ko": "주민 한 명당 한 표", "en": "One resident, one vote."}[lang] in rules[1]
    assert "<code>ResidentCard</code>" in page
    assert message(lang, "polls.min_age").replace("{age}", "19") in page
    assert "did:civic:city-hall" in page
    assert "did:civic:archive" in page
    assert message(lang, "polls.turnout_heading") in page
    assert message(lang, "polls.districts_heading") in page
    assert 'src="/static/polls/polls.js"' in page
    assert '<script type="application/json" id="poll-data">' in page


def test_open_poll_shows_the_live_tally_and_district_bars(
    site: tuple[PollCity, httpx.Client],
) -> None:
    page = get(site, f"/polls/{OPEN_POLL}", "en")
    assert '<dd class="figure" id="turnout-voted">3</dd>' in page
    assert '<dd class="figure" id="turnout-registered">4</dd>' in page
    assert '<span id="turnout-percent">75.0</span>%' in page
    table = re.search(r'<table class="list bars" id="tally-table">(.*?)</table>', page, re.S)
    assert table is not None, "the open poll's tally is not shown"
    rows = re.findall(
        r'<tr data-option="(\d)">\s*<th scope="row">([^<]*)</th>\s*'
        r'<td class="num count">(\d+)</td>\s*<td class="num percent">([0-9.]+)%</td>',
        table[1],
    )
    assert rows == [("0", "North park", "2", "66.6"), ("1", "River park", "1", "33.3")]
    assert 'width="66.6"' in table[1]
    districts = re.findall(
        r'<tr data-district="([a-z-]+)">\s*<th scope="row"><code>[a-z-]+</code></th>\s*'
        r'<td class="num voted">(\d+)</td>\s*<td class="num registered">(\d+)</td>\s*'
        r'<td class="num percent">([0-9.]+)%</td>\s*<td><svg class="bar"[^>]*>'
        r'<rect class="bar-track" width="100" height="8"></rect>'
        r'<rect class="bar-fill" width="([0-9.]+)" height="8"></rect>',
        page,
    )
    assert districts == [
        ("hillside", "1", "2", "50.0", "50.0"),
        ("riverside", "2", "2", "100.0", "100.0"),
    ]
    by_district = re.search(r'<tbody id="tally-district-rows">(.*?)</tbody>', page, re.S)
    assert by_district is not None
    assert re.findall(r'<td class="num">(\d+)</td>', by_district[1]) == ["1", "0", "1", "1"]
    assert message("en", "polls.tally_heading") in page
    assert message("en", "polls.result_pending").split("{")[0] not in page


def test_secret_poll_hides_the_tally_before_a_result(site: tuple[PollCity, httpx.Client]) -> None:
    page = get(site, f"/polls/{SECRET_POLL}", "en")
    assert re.search(r'id="tally-table" hidden>', page)
    assert re.findall(r'<td class="num count">(\d*)</td>', page) == ["", ""]
    assert 'id="tally-district-rows"' not in page
    pending = message("en", "polls.result_pending").replace("{k}", "2").replace("{n}", "3")
    assert f'<p class="notice" id="result-pending">{pending}</p>' in page
    assert '<p class="verified" id="result-verified" hidden></p>' in page
    # The key ceremony: three trustees, none joined, no key yet.
    assert '<dd id="poll-phase" data-phase="joining">' in page
    assert message("en", "polls.phase.joining") in page
    assert len(re.findall(r'<tr data-trustee="\d">', page)) == 3
    assert f'<dd id="fingerprint">{message("en", "polls.no_key")}</dd>' in page
    assert '<dd class="figure" id="turnout-registered">1</dd>' in page
    korean = get(site, f"/polls/{SECRET_POLL}", "ko")
    assert message("ko", "polls.result_pending").split("{")[0] in korean


def test_chart_has_one_point_per_series_entry(site: tuple[PollCity, httpx.Client]) -> None:
    client = site[1]
    series = client.get(f"/api/v1/polls/{OPEN_POLL}/series").json()["series"]
    assert [p["voted"] for p in series] == [1, 2, 3]
    page = get(site, f"/polls/{OPEN_POLL}", "en")
    svg = re.search(r'<svg id="turnout-chart".*?</svg>', page, re.S)
    assert svg is not None
    points = re.findall(
        r'<circle class="point" cx="[0-9.]+" cy="[0-9.]+" r="3" data-time-ms="(\d+)" '
        r'data-voted="(\d+)"></circle>',
        svg[0],
    )
    assert points == [(str(p["time_ms"]), str(p["voted"])) for p in series]
    assert 'role="img"' in svg[0]
    assert f'data-count="{len(series)}"' in svg[0]
    table = re.search(r'<tbody id="series-rows">(.*?)</tbody>', page, re.S)
    assert table is not None
    assert re.findall(r'<tr data-time-ms="(\d+)">', table[1]) == [str(p["time_ms"]) for p in series]
    empty = get(site, f"/polls/{SECRET_POLL}", "en")
    assert '<g id="chart-points">\n      </g>' in empty
    assert message("en", "polls.no_votes") in empty


def test_chart_geometry() -> None:
    size = CHART_SIZE
    left, right = size["left"], size["width"] - size["right"]
    top, bottom = size["top"], size["height"] - size["bottom"]
    chart = turnout_chart(
        [{"time_ms": 1_500, "voted": 1}, {"time_ms": 2_000, "voted": 4}], 1_000, 4
    )
    assert [(p.x, p.y) for p in chart.points] == [
        ((left + right) / 2, (top + 3 * bottom) / 4),
        (right, top),
    ]
    assert chart.line.split(" ")[0] == f"{left:g},{bottom:g}"
    assert len(chart.line.split(" ")) == 1 + 2 * 2
    assert (chart.start_ms, chart.end_ms, chart.y_max) == (1_000, 2_000, 4)
    empty = turnout_chart([], 1_000, 0)
    assert (empty.points, empty.y_max, empty.end_ms) == ((), 1, 1_001)
    # More votes than registered voters cannot happen, but the scale would still hold them.
    assert turnout_chart([{"time_ms": 5, "voted": 9}], 5, 2).y_max == 9


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/polls/no-such-poll", "/polls/BAD", "/polls/a"])
def test_unknown_poll_is_a_404_page(site: tuple[PollCity, httpx.Client], path: str) -> None:
    answer = site[1].get(path, params={"lang": "ko"}, headers={"accept": "text/html"})
    assert answer.status_code == 404
    assert html_lang(answer.text) == "ko"
    assert "text/html" in answer.headers["content-type"]


def test_without_a_desk_the_pages_are_absent_or_say_so(
    site: tuple[PollCity, httpx.Client],
) -> None:
    node = site[0].served.node
    plain = create_site(node)
    with BackgroundServer(plain) as server, httpx.Client(base_url=server.url) as client:
        assert ">Polls</a>" not in client.get("/", params={"lang": "en"}).text
        assert client.get("/polls", headers={"accept": "text/html"}).status_code == 404
    explicit = create_site(node, sections=[polls_section()])
    with BackgroundServer(explicit) as server, httpx.Client(base_url=server.url) as client:
        for path in ["/polls", f"/polls/{OPEN_POLL}"]:
            answer = client.get(path, params={"lang": "en"})
            assert answer.status_code == 503
            assert "not configured on this node" in answer.text


def test_every_message_the_pages_use_exists_in_both_languages() -> None:
    keys = Catalog({"polls": MESSAGES}).keys()
    used: set[str] = set()
    for template in (POLLS_DIR / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", template.read_text()))
    script = (POLLS_DIR / "static/polls.js").read_text()
    used |= set(re.findall(r"""["'`](polls\.js\.[a-z0-9_.]+)""", script))
    prefixes = {k for k in used if k.endswith((".", "_"))}
    assert prefixes == {
        "polls.status.",
        "polls.mode.",
        "polls.phase.",
        "polls.js.live_",
        "polls.js.status_",
    }
    statuses = ("scheduled", "open", "closed")
    dynamic = {f"polls.status.{s}" for s in statuses} | {f"polls.js.status_{s}" for s in statuses}
    dynamic |= {f"polls.mode.{m}" for m in ("open", "secret")}
    dynamic |= {f"polls.phase.{p}" for p in ("joining", "dealing", "checking", "ready", "failed")}
    dynamic |= {f"polls.js.live_{s}" for s in ("on", "off", "reconnecting")}
    dynamic |= {f"polls.type.{t.lower()}" for t in CREDENTIAL_TYPES}
    assert sorted((used - prefixes | dynamic) - keys) == []
    assert "innerHTML" not in script
    hangul = re.compile(r"[\uac00-\ud7a3]")
    assert [k for k, v in MESSAGES["ko"].items() if not hangul.search(v)] == []
    assert [k for k, v in MESSAGES["en"].items() if hangul.search(v)] == []
