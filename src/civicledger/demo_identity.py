"""The demo city's identity service, end to end: plain functions that return data.

Run on a demo Seoul after ``civicledger.demo.run_scenario``. City hall and Gangnam-gu publish
``did:civic`` documents, root grants them credential types (city hall: ResidentCard,
FamilyLoveCard, VisitorPass; Gangnam-gu: Qualification) and each anchors its revocation list.
Two residents get ``did:key`` wallets off the ledger (``<city>/wallets/<name>/``) and resident
cards; one a qualification checked by Mapo-gu, one a family love card; a visitor pass is issued
against a resident card and checked from its QR payload; a replayed presentation and a revoked
card are refused.

The residents' personal data (``DEMO_RESIDENTS``) goes into their wallets only: the ledger gets
DID documents, grants and status-list digests. Off-ledger times come from the head block, never
from the clock; status lists are "published" in memory (the issuers' web servers).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from civicledger.city import NODE_KEY, ROOT_KEY, CityDir, Signer, load_key
from civicledger.crypto.keys import PrivateKey, PublicKey
from civicledger.errors import CivicError, TxRejected
from civicledger.keystore import Keystore
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx
from civicledger.node.embedded import EmbeddedNode
from civicledger.services.identity.credentials import (
    FAMILY_LOVE_CARD,
    RESIDENT_CARD,
    family_love_card_claims,
    qualification_credential,
    resident_card_claims,
    to_qr_payload,
    visitor_pass_credential,
)
from civicledger.services.identity.data_integrity import issue_credential
from civicledger.services.identity.did_registry import civic_did
from civicledger.services.identity.gate import Gate
from civicledger.services.identity.sdjwt import issue_sd_jwt_vc
from civicledger.services.identity.status_list import (
    IndexAllocator,
    StatusEntry,
    StatusList,
    list_credential_digest,
    status_list_credential,
)
from civicledger.services.identity.verifier import Verifier
from civicledger.services.identity.wallet import Wallet

__all__ = [
    "DEMO_RESIDENTS",
    "DemoIdentity",
    "IdentityOutcome",
    "IdentityStep",
    "Resident",
    "run_identity",
    "wallets_dir",
]

IdentityOutcome = Literal["ok", "failed", "rejected", "refused"]
"""``failed``/``rejected``: a ledger transaction; ``refused``: a verifier said no."""


@dataclass(frozen=True)
class Resident:
    """A fictional resident; everything but ``name`` is personal data kept off the ledger."""

    name: str
    """The wallet's directory name (not personal data: a demo label)."""
    name_hangul: str
    given_name: str
    family_name: str
    birthdate: date
    address: str
    district: str
    phone: str
    children_birthdates: tuple[date, ...] = ()


DEMO_RESIDENTS = (
    Resident(
        name="seoyeon",
        name_hangul="김서연",
        given_name="Seo-yeon",
        family_name="Kim",
        birthdate=date(1986, 3, 14),
        address="서울특별시 강남구 테헤란로 152, 1203호",
        district="강남구 Gangnam-gu",
        phone="+82-10-4821-7735",
        children_birthdates=(date(2012, 5, 9), date(2015, 8, 21), date(2019, 1, 30)),
    ),
    Resident(
        name="jihoon",
        name_hangul="박지훈",
        given_name="Ji-hoon",
        family_name="Park",
        birthdate=date(1993, 11, 2),
        address="서울특별시 마포구 월드컵북로 396, 502호",
        district="마포구 Mapo-gu",
        phone="+82-10-9362-1048",
    ),
)
_VISITOR = "visitor"
_HALL, _DISTRICT = "city-hall", "gangnam-gu"
_GRANTS = (
    (_HALL, "ResidentCard"),
    (_HALL, "FamilyLoveCard"),
    (_HALL, "VisitorPass"),
    (_DISTRICT, "Qualification"),
)
_LIBRARY = "https://library.demo-seoul.example"
_MAPO = "https://mapo-gu.demo-seoul.example"
_MUSEUM = "https://museum.demo-seoul.example"
_HALL_DESK = "https://city-hall.demo-seoul.example"
_GATE = "https://gate.city-hall.demo-seoul.example"
_GATE_SITE = "main-gate"


@dataclass(frozen=True)
class IdentityStep:
    """One step of the identity demo: a ledger transaction or an off-ledger exchange."""

    title: str
    outcome: IdentityOutcome
    reason: str | None = None
    """Why it failed or was refused (a stable reason code)."""
    detail: str = ""
    tx_id: str | None = None
    height: int | None = None


@dataclass(frozen=True)
class DemoIdentity:
    steps: list[IdentityStep]
    issuers: dict[str, str] = field(default_factory=dict)
    """Agency id -> its did:civic."""
    holders: dict[str, str] = field(default_factory=dict)
    """Wallet name -> the holder's did:key (never on the ledger)."""
    wallets: Path = Path()


def wallets_dir(layout: CityDir) -> Path:
    return layout.root / "wallets"


class _Issuer:
    """An issuing agency's off-ledger side: its DID key, its revocation list, its web server."""

    def __init__(self, agency: str, signer: Signer, did_key: PrivateKey) -> None:
        self.agency, self.signer, self.key = agency, signer, did_key
        self.did = civic_did(agency)
        self.method = self.did + "#key-1"
        self.list_url = f"https://{agency}.demo-seoul.example/status/revocation/1"
        self.list = StatusList("revocation")
        self._indices = IndexAllocator(self.list.size)
        self.version = 0
        self.published: dict[str, Any] | None = None

    def entry(self) -> StatusEntry:
        return StatusEntry.for_index(self.list_url, self._indices.allocate(), "revocation")

    def publish(self, now: datetime) -> dict[str, Any]:
        """Sign and publish the list; the ``status_lists.anchor`` args for its digest."""
        self.published = status_list_credential(
            self.list,
            credential_id=self.list_url,
            issuer=self.did,
            sign=lambda d: issue_credential(d, self.key, verification_method=self.method, now=now),
        )
        self.version += 1
        return {
            "agency": self.agency,
            "list_id": self.list_url,
            "purpose": "revocation",
            "digest": list_credential_digest(self.published),
            "version": self.version,
        }


def run_identity(layout: CityDir, *, passphrase: str | None = None) -> DemoIdentity:
    """Run the identity demo on ``layout`` (a demo city after ``run_scenario``)."""
    keystore = layout.keystore
    with EmbeddedNode(layout.data_path, load_key(keystore, NODE_KEY, passphrase)) as node:
        flow = _Flow(layout, node, keystore, passphrase)
        flow.run()
        return DemoIdentity(
            flow.steps,
            issuers={i.agency: i.did for i in flow.issuers.values()},
            holders={name: w.holder for name, w in flow.wallets.items()},
            wallets=wallets_dir(layout),
        )


_Tx = tuple[str, Signer, str, str, dict[str, Any]]


class _Flow:
    def __init__(
        self, layout: CityDir, node: EmbeddedNode, keystore: Keystore, passphrase: str | None
    ) -> None:
        self.layout, self.node, self.passphrase = layout, node, passphrase
        self.steps: list[IdentityStep] = []

        def signer(name: str) -> Signer:
            return Signer(name, load_key(keystore, name, passphrase), node.chain)

        def did_key(agency: str) -> PrivateKey:
            name = f"{agency}.issuer"
            if name not in keystore.names():
                keystore.create(name, passphrase=passphrase)
            return load_key(keystore, name, passphrase)

        self.root = signer(ROOT_KEY)
        self.issuers = {a: _Issuer(a, signer(a), did_key(a)) for a in (_HALL, _DISTRICT)}
        self.wallets: dict[str, Wallet] = {}
        self.cards: dict[str, str] = {}
        """Wallet name -> the id of its resident card."""
        self.card_index: dict[str, int] = {}
        """Wallet name -> its resident card's index in city hall's revocation list."""
        self.gate = Gate(
            layout.root / "gates" / f"{_HALL}-{_GATE_SITE}",
            agency=_HALL,
            site=_GATE_SITE,
            domain=_GATE,
        )
        """City hall's offline gate; its queue lives next to the wallets, off the ledger."""

    # -- time and the ledger --------------------------------------------------------------------

    def now(self, seconds: float = 0) -> datetime:
        """The head block's time rounded up to a whole second (an SD-JWT ``iat`` is in seconds,
        and must not predate the grant), plus one second, plus ``seconds``."""
        head_s = math.ceil(self.node.chain.head.header.time_ms / 1000) + 1
        return datetime.fromtimestamp(head_s, UTC) + timedelta(seconds=seconds)

    def send(self, items: Sequence[_Tx]) -> None:
        """Submit all of ``items`` at once, then wait for each; record every outcome."""
        pending: list[tuple[str, Signer, SignedTx, Future[Receipt]]] = []
        for title, signer, contract, method, args in items:
            tx = signer.sign(contract, method, args)
            pending.append((title, signer, tx, self.node.submit_nowait(tx)))
        for title, signer, tx, future in pending:
            try:
                receipt = future.result(timeout=60)
            except TxRejected as e:
                signer.resync()
                step = IdentityStep(title, "rejected", e.reason, e.message, tx.tx_id_hex)
            else:
                step = IdentityStep(
                    title,
                    "ok" if receipt.ok else "failed",
                    receipt.reason,
                    ", ".join(f"{e.contract}.{e.name}" for e in receipt.events)
                    if receipt.ok
                    else receipt.message or "",
                    tx.tx_id_hex,
                    receipt.height,
                )
            self.steps.append(step)
            if step.outcome != "ok":
                raise CivicError(f"identity demo: {title}: {step.detail}", reason=step.reason)

    def check(self, title: str, action: Callable[[], str]) -> None:
        """An off-ledger exchange: ``ok`` with ``action``'s detail, or ``refused`` and why."""
        try:
            detail = action()
        except CivicError as e:
            self.steps.append(IdentityStep(title, "refused", e.reason, e.message))
        else:
            self.steps.append(IdentityStep(title, "ok", None, detail))

    def fetch(self, url: str) -> Any:
        """The issuers' web servers: the latest published list, a copy as over the wire."""
        for issuer in self.issuers.values():
            if issuer.list_url == url and issuer.published is not None:
                return copy.deepcopy(issuer.published)
        raise CivicError(f"404 {url}", reason="not_found")

    def verifier(self, domain: str) -> Verifier:
        return Verifier(self.node.chain.query, self.fetch, domain=domain)

    # -- the story ------------------------------------------------------------------------------

    def run(self) -> None:
        hall, district = self.issuers[_HALL], self.issuers[_DISTRICT]
        self.send(
            [
                (
                    f"{i.agency} publishes {i.did}",
                    i.signer,
                    "did_registry",
                    "create",
                    {"agency": i.agency, "keys": [i.key.public.did]},
                )
                for i in (hall, district)
            ]
        )
        self.send(
            [
                (
                    f"root lets {agency} issue {kind}",
                    self.root,
                    "governance",
                    "grant_issuer",
                    {"agency": agency, "credential_type": kind},
                )
                for agency, kind in _GRANTS
            ]
        )
        now = self.now()
        self.send(
            [
                (
                    f"{i.agency} anchors its revocation list",
                    i.signer,
                    "status_lists",
                    "anchor",
                    i.publish(now),
                )
                for i in (hall, district)
            ]
        )
        self.check("wallets for two residents and a visitor (off the ledger)", self._wallets)
        now = self.now()
        seoyeon, jihoon = DEMO_RESIDENTS
        for resident in DEMO_RESIDENTS:
            self.check(
                f"city hall issues {resident.name} a ResidentCard (kept in the wallet only)",
                lambda r=resident: self._resident_card(r, now),  # type: ignore[misc]
            )
        library = self.verifier(_LIBRARY)
        shown = self._present(
            seoyeon.name, self.cards[seoyeon.name], library, now, 10, ["age_over_19"]
        )
        self.check(
            "library checks seoyeon is an adult (discloses age_over_19 only)",
            lambda: _claims(library.verify_sd_jwt(shown, now=now + timedelta(seconds=10))),
        )
        self.check(
            "library is shown the same presentation again",
            lambda: _claims(library.verify_sd_jwt(shown, now=now + timedelta(seconds=12))),
        )
        self.check(
            "gangnam-gu issues jihoon a Qualification; mapo-gu verifies it",
            lambda: self._qualification(jihoon, now),
        )
        self.check(
            "city hall issues seoyeon a FamilyLoveCard; a museum verifies it",
            lambda: self._family_love_card(seoyeon, now),
        )
        self.check(
            "city hall checks jihoon's card and issues his visitor a VisitorPass; "
            "the gate syncs, goes offline and checks its QR code",
            lambda: self._visitor_pass(jihoon, now),
        )
        pending = self.gate.pending()
        self.send(
            [
                (
                    f"city hall's {_GATE_SITE}, back online, uploads {len(pending)} check-in "
                    "(a pseudonym, no personal data)",
                    hall.signer,
                    "visits",
                    "check_in_batch",
                    self.gate.batch_args(pending),
                )
            ]
        )
        self.gate.mark_uploaded(pending)
        # jihoon moves away: city hall revokes his resident card.
        hall.list.set(self.card_index[jihoon.name])
        self.send(
            [
                (
                    "city hall revokes jihoon's ResidentCard (anchors list version 2)",
                    hall.signer,
                    "status_lists",
                    "anchor",
                    hall.publish(self.now()),
                )
            ]
        )
        later = self.now()
        shown_revoked = self._present(
            jihoon.name, self.cards[jihoon.name], library, later, 0, ["district"]
        )
        self.check(
            "library is shown jihoon's revoked ResidentCard",
            lambda: _claims(library.verify_sd_jwt(shown_revoked, now=later)),
        )

    # -- the exchanges --------------------------------------------------------------------------

    def _wallets(self) -> str:
        root = wallets_dir(self.layout)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name in [r.name for r in DEMO_RESIDENTS] + [_VISITOR]:
            self.wallets[name] = Wallet.create(root / name)
        return f"did:key holders in {root}"

    def _resident_card(self, resident: Resident, now: datetime) -> str:
        hall = self.issuers[_HALL]
        wallet = self.wallets[resident.name]
        entry = hall.entry()
        claims, disclosable = resident_card_claims(
            given_name=resident.given_name,
            family_name=resident.family_name,
            birthdate=resident.birthdate,
            address=resident.address,
            district=resident.district,
            status=entry,
            on=now.date(),
        )
        claims["name_hangul"] = resident.name_hangul
        claims["phone"] = resident.phone
        card = issue_sd_jwt_vc(
            claims,
            issuer_key=hall.key,
            issuer=hall.did,
            vct=RESIDENT_CARD.vct,
            holder=self._holder_key(wallet),
            disclosable=[*disclosable, "name_hangul", "phone"],
            issued_at=now,
            expires_at=now + timedelta(days=365),
        )
        summary = wallet.receive(card, now=now)
        self.cards[resident.name] = summary.id
        self.card_index[resident.name] = entry.index
        return f"SD-JWT VC {summary.id} for {wallet.holder[:24]}..."

    def _holder_key(self, wallet: Wallet) -> PublicKey:
        return Keystore(wallet.path).public("holder")

    def _present(
        self,
        name: str,
        credential_id: str,
        verifier: Verifier,
        now: datetime,
        seconds: float,
        disclose: Sequence[str] = (),
    ) -> Any:
        at = now + timedelta(seconds=seconds)
        return self.wallets[name].present(
            credential_id,
            challenge=verifier.new_challenge(at),
            domain=verifier.domain,
            now=at,
            disclose=disclose,
        )

    def _qualification(self, resident: Resident, now: datetime) -> str:
        district = self.issuers[_DISTRICT]
        wallet = self.wallets[resident.name]
        credential = issue_credential(
            qualification_credential(
                issuer=district.did,
                holder=wallet.holder,
                qualification="전기기능사 Licensed electrician, class 1",
                license_number="EL-2025-0417",
                valid_from=now,
                valid_until=now + timedelta(days=3 * 365),
                status=district.entry(),
            ),
            district.key,
            verification_method=district.method,
            now=now,
        )
        stored = wallet.receive(credential, now=now)
        mapo = self.verifier(_MAPO)
        shown = self._present(resident.name, stored.id, mapo, now, 20)
        (verified,) = mapo.verify_presentation(
            shown, now=now + timedelta(seconds=20), expected_type="Qualification"
        )
        return f"{verified.claims['qualification']}, issued by {verified.issuer}"

    def _family_love_card(self, resident: Resident, now: datetime) -> str:
        hall = self.issuers[_HALL]
        wallet = self.wallets[resident.name]
        claims, disclosable = family_love_card_claims(
            children_birthdates=list(resident.children_birthdates),
            status=hall.entry(),
            on=now.date(),
        )
        card = issue_sd_jwt_vc(
            claims,
            issuer_key=hall.key,
            issuer=hall.did,
            vct=FAMILY_LOVE_CARD.vct,
            holder=self._holder_key(wallet),
            disclosable=disclosable,
            issued_at=now,
            expires_at=now + timedelta(days=365),
        )
        stored = wallet.receive(card, now=now)
        museum = self.verifier(_MUSEUM)
        shown = self._present(resident.name, stored.id, museum, now, 30, disclosable)
        verified = museum.verify_sd_jwt(
            shown, now=now + timedelta(seconds=30), expected_type="FamilyLoveCard"
        )
        return _claims(verified)

    def _visitor_pass(self, host: Resident, now: datetime) -> str:
        hall = self.issuers[_HALL]
        desk = self.verifier(_HALL_DESK)
        at = now + timedelta(seconds=40)
        shown = self._present(host.name, self.cards[host.name], desk, now, 40, ["district"])
        card = desk.verify_sd_jwt(shown, now=at, expected_type="ResidentCard")
        visitor = self.wallets[_VISITOR]
        issued = issue_credential(
            visitor_pass_credential(
                issuer=hall.did,
                visitor=visitor.holder,
                host=card.holder,
                district=str(card.claims["district"]),
                valid_from=at,
                valid_until=at + timedelta(hours=4),
                status=hall.entry(),
            ),
            hall.key,
            verification_method=hall.method,
            now=at,
        )
        stored = visitor.receive(issued, now=at)
        # Online, the gate syncs the day's passes; then the link is cut, and any ledger
        # question the offline check asked would fail it.
        link = _Link(self.node.chain.query, self.fetch)
        synced = self.gate.sync(link.query, link.fetch, [issued], now=at)
        link.up = False
        checked_at = at + timedelta(minutes=1)
        shown_pass = visitor.present(
            stored.id,
            challenge=self.gate.new_challenge(checked_at),
            domain=self.gate.domain,
            now=checked_at,
        )
        if not isinstance(shown_pass, dict):
            raise CivicError("a visitor pass is presented as JSON", reason="malformed_credential")
        qr = to_qr_payload(shown_pass)
        admitted = self.gate.check(qr, now=checked_at)
        return (
            f"QR payload of {len(qr)} characters; pass for "
            f"{admitted.credential.claims['district']}; checked offline against a snapshot of "
            f"{len(synced.ready)} pass(es), {link.calls_offline} ledger calls; check-in queued"
        )


class _Link:
    """The gate's network link: ``up`` while syncing; once down, a call fails and is counted."""

    def __init__(
        self, query: Callable[[str, str, dict[str, Any]], Any], fetch: Callable[[str], Any]
    ) -> None:
        self._query, self._fetch = query, fetch
        self.up = True
        self.calls_offline = 0

    def _offline(self) -> CivicError:
        self.calls_offline += 1
        return CivicError("the gate is offline", reason="gate_offline")

    def query(self, contract: str, method: str, args: dict[str, Any]) -> Any:
        if not self.up:
            raise self._offline()
        return self._query(contract, method, args)

    def fetch(self, url: str) -> Any:
        if not self.up:
            raise self._offline()
        return self._fetch(url)


def _claims(verified: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(verified.claims.items()))
