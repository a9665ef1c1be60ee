"""The identity desk over real HTTP: DIDs, grants, status lists, challenges, verification, QR
images; issuing and revoking with an agency's desk token.

One city directory (keystore, ledger, issuer records) served by a running node whose desk
signs through the node itself (``NodeLedger``): the setup uses the CLI's path (``CityLedger``)
before the node starts, like an operator would.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from api_helpers import PROBLEM, assert_problem
from PIL import Image

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import NodeLedger
from civicledger.agency.tokens import create_token, list_tokens, revoke_token
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, CityDir, load_key
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity.credentials import to_qr_payload
from civicledger.services.identity.qr_image import qr_png
from civicledger.services.identity.status_list import list_credential_digest
from civicledger.services.identity.wallet import Wallet
from identity_samples import PERSONAL, QUALIFICATION, RESIDENT, issuing_city

DOMAIN = "https://desk.testville.example"


@dataclass
class Desk:
    layout: CityDir
    node: EmbeddedNode
    http: httpx.Client
    hall_token: str
    archive_token: str
    wallet: Wallet

    def staff(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def challenge(self) -> str:
        answer = self.http.post("/api/v1/identity/challenges")
        assert answer.status_code == 201, answer.text
        assert answer.json()["domain"] == DOMAIN
        return str(answer.json()["challenge"])

    def issue(self, token: str, credential_type: str, claims: dict[str, object]) -> httpx.Response:
        body = {"credential_type": credential_type, "holder": self.wallet.holder, "claims": claims}
        return self.http.post("/api/v1/identity/credentials", json=body, headers=self.staff(token))

    def present(
        self, credential_id: str, disclose: list[str] | None = None
    ) -> dict[str, object] | str:
        return self.wallet.present(
            credential_id,
            challenge=self.challenge(),
            domain=DOMAIN,
            now=datetime.now(UTC),
            disclose=disclose or [],
        )

    def verify(self, presentation: object) -> dict[str, object]:
        answer = self.http.post("/api/v1/identity/verify", json={"presentation": presentation})
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    layout = issuing_city(tmp_path / "city")
    now = datetime.now(UTC)
    hall_token, _ = create_token(layout, "city-hall", "front desk", now)
    archive_token, _ = create_token(layout, "archive", "records room", now)
    wallet = Wallet.create(tmp_path / "wallet")
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        identity = IdentityDesk(NodeLedger(layout, node), domain=DOMAIN)
        app = create_app(node, identity=identity)
        with (
            BackgroundServer(app) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            yield Desk(layout, node, http, hall_token, archive_token, wallet)


def test_public_reads_resolve_dids_grants_and_serve_anchored_lists(desk: Desk) -> None:
    civic = desk.http.get("/api/v1/identity/dids/did:civic:city-hall")
    assert civic.status_code == 200
    assert civic.json()["didDocument"]["id"] == "did:civic:city-hall"
    key = desk.http.get(f"/api/v1/identity/dids/{desk.wallet.holder}")
    assert key.json()["didDocument"]["id"] == desk.wallet.holder
    assert_problem(desk.http.get("/api/v1/identity/dids/did:civic:nobody"), 404, "did_not_found")

    grants = desk.http.get("/api/v1/identity/issuers").json()["grants"]
    assert {(g["agency"], g["type"], g["active"]) for g in grants} == {
        ("archive", "Qualification", True),
        ("city-hall", "ResidentCard", True),
    }
    assert desk.http.get("/api/v1/identity/issuers", params={"agency": "archive"}).json()[
        "grants"
    ] == [g for g in grants if g["agency"] == "archive"]

    assert_problem(
        desk.http.get("/api/v1/identity/status/city-hall/revocation-1"), 404, "unknown_list"
    )
    assert desk.issue(desk.hall_token, "ResidentCard", RESIDENT).status_code == 201
    served = desk.http.get("/api/v1/identity/status/city-hall/revocation-1")
    assert served.status_code == 200
    listed = served.json()
    assert listed["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert "allocated" not in served.text
    assert desk.wallet.holder not in served.text
    anchored = desk.node.chain.query(
        "status_lists", "latest", {"agency": "city-hall", "list_id": listed["id"]}
    )
    assert list_credential_digest(listed) == anchored["digest"]


def test_issue_present_verify_replay_and_revoke(desk: Desk) -> None:
    issued = desk.issue(desk.hall_token, "ResidentCard", RESIDENT)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["format"] == "vc+sd-jwt"
    assert body["credential_type"] == "ResidentCard"
    card = desk.wallet.receive(body["credential"], now=datetime.now(UTC))

    shown = desk.present(card.id, ["age_over_19", "district"])
    verdict = desk.verify(shown)
    assert verdict["verified"] is True, verdict
    (credential,) = verdict["credentials"]  # type: ignore[misc]
    assert credential["claims"] == {"age_over_19": True, "district": "Riverside"}
    assert credential["issuer"] == "did:civic:city-hall"
    assert credential["holder"] == desk.wallet.holder
    anchored = desk.node.chain.query(
        "status_lists", "latest", {"agency": "city-hall", "list_id": body["list_id"]}
    )
    assert credential["status"] == {
        "revoked": False,
        "suspended": False,
        "list_digest": anchored["digest"],
    }

    replay = desk.verify(shown)
    assert replay == {
        "verified": False,
        "reason": "replayed_challenge",
        "message": replay["message"],
        "credentials": [],
    }
    forged = desk.verify(
        desk.wallet.present(card.id, challenge="never-issued", domain=DOMAIN, now=datetime.now(UTC))
    )
    assert forged["reason"] == "unknown_challenge"

    register = desk.http.get(
        "/api/v1/identity/credentials",
        params={"holder": desk.wallet.holder},
        headers=desk.staff(desk.hall_token),
    )
    (record,) = register.json()["records"]
    assert (record["list_id"], record["index"], record["revoked_at"]) == (
        body["list_id"],
        body["index"],
        None,
    )
    revoked = desk.http.post(
        "/api/v1/identity/revocations",
        json={"list_id": record["list_id"], "index": record["index"]},
        headers=desk.staff(desk.hall_token),
    )
    assert revoked.status_code == 201, revoked.text
    assert revoked.json()["version"] == anchored["version"] + 1
    again = desk.http.post(
        "/api/v1/identity/revocations",
        json={"credential": body["credential"]},
        headers=desk.staff(desk.hall_token),
    )
    assert_problem(again, 409, "already_revoked")
    after = desk.verify(desk.present(card.id, ["district"]))
    assert (after["verified"], after["reason"]) == (False, "revoked")


def test_qualification_through_a_qr_image(desk: Desk) -> None:
    issued = desk.issue(desk.archive_token, "Qualification", QUALIFICATION)
    assert issued.status_code == 201, issued.text
    assert issued.json()["format"] == "vc-di"
    stored = desk.wallet.receive(issued.json()["credential"], now=datetime.now(UTC))
    shown = desk.present(stored.id)
    assert isinstance(shown, dict)
    png = qr_png(to_qr_payload(shown))
    decoded = desk.http.post(
        "/api/v1/identity/qr/decode", content=png, headers={"Content-Type": "image/png"}
    )
    assert decoded.status_code == 200, decoded.text
    verdict = desk.verify(decoded.json()["text"])
    assert verdict["verified"] is True, verdict
    assert verdict["credentials"][0]["claims"]["licenseNumber"] == "EL-2023-0042"  # type: ignore[index]

    served = desk.http.get("/api/v1/identity/qr.png", params={"text": "hello desk"})
    assert served.headers["content-type"] == "image/png"
    round_trip = desk.http.post(
        "/api/v1/identity/qr/decode", content=served.content, headers={"Content-Type": "image/png"}
    )
    assert round_trip.json() == {"text": "hello desk"}


def test_bad_images_are_refused_with_reasons(desk: Desk) -> None:
    post = desk.http.post
    url = "/api/v1/identity/qr/decode"
    assert_problem(
        post(url, content=b"not an image", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        post(url, content=b"\x89PNG garbage", headers={"Content-Type": "image/png"}),
        400,
        "bad_qr_image",
    )
    assert_problem(
        post(url, content=_blank_png(), headers={"Content-Type": "image/png"}), 400, "bad_qr_image"
    )
    too_big = post(
        url, content=b"\0" * (5 * 1024 * 1024 + 1), headers={"Content-Type": "image/png"}
    )
    assert_problem(too_big, 413, "payload_too_large")


def _blank_png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (200, 200), 255).save(out, format="PNG")
    return out.getvalue()


def test_staff_routes_need_a_live_token_of_the_right_agency(desk: Desk) -> None:
    no_token = desk.http.post(
        "/api/v1/identity/credentials",
        json={"credential_type": "ResidentCard", "holder": desk.wallet.holder, "claims": RESIDENT},
    )
    problem = assert_problem(no_token, 401, "unauthenticated")
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert "Kimura" not in str(problem)
    forged = desk.hall_token[:-4] + ("AAAA" if not desk.hall_token.endswith("AAAA") else "BBBB")
    assert_problem(desk.issue(forged, "ResidentCard", RESIDENT), 401, "unauthenticated")
    # The archive's token speaks for the archive, which may not issue resident cards.
    assert_problem(
        desk.issue(desk.archive_token, "ResidentCard", RESIDENT), 403, "issuer_not_authorized"
    )
    assert_problem(
        desk.issue(desk.hall_token, "ResidentCard", {"given_name": "Minji"}), 400, "bad_claims"
    )
    card = desk.issue(desk.hall_token, "ResidentCard", RESIDENT).json()["credential"]
    assert_problem(
        desk.http.post(
            "/api/v1/identity/revocations",
            json={"credential": card},
            headers=desk.staff(desk.archive_token),
        ),
        403,
        "not_our_credential",
    )
    assert_problem(
        desk.http.post(
            "/api/v1/identity/revocations", json={}, headers=desk.staff(desk.hall_token)
        ),
        400,
        "bad_request",
    )
    # A token revoked from the CLI stops working on the running node at once.
    (token_id,) = [t.id for t in list_tokens(desk.layout, "city-hall")]
    revoke_token(desk.layout, "city-hall", token_id, datetime.now(UTC))
    assert_problem(desk.issue(desk.hall_token, "ResidentCard", RESIDENT), 401, "unauthenticated")


def test_the_ledger_never_sees_the_claims(desk: Desk) -> None:
    for _ in range(2):
        assert desk.issue(desk.hall_token, "ResidentCard", RESIDENT).status_code == 201
    assert desk.issue(desk.archive_token, "Qualification", QUALIFICATION).status_code == 201
    # The database with its write-ahead log, as the disk holds them now.
    files = sorted(p for p in desk.layout.data_path.iterdir() if p.is_file())
    assert any(p.suffix == ".sqlite" for p in files), files
    raw = b"".join(p.read_bytes() for p in files)
    assert b"did:civic:city-hall" in raw  # the scan sees what the ledger does hold
    for secret in [*PERSONAL, desk.wallet.holder]:
        assert secret.encode() not in raw, secret
    # ...while the issuer's own register (off the ledger) does know the holder.
    records = desk.http.get(
        "/api/v1/identity/credentials", headers=desk.staff(desk.hall_token)
    ).json()["records"]
    assert {r["holder"] for r in records} == {desk.wallet.holder}


def test_problem_media_type_is_declared_for_identity_errors(desk: Desk) -> None:
    answer = desk.http.get("/api/v1/identity/status/city-hall/no-such-list")
    assert answer.headers["content-type"].startswith(PROBLEM)


def test_a_counter_accepts_only_the_challenge_it_asked(desk: Desk) -> None:
    issued = desk.issue(desk.hall_token, "ResidentCard", RESIDENT).json()
    card = desk.wallet.receive(issued["credential"], now=datetime.now(UTC))
    counter_a, counter_b = desk.challenge(), desk.challenge()
    shown = desk.wallet.present(
        card.id, challenge=counter_a, domain=DOMAIN, now=datetime.now(UTC), disclose=["district"]
    )
    verify = "/api/v1/identity/verify"
    at_b = desk.http.post(verify, json={"presentation": shown, "challenge": counter_b}).json()
    assert (at_b["verified"], at_b["reason"]) == (False, "unknown_challenge")
    # Refused at counter B, the presentation is still good at counter A, once.
    at_a = desk.http.post(verify, json={"presentation": shown, "challenge": counter_a}).json()
    assert at_a["verified"] is True, at_a
    again = desk.http.post(verify, json={"presentation": shown, "challenge": counter_a}).json()
    assert again["reason"] == "replayed_challenge"
