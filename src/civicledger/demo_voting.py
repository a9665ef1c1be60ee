"""The demo city's polls, end to end: plain functions that return data.

Run on a demo Seoul after the identity part (``civicledger.demo_identity``). Root registers a
registrar agency (the election office) and makes city hall a poll officer; city hall issues
resident cards to six fictional voters (their wallets in ``<city>/wallets/voter-N``) and opens
two polls: an open one (live tally) and a secret one whose key five trustees make by a
distributed key generation (``<city>/trustees/tN``). Voters register with a presentation (the
ledger gets a per-poll pseudonym), vote, one changes a vote, one tries to register twice; after
closing three trustees decrypt, the result is published and checked by the contract, and the
independent verifier recomputes everything from the ledger.

Times: polls open and close a few seconds after creation (block time), so the demo waits for
them; everything else reads the clock only through the ledger's checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from civicledger.agency.issuer import IssuerService, use_signing_key
from civicledger.agency.ledger import CityLedger
from civicledger.agency.poll_audit import verify_poll_in_city
from civicledger.agency.registrar import Registrar, Registration
from civicledger.agency.trustee import Trustee
from civicledger.agency.verifying import ChallengeStore, verify_file
from civicledger.city import CityDir
from civicledger.demo_steps import PartStep, run_step
from civicledger.errors import CivicError
from civicledger.services.identity.wallet import Wallet
from civicledger.services.voting import group
from civicledger.services.voting.ballot import ballot_context, encrypt_ballot, tracking_code

__all__ = ["DemoVoting", "VotingStep", "run_voting"]

VotingOutcome = Literal["ok", "refused"]

REGISTRAR = "election-office"
OPEN_POLL = "han-river-night-park"
SECRET_POLL = "youth-budget-2026"  # noqa: S105  (a poll id, not a password)
_HALL = "city-hall"
_VOTERS = (
    # (wallet, district, birthdate): fictional; given names below are placeholders.
    ("voter-1", "강남구 Gangnam-gu", "1971-05-02"),
    ("voter-2", "강남구 Gangnam-gu", "1988-09-17"),
    ("voter-3", "마포구 Mapo-gu", "1995-01-23"),
    ("voter-4", "마포구 Mapo-gu", "1963-12-08"),
    ("voter-5", "종로구 Jongno-gu", "2001-07-30"),
    ("voter-6", "종로구 Jongno-gu", "1979-03-11"),
)
_OPEN_CHOICES = (0, 0, 1, 0, 1, 0)
"""Yes, yes, no, yes, no, yes; voter-5 changes to yes."""
_SECRET_CHOICES = ((0, 2), (1,), (1, 2), (0,), (1,), (0, 1))
_TRUSTEES, _THRESHOLD = 5, 3


VotingStep = PartStep


@dataclass
class DemoVoting:
    steps: list[VotingStep] = field(default_factory=list)
    open_tally: Any = None
    secret_result: Any = None
    audit_ok: bool = False
    pseudonyms: dict[str, str] = field(default_factory=dict)
    """Wallet name -> its pseudonym in the secret poll (on the ledger)."""
    tracking_codes: dict[str, str] = field(default_factory=dict)


def run_voting(layout: CityDir, *, passphrase: str | None = None) -> DemoVoting:
    """Run the polls part of the demo; raises if a step that must work does not."""
    return _Flow(layout, passphrase).run()


class _Flow:
    def __init__(self, layout: CityDir, passphrase: str | None) -> None:
        self.layout = layout
        self.ledger = CityLedger(layout, passphrase)
        self.chain_id = layout.genesis().chain_id
        self.out = DemoVoting()
        self.wallets: dict[str, Wallet] = {}
        self.cards: dict[str, str] = {}
        self.trustees: list[Trustee] = []

    # -- steps ---------------------------------------------------------------------------------

    def step(self, title: str, action: Callable[[], str], *, refused: bool = False) -> None:
        run_step("voting", self.out.steps, title, action, refused=refused)

    def send(self, signer: str, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send(signer, "polls", method, args)

    # -- the flow ------------------------------------------------------------------------------

    def run(self) -> DemoVoting:
        self.step("root registers the election office (the polls' registrar)", self._registrar)
        self.step(
            "root makes city hall a poll officer",
            lambda: str(
                self.ledger.send(
                    "root", "governance", "grant_role", {"agency": _HALL, "role": "poll_officer"}
                )
                or "poll_officer"
            ),
        )
        self.step("city hall issues six voters resident cards (off the ledger)", self._cards)
        self.step("five trustees make their keys (off the ledger)", self._trustee_dirs)
        opens_ms = int(time.time() * 1000) + 8_000
        closes_ms = opens_ms + 4_000
        self.step(
            "city hall opens an open poll: Han River night park (live tally)",
            lambda: self._create(OPEN_POLL, "open", opens_ms, closes_ms),
        )
        self.step(
            "city hall opens a secret poll: youth budget priorities (3 of 5 trustees)",
            lambda: self._create(SECRET_POLL, "secret", opens_ms, closes_ms),
        )
        self.step(
            "voter-2 registers for both polls with a presentation",
            lambda: self._register_both("voter-2"),
        )
        self.step(
            "voter-2 votes before the polls open",
            lambda: self._vote_open("voter-2", 0),
            refused=True,
        )
        self.step("the trustees' key ceremony: join, deal, check", self._ceremony)
        for name in self.wallets:
            if name == "voter-2":
                continue
            self.step(
                f"{name} registers for both polls with a presentation",
                lambda n=name: self._register_both(n),  # type: ignore[misc]
            )
        self.step(
            "voter-1 tries to register again from another wallet key",
            lambda: (
                self._register(
                    "voter-1", SECRET_POLL, voter_key=Wallet.open(self._extra_wallet()).holder
                ).pseudonym
            ),
            refused=True,
        )
        self._wait_until(opens_ms)
        for name, choice, secret in zip(self.wallets, _OPEN_CHOICES, _SECRET_CHOICES, strict=True):
            self.step(
                f"{name} votes in both polls",
                lambda n=name, c=choice, s=secret: self._vote_both(n, c, s),  # type: ignore[misc]
            )
        self.step("voter-5 changes the open vote to yes", lambda: self._vote_open("voter-5", 0))
        self.step("live tally of the open poll", self._open_tally)
        self._wait_until(closes_ms)
        self.step(
            "voter-6 votes after closing", lambda: self._vote_open("voter-6", 1), refused=True
        )
        for trustee in self.trustees[:_THRESHOLD]:
            self.step(
                f"trustee {trustee.index(self._poll(SECRET_POLL))} posts partial decryptions",
                lambda t=trustee: self._decrypt(t),  # type: ignore[misc]
            )
        self.step("trustee 1 publishes the result (checked by the contract)", self._publish)
        self.step("civic poll verify: the secret poll, from the ledger alone", self._audit)
        return self.out

    # -- actions -------------------------------------------------------------------------------

    def _registrar(self) -> str:
        keystore = self.layout.keystore
        if REGISTRAR not in keystore.names():
            keystore.create(REGISTRAR)
        key = keystore.public(REGISTRAR)
        args = {"id": REGISTRAR, "name": "선거관리 Election Office (demo)", "keys": [key.did]}
        self.ledger.send("root", "governance", "register_agency", args)
        return f"agency {REGISTRAR} with key {key.did[:24]}..."

    def _cards(self) -> str:
        use_signing_key(self.layout, _HALL, f"{_HALL}.issuer")
        hall = IssuerService(self.ledger, _HALL)
        root = self.layout.root / "wallets"
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for number, (name, district, birthdate) in enumerate(_VOTERS, 1):
            wallet = Wallet.create(root / name)
            claims = {
                "given_name": f"Voter {number}",
                "family_name": "Demo",
                "birthdate": birthdate,
                "address": f"{district} (demo address {number})",
                "district": district,
            }
            issued = hall.issue("ResidentCard", wallet.holder, claims)
            self.cards[name] = wallet.receive(issued.credential, now=datetime.now(UTC)).id
            self.wallets[name] = wallet
        return f"{len(self.wallets)} wallets in {root}"

    def _extra_wallet(self) -> Path:
        path = self.layout.root / "wallets" / "voter-1-second-wallet"
        if not path.exists():
            Wallet.create(path)
        return path

    def _trustee_dirs(self) -> str:
        root = self.layout.root / "trustees"
        self.trustees = [Trustee.create(root / f"t{i}") for i in range(1, _TRUSTEES + 1)]
        return f"{_TRUSTEES} trustees in {root}"

    def _create(self, poll_id: str, mode: str, opens_ms: int, closes_ms: int) -> str:
        if mode == "open":
            question = {
                "ko": "한강공원 야간 개장을 연장할까요?",
                "en": "Extend the Han River parks' night opening?",
            }
            options = [{"ko": "예", "en": "Yes"}, {"ko": "아니요", "en": "No"}]
            selections = (1, 1)
        else:
            question = {
                "ko": "청년 예산의 우선순위는? (최대 두 개)",
                "en": "Youth budget priorities? (up to two)",
            }
            options = [
                {"ko": "주거 지원", "en": "Housing support"},
                {"ko": "일자리", "en": "Jobs"},
                {"ko": "문화 공간", "en": "Cultural spaces"},
            ]
            selections = (1, 2)
        args: dict[str, Any] = {
            "poll_id": poll_id,
            "question": question,
            "options": options,
            "min_selections": selections[0],
            "max_selections": selections[1],
            "mode": mode,
            "eligibility": {"credential_type": "ResidentCard", "districts": [], "min_age": 19},
            "registrar": REGISTRAR,
            "opens_ms": opens_ms,
            "closes_ms": closes_ms,
            "observers": ["mapo-gu"],
            "rules": {"ko": "만 19세 이상 서울 시민", "en": "Seoul residents aged 19 and over"},
        }
        if mode == "secret":
            args["trustees"] = [t.did for t in self.trustees]
            args["threshold"] = _THRESHOLD
        self.send(_HALL, "create", args)
        return f"{poll_id}: {len(options)} options, {mode}"

    def _poll(self, poll_id: str) -> dict[str, Any]:
        record = self.ledger.query("polls", "poll", {"poll_id": poll_id})
        assert isinstance(record, dict)
        return record

    def _ceremony(self) -> str:
        for step in ("join", "deal", "ack"):
            for trustee in self.trustees:
                getattr(trustee, step)(self.ledger, SECRET_POLL)
        poll = self._poll(SECRET_POLL)
        return f"phase {poll['phase']}; public key {str(poll['public_key'])[:16]}..."

    def _register(self, name: str, poll_id: str, *, voter_key: str | None = None) -> Registration:
        wallet = self.wallets[name]
        domain = f"urn:civicledger:{self.chain_id}:registrar:{REGISTRAR}"
        now = datetime.now(UTC)
        challenge = ChallengeStore(self.layout).new(domain, now)
        shown = wallet.present(
            self.cards[name],
            challenge=challenge,
            domain=domain,
            now=now,
            disclose=["district", "age_over_19"],
        )
        key = voter_key or wallet.poll_key(poll_id).public.did
        return Registrar(self.ledger, REGISTRAR).register(
            poll_id,
            shown,
            key,
            lambda presentation, kind: verify_file(
                self.ledger,
                presentation,
                challenge=challenge,
                domain=domain,
                now=datetime.now(UTC),
                expected_type=kind,
            ),
        )

    def _register_both(self, name: str) -> str:
        self._register(name, OPEN_POLL)
        made = self._register(name, SECRET_POLL)
        self.out.pseudonyms[name] = made.pseudonym
        return f"district {made.district}; pseudonym {made.pseudonym[:16]}..."

    def _vote_open(self, name: str, choice: int) -> str:
        key = self.wallets[name].poll_key(OPEN_POLL)
        self.send_as(key, "cast", {"poll_id": OPEN_POLL, "choices": [choice]})
        return f"choice {choice}"

    def send_as(self, key: Any, method: str, args: dict[str, Any]) -> Any:
        return self.ledger.send_as(key, "polls", method, args)

    def _vote_both(self, name: str, choice: int, secret: tuple[int, ...]) -> str:
        self._vote_open(name, choice)
        poll = self._poll(SECRET_POLL)
        key = self.wallets[name].poll_key(SECRET_POLL)
        context = ballot_context(poll["chain_id"], SECRET_POLL, key.public.did)
        selections = [1 if i in secret else 0 for i in range(len(poll["options"]))]
        ballot, _ = encrypt_ballot(
            group.point_from_hex(poll["public_key"]),
            selections,
            min_selections=int(poll["min_selections"]),
            max_selections=int(poll["max_selections"]),
            context=context,
        )
        self.send_as(key, "cast_secret", {"poll_id": SECRET_POLL, "ballot": ballot.to_json()})
        code = tracking_code(ballot, context)
        self.out.tracking_codes[name] = code
        return f"open: {choice}; secret ballot tracking code {code[:16]}..."

    def _open_tally(self) -> str:
        tally = self.ledger.query("polls", "tally", {"poll_id": OPEN_POLL})
        self.out.open_tally = tally
        return f"counts {tally['counts']} (yes, no)"

    def _decrypt(self, trustee: Trustee) -> str:
        trustee.decrypt(self.ledger, SECRET_POLL)
        return "with a proof for every option"

    def _publish(self) -> str:
        counts = self.trustees[0].publish(self.ledger, SECRET_POLL)
        self.out.secret_result = counts
        return f"counts {counts} (housing, jobs, culture)"

    def _audit(self) -> str:
        report = verify_poll_in_city(self.layout, SECRET_POLL)
        self.out.audit_ok = report.ok
        if not report.ok:
            failed = [c.name for c in report.checks if not c.ok]
            raise CivicError(f"the poll audit failed: {failed}", reason="audit_failed")
        return f"{len(report.checks)} checks passed; result {report.result}"

    def _wait_until(self, moment_ms: int) -> None:
        """Wait for the wall clock (block time follows it) to pass ``moment_ms``."""
        delay = (moment_ms + 50) / 1000 - time.time()
        if delay > 0:
            time.sleep(delay)
