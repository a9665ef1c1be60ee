"""The portal's identity pages over a real served city with an identity desk.

The city directory has two issuing agencies (city hall: resident cards; archive:
qualifications) with desk tokens; a holder wallet lives outside the node. Every page renders in
Korean and English; a credential issued through the issue page is received by the wallet; the
wallet's presentation answering the present page's challenge verifies pasted and as a photo of
its QR code; a replay and a revoked credential are refused with their reasons; tokens are never
written back into a page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from portal_helpers import html_lang

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.issuer import required_claims
from civicledger.agency.ledger import NodeLedger
from civicledger.agency.tokens import create_token
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity.credentials import CREDENTIAL_TYPES, to_qr_payload
from civicledger.services.identity.qr_image import qr_png
from civicledger.services.identity.wallet import Wallet
from civicledger.web import create_site
from civicledger.web.i18n import Catalog, load_messages
from civicledger.web.identity import CLAIM_FIELDS, EXPLAINED_REASONS, VERIFY_BODY_LIMIT
from civicledger.web.identity import section as identity_section
from identity_samples import RESIDENT, issuing_city

DOMAIN = "https://id.testville.example"
PAGES = [
    "/identity",
    "/identity/present",
    "/identity/verify",
    "/identity/issue",
    "/identity/revoke",
]
IDENTITY_DIR = Path(__file__).parents[2] / "src/civicledger/web/identity"


@dataclass
class IdentitySite:
    layout: CityDir
    node: EmbeddedNode
    client: httpx.Client
    wallet: Wallet
    hall_token: str
    archive_token: str


@dataclass
class ServedCity:
    layout: CityDir
    node: EmbeddedNode
    url: str
    wallet: Wallet
    hall_token: str
    archive_token: str


@contextmanager
def served_identity_city(root: Path) -> Iterator[ServedCity]:
    """A city with two issuing agencies and their desk tokens, served with an identity desk,
    and a holder wallet in ``root / "wallet"``. Also used by the browser test."""
    layout = issuing_city(root / "city")  # before the served node opens: CityLedger opens it
    hall_token, _ = create_token(layout, "city-hall", "front desk", datetime.now(UTC))
    archive_token, _ = create_token(layout, "archive", "records desk", datetime.now(UTC))
    wallet = Wallet.create(root / "wallet")
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        desk = IdentityDesk(NodeLedger(layout, node), domain=DOMAIN)
        with BackgroundServer(create_site(node, identity=desk)) as server:
            yield ServedCity(layout, node, server.url, wallet, hall_token, archive_token)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentitySite]:
    root = tmp_path_factory.mktemp("identity-portal")
    with served_identity_city(root) as city, httpx.Client(base_url=city.url) as client:
        yield IdentitySite(
            city.layout, city.node, client, city.wallet, city.hall_token, city.archive_token
        )


# -- helpers -----------------------------------------------------------------------------------


def _challenge(site: IdentitySite) -> tuple[str, str]:
    page = site.client.get("/identity/present")
    assert page.status_code == 200
    challenge = re.search(r'data-challenge="([^"]+)"', page.text)
    domain = re.search(r'data-domain="([^"]+)"', page.text)
    assert challenge is not None
    assert domain is not None
    return html.unescape(challenge.group(1)), html.unescape(domain.group(1))


def _issue(
    site: IdentitySite, token: str, credential_type: str, claims: dict[str, str]
) -> httpx.Response:
    form = {"token": token, "credential_type": credential_type, "holder": site.wallet.holder}
    form |= {f"claim-{credential_type}-{name}": value for name, value in claims.items()}
    return site.client.post("/identity/issue", data=form)


def _issued_credential(page: str) -> dict[str, object] | str:
    match = re.search(r'<textarea id="credential-text"[^>]*>(.*?)</textarea>', page, re.S)
    assert match is not None, "no issued credential on the page"
    text = html.unescape(match.group(1))
    if text.startswith("{"):
        value = json.loads(text)
        assert isinstance(value, dict)
        return value
    return text


def _receive_card(site: IdentitySite) -> tuple[str, dict[str, object] | str]:
    answer = _issue(site, site.hall_token, "ResidentCard", RESIDENT)
    assert answer.status_code == 200, answer.text
    credential = _issued_credential(answer.text)
    summary = site.wallet.receive(credential, now=datetime.now(UTC))
    return summary.id, credential


def _verify_text(site: IdentitySite, text: str, **fields: str) -> httpx.Response:
    return site.client.post("/identity/verify", data={"presentation": text, **fields})


def _verify_image(site: IdentitySite, png: bytes) -> httpx.Response:
    return site.client.post(
        "/identity/verify",
        data={"presentation": "", "expected_type": ""},
        files={"qr_image": ("presentation.png", png, "image/png")},
    )


def _reason(page: str) -> str | None:
    match = re.search(r'id="refusal" role="alert" data-reason="([a-z_]+)"', page)
    return match.group(1) if match else None


def _claims_shown(page: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(
            r'<dd class="claim" data-claim="([A-Za-z_0-9]+)">(.*?)</dd>', page
        )
    }


# -- pages and languages -----------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_in_korean_and_english(site: IdentitySite, path: str) -> None:
    korean = site.client.get(path, params={"lang": "ko"})
    english = site.client.get(path, params={"lang": "en"})
    assert korean.status_code == english.status_code == 200
    assert html_lang(korean.text) == "ko"
    assert html_lang(english.text) == "en"
    assert ">신원</a>" in korean.text
    assert ">Identity</a>" in english.text
    assert "script-src 'self'" in english.headers["content-security-policy"]
    messages = load_messages("civicledger.web.identity")
    title = {
        "/identity": "overview_title",
        "/identity/present": "present_title",
        "/identity/verify": "verify_title",
        "/identity/issue": "issue_title",
        "/identity/revoke": "revoke_title",
    }[path]
    assert f"<h1>{messages['ko']['identity.' + title]}</h1>" in korean.text
    assert f"<h1>{messages['en']['identity.' + title]}</h1>" in english.text


def test_overview_lists_the_grants(site: IdentitySite) -> None:
    page = site.client.get("/identity", params={"lang": "en"}).text
    assert 'data-agency="city-hall" data-type="ResidentCard"' in page
    assert 'data-agency="archive" data-type="Qualification"' in page
    assert 'data-agency="archive" data-type="ResidentCard"' not in page
    assert f'<code id="verifier-domain">{DOMAIN}</code>' in page


def test_present_page_shows_challenge_qr_and_the_wallet_command(site: IdentitySite) -> None:
    page = site.client.get("/identity/present").text
    challenge, domain = _challenge(site)
    assert domain == DOMAIN
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    command = re.search(r'<code id="holder-command">(.*?)</code>', page)
    assert command is not None
    assert html.unescape(command.group(1)).startswith(
        "civic wallet present CREDENTIAL_ID --challenge "
    )
    assert f"--domain {DOMAIN}" in command.group(1)
    # Each visit asks a fresh challenge.
    assert _challenge(site)[0] != challenge
    assert 'name="challenge"' in page
    assert 'action="/identity/verify"' in page


# -- issue, present, verify, revoke ------------------------------------------------------------


def test_issued_card_reaches_the_wallet_and_the_token_is_not_echoed(site: IdentitySite) -> None:
    answer = _issue(site, site.hall_token, "ResidentCard", RESIDENT)
    assert answer.status_code == 200
    assert 'id="issued"' in answer.text
    assert site.hall_token not in answer.text
    assert '<code id="issued-format">vc+sd-jwt</code>' in answer.text
    assert 'id="credential-qr"' in answer.text
    index = re.search(r'<code id="issued-index">(\d+)</code>', answer.text)
    assert index is not None
    credential = _issued_credential(answer.text)
    assert isinstance(credential, str)
    summary = site.wallet.receive(credential, now=datetime.now(UTC))
    assert summary.types == ("urn:civicledger:credential:ResidentCard",)
    assert summary.issuer == "did:civic:city-hall"
    desk = IdentityDesk(NodeLedger(site.layout, site.node), domain=DOMAIN)
    assert int(index.group(1)) in {r.index for r in desk.issued("city-hall")}


def test_sd_jwt_presentation_verifies_pasted_and_replay_is_refused(site: IdentitySite) -> None:
    card_id, _ = _receive_card(site)
    challenge, domain = _challenge(site)
    shown = site.wallet.present(
        card_id, challenge=challenge, domain=domain, now=datetime.now(UTC), disclose=["district"]
    )
    assert isinstance(shown, str)
    first = _verify_text(site, shown, challenge=challenge, expected_type="ResidentCard")
    assert first.status_code == 200
    assert 'id="verified"' in first.text, _reason(first.text)
    assert _claims_shown(first.text) == {"district": "Riverside"}
    assert "did:civic:city-hall" in first.text
    assert site.wallet.holder in first.text
    replay = _verify_text(site, shown)
    assert 'id="verified"' not in replay.text
    assert _reason(replay.text) == "replayed_challenge"


def test_presentation_verifies_from_a_photo_of_its_qr_code(site: IdentitySite) -> None:
    card_id, _ = _receive_card(site)
    challenge, domain = _challenge(site)
    shown = site.wallet.present(
        card_id, challenge=challenge, domain=domain, now=datetime.now(UTC), disclose=["age_over_19"]
    )
    assert isinstance(shown, str)
    answer = _verify_image(site, qr_png(shown))
    assert 'id="verified"' in answer.text, _reason(answer.text)
    assert _claims_shown(answer.text) == {"age_over_19": "true"}


def test_data_integrity_credential_issued_and_verified_from_its_qr(site: IdentitySite) -> None:
    claims = {"qualification": "Licensed electrician", "license_number": "EL-2023-0042"}
    answer = _issue(site, site.archive_token, "Qualification", claims)
    assert '<code id="issued-format">vc-di</code>' in answer.text
    credential = _issued_credential(answer.text)
    assert isinstance(credential, dict)
    summary = site.wallet.receive(credential, now=datetime.now(UTC))
    challenge, domain = _challenge(site)
    shown = site.wallet.present(
        summary.id, challenge=challenge, domain=domain, now=datetime.now(UTC)
    )
    assert isinstance(shown, dict)
    verdict = _verify_image(site, qr_png(to_qr_payload(shown)))
    assert 'id="verified"' in verdict.text, _reason(verdict.text)
    shown_claims = _claims_shown(verdict.text)
    assert shown_claims["licenseNumber"] == "EL-2023-0042"
    assert shown_claims["id"] == site.wallet.holder


def test_revoked_credential_then_fails_verification(site: IdentitySite) -> None:
    card_id, _ = _receive_card(site)
    listing = site.client.post(
        "/identity/revoke",
        data={"token": site.hall_token, "action": "list", "holder": site.wallet.holder},
    )
    assert listing.status_code == 200
    assert site.hall_token not in listing.text
    entries = re.findall(r'name="entry" value="([^"]+)"', listing.text)
    assert entries, "the register shows no revocable credential"
    # The newest is first: the card just issued.
    entry = html.unescape(entries[0])
    revoked = site.client.post(
        "/identity/revoke", data={"token": site.hall_token, "action": "revoke", "entry": entry}
    )
    assert revoked.status_code == 200, _reason(revoked.text)
    assert site.hall_token not in revoked.text
    digest = re.search(r'<code class="full" id="revoked-digest">([0-9a-f]+)</code>', revoked.text)
    version = re.search(r'<code id="revoked-version">(\d+)</code>', revoked.text)
    assert digest is not None
    assert version is not None
    list_id = entry.partition("@")[2]
    anchored = site.node.chain.query(
        "status_lists", "latest", {"agency": "city-hall", "list_id": list_id}
    )
    assert anchored["digest"] == digest.group(1)
    assert anchored["version"] == int(version.group(1))

    challenge, domain = _challenge(site)
    shown = site.wallet.present(
        card_id, challenge=challenge, domain=domain, now=datetime.now(UTC), disclose=["district"]
    )
    assert isinstance(shown, str)
    refused = site.client.post(
        "/identity/verify", params={"lang": "ko"}, data={"presentation": shown}
    )
    assert _reason(refused.text) == "revoked"
    korean = load_messages("civicledger.web.identity")["ko"]
    assert korean["identity.reason.revoked"] in refused.text

    again = site.client.post(
        "/identity/revoke", data={"token": site.hall_token, "action": "revoke", "entry": entry}
    )
    assert again.status_code == 409
    assert _reason(again.text) == "already_revoked"


def test_revoke_by_pasted_credential(site: IdentitySite) -> None:
    _, credential = _receive_card(site)
    assert isinstance(credential, str)
    answer = site.client.post(
        "/identity/revoke",
        data={"token": site.hall_token, "action": "revoke", "credential": credential},
    )
    assert answer.status_code == 200, _reason(answer.text)
    assert 'id="revoked"' in answer.text
    by_archive = site.client.post(
        "/identity/revoke",
        data={"token": site.archive_token, "action": "revoke", "credential": credential},
    )
    assert by_archive.status_code == 403
    assert _reason(by_archive.text) == "not_our_credential"


# -- refusals ----------------------------------------------------------------------------------


def test_bad_token_is_refused_and_never_echoed(site: IdentitySite) -> None:
    forged = "civ_city-hall_" + "A" * 43
    for path, extra in [
        ("/identity/issue", {"credential_type": "ResidentCard", "holder": site.wallet.holder}),
        ("/identity/revoke", {"action": "list"}),
    ]:
        answer = site.client.post(path, data={"token": forged, **extra})
        assert answer.status_code == 401
        assert _reason(answer.text) == "unauthenticated"
        assert forged not in answer.text
        assert "A" * 43 not in answer.text
    assert 'id="issued"' not in _issue(site, "", "ResidentCard", RESIDENT).text


def test_agency_without_grant_is_refused(site: IdentitySite) -> None:
    answer = _issue(site, site.archive_token, "ResidentCard", RESIDENT)
    assert answer.status_code == 403
    assert _reason(answer.text) == "issuer_not_authorized"
    assert site.archive_token not in answer.text


def test_bad_claims_keep_the_form_but_not_the_token(site: IdentitySite) -> None:
    answer = _issue(site, site.hall_token, "ResidentCard", {**RESIDENT, "birthdate": ""})
    assert answer.status_code == 400
    assert _reason(answer.text) == "bad_claims"
    assert 'value="Kimura-Park"' in answer.text
    assert site.hall_token not in answer.text
    assert re.search(r'<input id="token"[^>]*value=', answer.text) is None


@pytest.mark.parametrize(
    ("fields", "files", "reason"),
    [
        ({"presentation": "not a presentation"}, None, "malformed_credential"),
        ({"presentation": ""}, None, "malformed_credential"),
        ({}, {"qr_image": ("x.png", b"\x89PNG not really", "image/png")}, "bad_qr_image"),
        ({"presentation": "x~y~"}, {"qr_image": ("x.png", b"png", "image/png")}, "bad_request"),
        ({"presentation": "{}", "expected_type": "Passport"}, None, "bad_request"),
    ],
)
def test_unusable_verify_inputs_are_refused_with_their_reason(
    site: IdentitySite,
    fields: dict[str, str],
    files: dict[str, tuple[str, bytes, str]] | None,
    reason: str,
) -> None:
    answer = site.client.post("/identity/verify", data=fields, files=files)
    assert answer.status_code == 200
    assert _reason(answer.text) == reason


def test_expected_type_mismatch_is_refused(site: IdentitySite) -> None:
    card_id, _ = _receive_card(site)
    challenge, domain = _challenge(site)
    shown = site.wallet.present(card_id, challenge=challenge, domain=domain, now=datetime.now(UTC))
    assert isinstance(shown, str)
    answer = _verify_text(site, shown, expected_type="Qualification")
    assert _reason(answer.text) == "unknown_credential_type"


def test_verify_page_takes_image_sized_bodies_and_others_do_not(site: IdentitySite) -> None:
    big = {"presentation": "x" * 200_000}
    verify = site.client.post("/identity/verify", data=big)
    assert verify.status_code == 200
    assert _reason(verify.text) == "malformed_credential"
    assert site.client.post("/identity/issue", data=big).status_code == 413
    huge = site.client.post(
        "/identity/verify",
        files={"qr_image": ("x.png", b"\0" * (VERIFY_BODY_LIMIT + 1), "image/png")},
    )
    assert huge.status_code == 413


# -- without a desk, and the section's own consistency ------------------------------------------


def test_without_a_desk_the_pages_are_absent_or_say_so(site: IdentitySite) -> None:
    plain = create_site(site.node)
    with BackgroundServer(plain) as server, httpx.Client(base_url=server.url) as client:
        front = client.get("/", params={"lang": "en"}).text
        assert ">Identity</a>" not in front
        assert client.get("/identity", headers={"accept": "text/html"}).status_code == 404
    explicit = create_site(site.node, sections=[identity_section()])
    with BackgroundServer(explicit) as server, httpx.Client(base_url=server.url) as client:
        for path in PAGES:
            answer = client.get(path, params={"lang": "en"})
            assert answer.status_code == 503
            assert "not configured on this node" in answer.text
        posted = client.post("/identity/verify", data={"presentation": "x"})
        assert posted.status_code == 503


def test_claim_fields_are_the_issuers() -> None:
    assert {t: {f.name for f in fields} for t, fields in CLAIM_FIELDS.items()} == {
        t: set(required_claims(t)) for t in CREDENTIAL_TYPES
    }


def test_every_message_the_pages_use_exists_in_both_languages() -> None:
    messages = load_messages("civicledger.web.identity")
    keys = Catalog({"identity": messages}).keys()
    used: set[str] = set()
    for template in (IDENTITY_DIR / "templates").glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", template.read_text()))
    script = (IDENTITY_DIR / "static/identity.js").read_text()
    used |= set(re.findall(r"""["'](identity\.js\.[a-z0-9_.]+)["']""", script))
    prefixes = {k for k in used if k.endswith((".", "_"))}
    assert prefixes == {"identity.claim.", "identity.type.", "identity.verified_source_"}
    dynamic = {f"identity.claim.{f.name}" for fields in CLAIM_FIELDS.values() for f in fields}
    dynamic |= {f"identity.type.{t.lower()}" for t in CLAIM_FIELDS}
    dynamic |= {"identity.verified_source_text", "identity.verified_source_image"}
    dynamic |= {f"identity.reason.{r}" for r in EXPLAINED_REASONS} | {"identity.reason.other"}
    assert sorted((used - prefixes | dynamic) - keys) == []
    hangul = re.compile(r"[\uac00-\ud7a3]")
    assert [k for k, v in messages["ko"].items() if not hangul.search(v)] == []
    assert [k for k, v in messages["en"].items() if hangul.search(v)] == []
