"""The ``polls`` contract (mVoting): one eligible person, one counted vote, open or secret.

A ``poll_officer`` agency creates a poll with its question and options (Korean and English), its
eligibility (a credential type plus conditions), its schedule (block time), how many options a
ballot selects, its registrar agency, its observers, its rules and its mode.

Eligibility is checked *off* the ledger by the poll's registrar agency: it verifies the
resident's presentation, derives a per-poll pseudonym (an HMAC over the poll id and the
credential's status-list entry, so one credential yields one pseudonym per poll whichever wallet
presents it) and signs ``register_voter(poll_id, pseudonym, voter_key, district)``. The voter's
wallet made ``voter_key`` for this poll only. The ledger learns pseudonym, voter key and a coarse
district, never who the person is.

Open polls count choices in the clear: the tally per option and per district is readable live.
Secret polls encrypt each ballot under a key that trustees generate jointly (``dkg``); every
ballot carries proofs that it selects valid options (``ballot.verify_ballot``); the contract
keeps the homomorphic sum per option, and after closing k trustees post partial decryptions with
proofs, from which anyone can publish the counts, which the contract checks before storing.

Invariants:

- Times are block times (``ctx.time_ms``). Registration runs from creation until ``closes_ms``;
  votes are accepted in ``[opens_ms, closes_ms)``; partial decryptions only from ``closes_ms``.
- A pseudonym is registered once per poll and a voter key serves one pseudonym; a pseudonym's
  later vote replaces its earlier one, so each counts once: running tallies (open) and aggregate
  ciphertexts (secret) subtract the previous ballot before adding the new one.
- Turnout (``voted``) is the number of distinct pseudonyms with a ballot; it never decreases.
  ``series/<poll>/<time>`` has one entry per block time at which it changed.
- A secret poll's key ceremony can only progress before ``opens_ms``, so a poll whose key is not
  ready at opening never accepts a ballot (``key_not_ready``). Any complaint fails the ceremony
  for good: a new poll must be created.
- No event or record of a secret poll shows a choice; its tally is ``null`` until a result whose
  every count matches the combined decryption has been published.
- Every list is bounded: options, trustees, observers, districts (``MAX_*``).

Ballot context: ``create`` stores the chain id the transaction was signed for (``ctx.chain_id``,
checked against the node's genesis); every ballot of the poll is bound to
``ballot_context(poll.chain_id, poll_id, voter_key)``. The voter key is fresh per poll, so a
ballot cannot be replayed by another voter, in another poll or on another chain.

State (under ``polls/``):
    poll/<poll>                     the definition, phase, joint key, result
    total/<poll>                    {"registered", "voted", "districts", "counts" (open)}
    aggregate/<poll>                per option, the sum of the latest ballots' ciphertexts (secret)
    district/<poll>/<district>      {"district", "registered", "voted", "counts" (open)}
    voter/<poll>/<pseudonym>        {"pseudonym", "voter_key", "district", ...}
    key/<poll>/<voter_key>          the pseudonym that voter key votes for
    ballot/<poll>/<pseudonym>       the latest ballot with its tracking code and tx id
    series/<poll>/<time_ms, 16>     {"time_ms", "voted"}: turnout after that block
    trustee/<poll>/<j, 2 digits>    trustee j's ceremony record (1-based)
    partial/<poll>/<j, 2 digits>    trustee j's partial decryptions
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from civicledger.contracts.base import (
    AGENCY_MEMBER,
    PUBLIC,
    Args,
    Contract,
    QueryContext,
    TxContext,
    has_role,
    query,
    transaction,
)
from civicledger.contracts.governance import CREDENTIAL_TYPE_PATTERN
from civicledger.errors import CivicError
from civicledger.ledger.genesis import AGENCY_ID_PATTERN, check_did_key
from civicledger.services.voting import ballot as ballots
from civicledger.services.voting import dkg, elgamal, group
from civicledger.services.voting.proofs import DleqProof

__all__ = [
    "CHANGE_RULE",
    "CONTRACT_NAME",
    "DISTRICT_PATTERN",
    "MAX_DISTRICTS",
    "MAX_OBSERVERS",
    "MAX_OPTIONS",
    "MAX_TRUSTEES",
    "POLL_ID_PATTERN",
    "POLL_OFFICER_ROLE",
    "SUPPORTED_MIN_AGES",
    "Polls",
    "partial_context",
    "share_context",
]

CONTRACT_NAME = "polls"
POLL_OFFICER_ROLE = "poll_officer"
POLL_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{2,62}$"
DISTRICT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""A coarse district code, e.g. ``jongno-gu``."""
PSEUDONYM_PATTERN = r"^[0-9a-f]{64}$"
OBSERVER_PATTERN = r"^(did:(key|civic):[A-Za-z0-9._-]{1,128}|[a-z0-9][a-z0-9-]{1,62})$"
"""An agency id (which must exist) or a DID (a civic group's key, say)."""
POINT_PATTERN = r"^[0-9a-f]{64}$"
SCALAR_PATTERN = r"^[0-9a-f]{64}$"
SEALED_SHARE_PATTERN = r"^[A-Za-z0-9_-]{1,2048}$"
"""``dkg.encrypt_share`` output: unpadded base64url of a sealed box."""
MAX_TIME_MS = 2**53 - 1
MAX_TEXT = 500
MAX_RULES_TEXT = 4000
MAX_OPTIONS = 20
MAX_TRUSTEES = 20
MAX_OBSERVERS = 50
MAX_DISTRICTS = 100
"""Districts a poll may restrict to, and distinct districts its voters may come from."""
SUPPORTED_MIN_AGES = (19,)
"""Age conditions the registrar can check: the resident card's ``age_over_19`` claim."""
MAX_PAGE = 1000
CHANGE_RULE = {
    "ko": "투표 마감 전까지 투표를 변경할 수 있으며, 마지막으로 제출한 투표만 집계됩니다.",
    "en": "You may change your vote until the poll closes; only your last vote is counted.",
}
"""Appended to every poll's rules, in both languages: how re-voting works."""


# -- argument models ----------------------------------------------------------------------------


class Text(Args):
    ko: str = Field(min_length=1, max_length=MAX_TEXT)
    en: str = Field(min_length=1, max_length=MAX_TEXT)


class RulesText(Args):
    ko: str = Field(min_length=1, max_length=MAX_RULES_TEXT)
    en: str = Field(min_length=1, max_length=MAX_RULES_TEXT)


class Eligibility(Args):
    credential_type: str = Field(pattern=CREDENTIAL_TYPE_PATTERN)
    """The credential a voter presents to the registrar (``ResidentCard``)."""
    districts: list[str] = Field(default_factory=list, max_length=MAX_DISTRICTS)
    """Districts whose residents may vote; empty means any."""
    min_age: int | None = Field(default=None, ge=0, le=150)
    """A minimum age; only ``SUPPORTED_MIN_AGES`` can be checked (``unsupported_condition``)."""

    @field_validator("districts")
    @classmethod
    def _district_codes(cls, districts: list[str]) -> list[str]:
        for district in districts:
            if not _matches(DISTRICT_PATTERN, district):
                raise ValueError(f"{district[:70]!r} is not a district code")
        if len(set(districts)) != len(districts):
            raise ValueError("districts repeat")
        return districts


class CreatePoll(Args):
    poll_id: str = Field(pattern=POLL_ID_PATTERN)
    question: Text
    options: list[Text] = Field(min_length=2, max_length=MAX_OPTIONS)
    min_selections: int = Field(ge=0, le=MAX_OPTIONS)
    max_selections: int = Field(ge=1, le=MAX_OPTIONS)
    mode: Literal["open", "secret"]
    eligibility: Eligibility
    registrar: str = Field(pattern=AGENCY_ID_PATTERN)
    """The agency that checks presentations and registers voters; it must be active."""
    opens_ms: int = Field(ge=0, le=MAX_TIME_MS)
    closes_ms: int = Field(ge=0, le=MAX_TIME_MS)
    observers: list[str] = Field(default_factory=list, max_length=MAX_OBSERVERS)
    rules: RulesText
    """The creator's rules; the contract appends ``CHANGE_RULE``."""
    trustees: list[str] = Field(default_factory=list, max_length=MAX_TRUSTEES)
    """Secret mode: the trustees' did:keys, in order (trustee j is ``trustees[j - 1]``)."""
    threshold: int | None = Field(default=None, ge=1, le=MAX_TRUSTEES)
    """Secret mode: how many trustees decrypt the result."""

    @field_validator("observers")
    @classmethod
    def _observer_ids(cls, observers: list[str]) -> list[str]:
        for observer in observers:
            if not _matches(OBSERVER_PATTERN, observer):
                raise ValueError(f"{observer[:70]!r} is neither an agency id nor a DID")
        return observers

    @field_validator("trustees")
    @classmethod
    def _trustee_keys(cls, trustees: list[str]) -> list[str]:
        return [check_did_key(t) for t in trustees]


class PollRef(Args):
    poll_id: str = Field(pattern=POLL_ID_PATTERN)


class AddObserver(PollRef):
    observer: str = Field(pattern=OBSERVER_PATTERN)


class RegisterVoter(PollRef):
    pseudonym: str = Field(pattern=PSEUDONYM_PATTERN)
    """The registrar's per-poll pseudonym of the credential (hex)."""
    voter_key: str
    """The did:key the voter's wallet made for this poll; it signs the votes."""
    district: str = Field(pattern=DISTRICT_PATTERN)

    @field_validator("voter_key")
    @classmethod
    def _did_key(cls, value: str) -> str:
        return check_did_key(value)


class Cast(PollRef):
    choices: list[int] = Field(max_length=MAX_OPTIONS)
    """Indices of the selected options (0-based)."""


class CastSecret(PollRef):
    ballot: dict[str, Any]
    """``ballot.EncryptedBallot.to_json()``."""


class TrusteeJoin(PollRef):
    box_key: str = Field(pattern=POINT_PATTERN)
    """The trustee's X25519 public key (hex) to which the others seal its shares."""


class TrusteeDeal(PollRef):
    commitments: list[str] = Field(min_length=1, max_length=MAX_TRUSTEES)
    """Feldman commitments to the dealer's polynomial coefficients (k points, hex)."""
    shares: dict[str, str] = Field(max_length=MAX_TRUSTEES)
    """``str(j)`` → ``dkg.encrypt_share(box_key_j, i, j, s_ij, share_context(...))`` for every
    other trustee j."""


class DleqProofArgs(Args):
    challenge: str = Field(pattern=SCALAR_PATTERN)
    response: str = Field(pattern=SCALAR_PATTERN)


class TrusteeDealWithProof(TrusteeDeal):
    possession: DleqProofArgs
    """``dkg.prove_possession(dealing, j, possession_context(chain_id, poll_id))``: the dealer
    knows the secret behind its first commitment (stops a last dealer from choosing the key)."""


class TrusteeAck(PollRef):
    complaints: list[int] = Field(max_length=MAX_TRUSTEES)
    """Dealers (1-based) whose share to the signer did not verify; empty when all did."""


class Partial(Args):
    D: str = Field(pattern=POINT_PATTERN)
    """``A^{x_j}`` for the option's aggregate ``A`` (the identity when no one voted)."""
    proof: DleqProofArgs


class DecryptShare(PollRef):
    partials: list[Partial] = Field(min_length=1, max_length=MAX_OPTIONS)
    """One partial decryption of each option's aggregate ciphertext, in option order."""


class PublishResult(PollRef):
    counts: list[int] = Field(min_length=1, max_length=MAX_OPTIONS)


class ListPolls(Args):
    after: str = Field(default="", max_length=64)
    """Paginate: the ``next`` cursor of the previous page (any string; polls sort after it)."""
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


class SeriesRef(PollRef):
    after_ms: int = Field(default=-1, ge=-1, le=MAX_TIME_MS)
    limit: int = Field(default=MAX_PAGE, ge=1, le=MAX_PAGE)


class BallotRef(PollRef):
    pseudonym: str = Field(pattern=PSEUDONYM_PATTERN)


class VoterKeyRef(PollRef):
    voter_key: str = Field(max_length=128)


class ListBallots(PollRef):
    after: str = Field(default="", pattern=r"^([0-9a-f]{64})?$")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


# -- keys ---------------------------------------------------------------------------------------


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _poll_key(poll_id: str) -> str:
    return f"poll/{poll_id}"


def _total_key(poll_id: str) -> str:
    return f"total/{poll_id}"


def _aggregate_key(poll_id: str) -> str:
    return f"aggregate/{poll_id}"


def _district_key(poll_id: str, district: str) -> str:
    return f"district/{poll_id}/{district}"


def _voter_key(poll_id: str, pseudonym: str) -> str:
    return f"voter/{poll_id}/{pseudonym}"


def _key_key(poll_id: str, voter_key: str) -> str:
    return f"key/{poll_id}/{voter_key}"


def _ballot_key(poll_id: str, pseudonym: str) -> str:
    return f"ballot/{poll_id}/{pseudonym}"


def _series_key(poll_id: str, time_ms: int) -> str:
    return f"series/{poll_id}/{time_ms:016d}"


def _trustee_key(poll_id: str, index: int) -> str:
    return f"trustee/{poll_id}/{index:02d}"


def _partial_key(poll_id: str, index: int) -> str:
    return f"partial/{poll_id}/{index:02d}"


# -- the contract -------------------------------------------------------------------------------


class Polls(Contract):
    name = CONTRACT_NAME

    @transaction(CreatePoll, policy=has_role(POLL_OFFICER_ROLE))
    def create(self, ctx: TxContext, args: CreatePoll) -> dict[str, Any]:
        """Create a poll (open or secret); the signer's agency becomes its owner."""
        self._check_definition(ctx, args)
        if ctx.get(_poll_key(args.poll_id)) is not None:
            ctx.fail("poll_exists", f"poll {args.poll_id!r} already exists")
        record: dict[str, Any] = {
            "poll_id": args.poll_id,
            "chain_id": ctx.chain_id,
            "agency": ctx.authority.agency_of(ctx.signer),
            "created_by": ctx.signer,
            "created_ms": ctx.time_ms,
            "created_height": ctx.height,
            "tx_id": ctx.tx_id,
            "question": args.question.model_dump(),
            "options": [option.model_dump() for option in args.options],
            "min_selections": args.min_selections,
            "max_selections": args.max_selections,
            "mode": args.mode,
            "eligibility": args.eligibility.model_dump(),
            "registrar": args.registrar,
            "opens_ms": args.opens_ms,
            "closes_ms": args.closes_ms,
            "observers": list(args.observers),
            "rules": {
                lang: f"{getattr(args.rules, lang)}\n\n{CHANGE_RULE[lang]}" for lang in ("ko", "en")
            },
            "trustees": list(args.trustees),
            "threshold": args.threshold,
            "phase": "ready" if args.mode == "open" else "joining",
            "failure": None,
            "public_key": None,
            "result": None,
        }
        ctx.put(_poll_key(args.poll_id), record)
        total: dict[str, Any] = {"registered": 0, "voted": 0, "districts": 0}
        if args.mode == "open":
            total["counts"] = [0] * len(args.options)
        else:
            zero = elgamal.ZERO.to_json()
            ctx.put(_aggregate_key(args.poll_id), [zero] * len(args.options))
            for index, did in enumerate(args.trustees, start=1):
                ctx.put(_trustee_key(args.poll_id, index), _new_trustee(index, did))
        ctx.put(_total_key(args.poll_id), total)
        ctx.emit(
            "poll_created",
            poll_id=args.poll_id,
            mode=args.mode,
            opens_ms=args.opens_ms,
            closes_ms=args.closes_ms,
        )
        return record

    @transaction(AddObserver, policy=AGENCY_MEMBER)
    def add_observer(self, ctx: TxContext, args: AddObserver) -> list[str]:
        """Register one more observer of a poll (its creating agency, before closing)."""
        poll = self._poll(ctx, args.poll_id)
        if ctx.authority.agency_of(ctx.signer) != poll["agency"]:
            ctx.fail("not_poll_agency", "only the agency that created the poll adds observers")
        if ctx.time_ms >= poll["closes_ms"]:
            ctx.fail("poll_closed", "the poll has closed")
        observers: list[str] = poll["observers"]
        if args.observer in observers:
            ctx.fail("duplicate_observer", f"{args.observer!r} already observes this poll")
        if len(observers) >= MAX_OBSERVERS:
            ctx.fail("too_many_observers", f"a poll has at most {MAX_OBSERVERS} observers")
        self._check_observer(ctx, args.observer)
        poll["observers"] = [*observers, args.observer]
        ctx.put(_poll_key(args.poll_id), poll)
        ctx.emit("observer_added", poll_id=args.poll_id, observer=args.observer)
        return list(poll["observers"])

    @transaction(RegisterVoter, policy=AGENCY_MEMBER)
    def register_voter(self, ctx: TxContext, args: RegisterVoter) -> dict[str, Any]:
        """The registrar records an eligible voter's pseudonym, voter key and district."""
        poll = self._poll(ctx, args.poll_id)
        if ctx.authority.agency_of(ctx.signer) != poll["registrar"]:
            ctx.fail("not_registrar", f"only {poll['registrar']!r} registers this poll's voters")
        if ctx.time_ms >= poll["closes_ms"]:
            ctx.fail("poll_closed", "the poll has closed")
        districts: list[str] = poll["eligibility"]["districts"]
        if districts and args.district not in districts:
            ctx.fail("district_not_eligible", f"district {args.district!r} may not vote here")
        if ctx.get(_voter_key(args.poll_id, args.pseudonym)) is not None:
            ctx.fail("already_registered", "this credential is already registered for the poll")
        if ctx.get(_key_key(args.poll_id, args.voter_key)) is not None:
            ctx.fail("voter_key_in_use", "this voter key already serves another registration")
        total = ctx.get(_total_key(args.poll_id))
        district_key = _district_key(args.poll_id, args.district)
        district = ctx.get(district_key)
        if district is None:
            if total["districts"] >= MAX_DISTRICTS:
                ctx.fail("too_many_districts", f"a poll counts at most {MAX_DISTRICTS} districts")
            total["districts"] += 1
            district = {"district": args.district, "registered": 0, "voted": 0}
            if poll["mode"] == "open":
                district["counts"] = [0] * len(poll["options"])
        district["registered"] += 1
        total["registered"] += 1
        record = {
            "pseudonym": args.pseudonym,
            "voter_key": args.voter_key,
            "district": args.district,
            "registered_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_voter_key(args.poll_id, args.pseudonym), record)
        ctx.put(_key_key(args.poll_id, args.voter_key), args.pseudonym)
        ctx.put(district_key, district)
        ctx.put(_total_key(args.poll_id), total)
        ctx.emit(
            "voter_registered",
            poll_id=args.poll_id,
            district=args.district,
            registered=total["registered"],
        )
        return record

    @transaction(Cast, policy=PUBLIC)
    def cast(self, ctx: TxContext, args: Cast) -> dict[str, Any]:
        """Vote in an open poll (signed by a registered voter key); replaces an earlier vote."""
        poll, voter = self._voter_for_cast(ctx, args.poll_id, "open")
        choices = args.choices
        options = len(poll["options"])
        if len(set(choices)) != len(choices):
            ctx.fail("bad_choices", "an option is selected twice")
        if any(c < 0 or c >= options for c in choices):
            ctx.fail("bad_choices", f"options are numbered 0 to {options - 1}")
        if not poll["min_selections"] <= len(choices) <= poll["max_selections"]:
            ctx.fail(
                "bad_choices",
                f"select between {poll['min_selections']} and {poll['max_selections']} options",
            )
        previous = ctx.get(_ballot_key(args.poll_id, voter["pseudonym"]))
        total = ctx.get(_total_key(args.poll_id))
        district_key = _district_key(args.poll_id, voter["district"])
        district = ctx.get(district_key)
        if previous is not None:
            for choice in previous["choices"]:
                total["counts"][choice] -= 1
                district["counts"][choice] -= 1
        for choice in choices:
            total["counts"][choice] += 1
            district["counts"][choice] += 1
        ctx.put(district_key, district)
        ctx.put(_total_key(args.poll_id), total)
        record = self._store_ballot(ctx, poll, voter, previous, {"choices": sorted(choices)})
        ctx.emit(
            "vote_cast",
            poll_id=args.poll_id,
            turnout=ctx.get(_total_key(args.poll_id))["voted"],
            district=voter["district"],
        )
        return record

    @transaction(CastSecret, policy=PUBLIC)
    def cast_secret(self, ctx: TxContext, args: CastSecret) -> dict[str, Any]:
        """Vote in a secret poll with an encrypted ballot and its proofs; replaces an earlier."""
        poll, voter = self._voter_for_cast(ctx, args.poll_id, "secret")
        if poll["phase"] != "ready":
            ctx.fail("key_not_ready", "the trustees' key ceremony did not finish before opening")
        context = ballots.ballot_context(poll["chain_id"], args.poll_id, ctx.signer)
        try:
            encrypted = ballots.EncryptedBallot.from_json(args.ballot)
            ballots.verify_ballot(
                group.point_from_hex(poll["public_key"]),
                encrypted,
                options=len(poll["options"]),
                min_selections=poll["min_selections"],
                max_selections=poll["max_selections"],
                context=context,
            )
            code = ballots.tracking_code(encrypted, context)
        except CivicError as e:
            ctx.fail(e.reason, str(e))
        previous = ctx.get(_ballot_key(args.poll_id, voter["pseudonym"]))
        aggregate = [elgamal.Ciphertext.from_json(c) for c in ctx.get(_aggregate_key(args.poll_id))]
        if previous is not None:
            old = ballots.EncryptedBallot.from_json(previous["ballot"])
            aggregate = [elgamal.sub(a, c) for a, c in zip(aggregate, old.selections, strict=True)]
        aggregate = [
            elgamal.add(a, c) for a, c in zip(aggregate, encrypted.selections, strict=True)
        ]
        ctx.put(_aggregate_key(args.poll_id), [c.to_json() for c in aggregate])
        record = self._store_ballot(
            ctx, poll, voter, previous, {"ballot": encrypted.to_json(), "tracking_code": code}
        )
        ctx.emit(
            "vote_cast",
            poll_id=args.poll_id,
            turnout=ctx.get(_total_key(args.poll_id))["voted"],
            district=voter["district"],
            tracking_code=code,
        )
        return {key: value for key, value in record.items() if key != "ballot"}

    # -- the trustees' key ceremony (secret mode) ------------------------------------------------

    @transaction(TrusteeJoin, policy=PUBLIC)
    def trustee_join(self, ctx: TxContext, args: TrusteeJoin) -> dict[str, Any]:
        """A trustee posts the X25519 key its shares are sealed to; all joined → ``dealing``."""
        poll, trustee = self._trustee_step(ctx, args.poll_id, "joining")
        if trustee["box_key"] is not None:
            ctx.fail("already_joined", "this trustee has joined")
        trustee["box_key"] = args.box_key
        trustee["joined_ms"] = ctx.time_ms
        ctx.put(_trustee_key(args.poll_id, trustee["index"]), trustee)
        if all(t["box_key"] is not None for t in self._trustees(ctx, poll)):
            self._set_phase(ctx, poll, "dealing")
        ctx.emit("trustee_joined", poll_id=args.poll_id, trustee=trustee["index"])
        return trustee

    @transaction(TrusteeDealWithProof, policy=PUBLIC)
    def trustee_deal(self, ctx: TxContext, args: TrusteeDealWithProof) -> dict[str, Any]:
        """A trustee posts its commitments and sealed shares; all dealt → ``checking``."""
        poll, trustee = self._trustee_step(ctx, args.poll_id, "dealing")
        if trustee["commitments"] is not None:
            ctx.fail("already_dealt", "this trustee has dealt")
        if len(args.commitments) != poll["threshold"]:
            ctx.fail("bad_commitments", f"a dealing commits to {poll['threshold']} coefficients")
        try:
            commitments = [group.point_from_hex(c) for c in args.commitments]
            possession = DleqProof.from_json(args.possession.model_dump())
        except CivicError as e:
            ctx.fail("bad_commitments", str(e))
        context = possession_context(poll["chain_id"], poll["poll_id"])
        if not dkg.verify_possession(commitments, trustee["index"], possession, context):
            ctx.fail(
                "bad_possession_proof",
                "the dealing does not prove knowledge of its first coefficient",
            )
        others = {str(j) for j in range(1, len(poll["trustees"]) + 1) if j != trustee["index"]}
        if set(args.shares) != others:
            ctx.fail("bad_shares", "a dealing seals one share to every other trustee")
        for j, sealed in sorted(args.shares.items()):
            if not _matches(SEALED_SHARE_PATTERN, sealed):
                ctx.fail("bad_shares", f"the share for trustee {j} is not base64url")
        trustee["commitments"] = list(args.commitments)
        trustee["shares"] = dict(sorted(args.shares.items(), key=lambda item: int(item[0])))
        trustee["dealt_ms"] = ctx.time_ms
        ctx.put(_trustee_key(args.poll_id, trustee["index"]), trustee)
        if all(t["commitments"] is not None for t in self._trustees(ctx, poll)):
            self._set_phase(ctx, poll, "checking")
        ctx.emit("trustee_dealt", poll_id=args.poll_id, trustee=trustee["index"])
        return trustee

    @transaction(TrusteeAck, policy=PUBLIC)
    def trustee_ack(self, ctx: TxContext, args: TrusteeAck) -> dict[str, Any]:
        """A trustee confirms its shares verified, or names the dealers whose did not."""
        poll, trustee = self._trustee_step(ctx, args.poll_id, "checking")
        if trustee["acked"]:
            ctx.fail("already_acked", "this trustee has acknowledged")
        n = len(poll["trustees"])
        complaints = sorted(set(args.complaints))
        if len(complaints) != len(args.complaints) or any(
            c < 1 or c > n or c == trustee["index"] for c in complaints
        ):
            ctx.fail("bad_complaint", f"complaints name other trustees, 1 to {n}, once each")
        trustee["acked"] = True
        trustee["complaints"] = complaints
        trustee["acked_ms"] = ctx.time_ms
        ctx.put(_trustee_key(args.poll_id, trustee["index"]), trustee)
        if complaints:
            poll["failure"] = f"trustee {trustee['index']} complained about dealers {complaints}"
            self._set_phase(ctx, poll, "failed")
        else:
            trustees = self._trustees(ctx, poll)
            if all(t["acked"] for t in trustees):
                self._finish_ceremony(ctx, poll, trustees)
        ctx.emit(
            "trustee_acked",
            poll_id=args.poll_id,
            trustee=trustee["index"],
            complaints=complaints,
        )
        return trustee

    # -- the result (secret mode) ---------------------------------------------------------------

    @transaction(DecryptShare, policy=PUBLIC)
    def decrypt_share(self, ctx: TxContext, args: DecryptShare) -> dict[str, Any]:
        """A trustee posts its partial decryption of every option's aggregate, after closing."""
        poll = self._poll(ctx, args.poll_id)
        if poll["mode"] != "secret":
            ctx.fail("wrong_mode", "open polls are counted in the clear")
        trustee = self._signer_trustee(ctx, poll)
        if poll["phase"] != "ready":
            ctx.fail("key_not_ready", "the key ceremony did not finish")
        if ctx.time_ms < poll["closes_ms"]:
            ctx.fail("poll_not_closed", "partial decryptions are posted after closing")
        if ctx.get(_partial_key(args.poll_id, trustee["index"])) is not None:
            ctx.fail("share_exists", "this trustee has posted its partial decryptions")
        aggregate = [elgamal.Ciphertext.from_json(c) for c in ctx.get(_aggregate_key(args.poll_id))]
        if len(args.partials) != len(aggregate):
            ctx.fail("bad_partial", f"one partial decryption per option ({len(aggregate)})")
        vk = group.point_from_hex(trustee["verification_key"])
        for i, (partial, ciphertext) in enumerate(zip(args.partials, aggregate, strict=True)):
            context = partial_context(poll["chain_id"], poll["poll_id"], trustee["index"], i)
            try:
                d = group.point_from_hex(partial.D, allow_identity=True)
                proof = DleqProof.from_json(partial.proof.model_dump())
            except CivicError as e:
                ctx.fail("bad_partial", f"option {i}: {e}")
            if not dkg.verify_partial(vk, ciphertext.alpha, d, proof, context):
                ctx.fail("bad_partial", f"option {i}: the proof of decryption does not hold")
        record = {
            "trustee": trustee["index"],
            "did": ctx.signer,
            "partials": [p.model_dump() for p in args.partials],
            "time_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_partial_key(args.poll_id, trustee["index"]), record)
        ctx.emit("partial_decryption", poll_id=args.poll_id, trustee=trustee["index"])
        return record

    @transaction(PublishResult, policy=PUBLIC)
    def publish_result(self, ctx: TxContext, args: PublishResult) -> dict[str, Any]:
        """Publish a secret poll's counts; stored only if they match the combined decryption."""
        poll = self._poll(ctx, args.poll_id)
        if poll["mode"] != "secret":
            ctx.fail("wrong_mode", "open polls are counted in the clear")
        allowed = ctx.authority.has_role(ctx.signer, POLL_OFFICER_ROLE)
        if not allowed and ctx.signer not in poll["trustees"]:
            ctx.fail("not_allowed", "a poll officer or one of the poll's trustees publishes")
        if poll["result"] is not None:
            ctx.fail("result_exists", "the result is published")
        if ctx.time_ms < poll["closes_ms"]:
            ctx.fail("poll_not_closed", "the result is published after closing")
        k = poll["threshold"]
        posted = [record for _, record in ctx.scan(f"partial/{args.poll_id}/", MAX_TRUSTEES)]
        if len(posted) < k:
            ctx.fail("not_enough_shares", f"{len(posted)} of {k} partial decryptions posted")
        used = posted[:k]
        indices = [record["trustee"] for record in used]
        aggregate = [elgamal.Ciphertext.from_json(c) for c in ctx.get(_aggregate_key(args.poll_id))]
        if len(args.counts) != len(aggregate):
            ctx.fail("wrong_result", f"one count per option ({len(aggregate)})")
        voted = ctx.get(_total_key(args.poll_id))["voted"]
        for i, (count, ciphertext) in enumerate(zip(args.counts, aggregate, strict=True)):
            if count < 0 or count > voted:
                ctx.fail("wrong_result", f"option {i}: {count} is not between 0 and {voted}")
            shares = {
                record["trustee"]: group.point_from_hex(
                    record["partials"][i]["D"], allow_identity=True
                )
                for record in used
            }
            combined = dkg.combine_partials(shares)
            message = group.sub(ciphertext.beta, combined)
            if group.base_mul(count) != message:
                ctx.fail("wrong_result", f"option {i}: the decryption is not {count}")
        result = {
            "counts": list(args.counts),
            "voted": voted,
            "trustees": indices,
            "published_by": ctx.signer,
            "time_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        poll["result"] = result
        ctx.put(_poll_key(args.poll_id), poll)
        ctx.emit("result_published", poll_id=args.poll_id, counts=list(args.counts))
        return result

    # -- queries --------------------------------------------------------------------------------

    @query(PollRef)
    def poll(self, ctx: QueryContext, args: PollRef) -> Any:
        """A poll's definition, phase, rules, key and result with its counts, or null."""
        poll = ctx.get(_poll_key(args.poll_id))
        if poll is None:
            return None
        total = ctx.get(_total_key(args.poll_id))
        return {
            **poll,
            "status": _status(poll, ctx.time_ms),
            "registered": total["registered"],
            "voted": total["voted"],
        }

    @query(ListPolls)
    def polls(self, ctx: QueryContext, args: ListPolls) -> Any:
        """Polls by id, paginated: ``{"polls", "next"}``."""
        after = _poll_key(args.after) if args.after else ""
        page = [
            {**poll, "status": _status(poll, ctx.time_ms)}
            for _, poll in ctx.scan("poll/", args.limit, after)
        ]
        cursor = page[-1]["poll_id"] if len(page) == args.limit else None
        return {"polls": page, "next": cursor}

    @query(PollRef)
    def turnout(self, ctx: QueryContext, args: PollRef) -> Any:
        """``{"total_registered", "voted", "by_district": {d: {"registered", "voted"}}}``."""
        total = ctx.get(_total_key(args.poll_id))
        if total is None:
            return None
        by_district = {
            record["district"]: {"registered": record["registered"], "voted": record["voted"]}
            for _, record in ctx.scan(f"district/{args.poll_id}/", MAX_DISTRICTS)
        }
        return {
            "total_registered": total["registered"],
            "voted": total["voted"],
            "by_district": by_district,
        }

    @query(PollRef)
    def tally(self, ctx: QueryContext, args: PollRef) -> Any:
        """Open: live counts per option and per district. Secret: null until the result."""
        poll = ctx.get(_poll_key(args.poll_id))
        if poll is None:
            return None
        if poll["mode"] == "secret":
            return poll["result"]
        total = ctx.get(_total_key(args.poll_id))
        by_district = {
            record["district"]: record["counts"]
            for _, record in ctx.scan(f"district/{args.poll_id}/", MAX_DISTRICTS)
        }
        return {"counts": total["counts"], "voted": total["voted"], "by_district": by_district}

    @query(SeriesRef)
    def series(self, ctx: QueryContext, args: SeriesRef) -> Any:
        """Turnout after each block that changed it, by time: ``[{"time_ms", "voted"}]``."""
        prefix = f"series/{args.poll_id}/"
        after = _series_key(args.poll_id, args.after_ms) if args.after_ms >= 0 else ""
        return [point for _, point in ctx.scan(prefix, args.limit, after)]

    @query(BallotRef)
    def ballot(self, ctx: QueryContext, args: BallotRef) -> Any:
        """A voter's latest ballot (tracking code, tx id, time; encrypted ballot if secret)."""
        return ctx.get(_ballot_key(args.poll_id, args.pseudonym))

    @query(VoterKeyRef)
    def pseudonym(self, ctx: QueryContext, args: VoterKeyRef) -> Any:
        """The pseudonym a voter key was registered under, or null (a voter finds its ballot)."""
        return ctx.get(_key_key(args.poll_id, args.voter_key))

    @query(ListBallots)
    def ballots(self, ctx: QueryContext, args: ListBallots) -> Any:
        """Every latest ballot by pseudonym, paginated, for verifiers: ``{"ballots", "next"}``."""
        after = _ballot_key(args.poll_id, args.after) if args.after else ""
        page = [b for _, b in ctx.scan(f"ballot/{args.poll_id}/", args.limit, after)]
        cursor = page[-1]["pseudonym"] if len(page) == args.limit else None
        return {"ballots": page, "next": cursor}

    @query(PollRef)
    def trustees(self, ctx: QueryContext, args: PollRef) -> Any:
        """The ceremony: each trustee's key, commitments, sealed shares, ack, verification key."""
        return [t for _, t in ctx.scan(f"trustee/{args.poll_id}/", MAX_TRUSTEES)]

    @query(PollRef)
    def partials(self, ctx: QueryContext, args: PollRef) -> Any:
        """Posted partial decryptions, by trustee."""
        return [p for _, p in ctx.scan(f"partial/{args.poll_id}/", MAX_TRUSTEES)]

    @query(PollRef)
    def aggregate(self, ctx: QueryContext, args: PollRef) -> Any:
        """A secret poll's aggregate ciphertext per option (what trustees decrypt), or null."""
        return ctx.get(_aggregate_key(args.poll_id))

    # -- helpers --------------------------------------------------------------------------------

    def _check_definition(self, ctx: TxContext, args: CreatePoll) -> None:
        options = len(args.options)
        if args.max_selections > options or args.min_selections > args.max_selections:
            ctx.fail(
                "bad_selection_bounds",
                f"need 0 <= min <= max <= {options} options, 1 <= max",
            )
        if args.opens_ms < ctx.time_ms or args.closes_ms <= args.opens_ms:
            ctx.fail("bad_schedule", "need block time <= opens_ms < closes_ms")
        min_age = args.eligibility.min_age
        if min_age is not None and min_age not in SUPPORTED_MIN_AGES:
            ctx.fail("unsupported_condition", f"minimum ages supported: {SUPPORTED_MIN_AGES}")
        registrar = ctx.authority.agency(args.registrar)
        if registrar is None:
            ctx.fail("unknown_registrar", f"no agency {args.registrar!r}")
        if registrar.get("active") is not True:
            ctx.fail("registrar_inactive", f"agency {args.registrar!r} is deactivated")
        if len(set(args.observers)) != len(args.observers):
            ctx.fail("duplicate_observer", "observers repeat")
        for observer in args.observers:
            self._check_observer(ctx, observer)
        if args.mode == "open":
            if args.trustees or args.threshold is not None:
                ctx.fail("bad_trustees", "open polls have no trustees")
            return
        n = len(args.trustees)
        if n < 2 or len(set(args.trustees)) != n:
            ctx.fail("bad_trustees", f"a secret poll has 2 to {MAX_TRUSTEES} distinct trustees")
        if args.threshold is None or args.threshold > n:
            ctx.fail("bad_threshold", f"need 1 <= threshold <= {n}")

    @staticmethod
    def _check_observer(ctx: TxContext, observer: str) -> None:
        if observer.startswith("did:key:"):
            try:
                check_did_key(observer)
            except ValueError as e:
                ctx.fail("bad_observer", str(e))
        elif not observer.startswith("did:") and ctx.authority.agency(observer) is None:
            ctx.fail("unknown_observer", f"no agency {observer!r}")

    @staticmethod
    def _poll(ctx: TxContext, poll_id: str) -> dict[str, Any]:
        poll = ctx.get(_poll_key(poll_id))
        if poll is None:
            ctx.fail("unknown_poll", f"no poll {poll_id!r}")
        return dict(poll)

    def _voter_for_cast(
        self, ctx: TxContext, poll_id: str, mode: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        poll = self._poll(ctx, poll_id)
        if poll["mode"] != mode:
            ctx.fail("wrong_mode", f"poll {poll_id!r} is {poll['mode']}")
        if ctx.time_ms < poll["opens_ms"]:
            ctx.fail("poll_not_open", "the poll has not opened")
        if ctx.time_ms >= poll["closes_ms"]:
            ctx.fail("poll_closed", "the poll has closed")
        pseudonym = ctx.get(_key_key(poll_id, ctx.signer))
        if pseudonym is None:
            ctx.fail("not_registered", "the signer is not a registered voter key of this poll")
        return poll, ctx.get(_voter_key(poll_id, pseudonym))

    @staticmethod
    def _store_ballot(
        ctx: TxContext,
        poll: dict[str, Any],
        voter: dict[str, Any],
        previous: dict[str, Any] | None,
        content: dict[str, Any],
    ) -> dict[str, Any]:
        """Store the voter's latest ballot; on a first vote, count the turnout."""
        poll_id = poll["poll_id"]
        if previous is None:
            total = ctx.get(_total_key(poll_id))
            total["voted"] += 1
            ctx.put(_total_key(poll_id), total)
            district_key = _district_key(poll_id, voter["district"])
            district = ctx.get(district_key)
            district["voted"] += 1
            ctx.put(district_key, district)
            ctx.put(
                _series_key(poll_id, ctx.time_ms), {"time_ms": ctx.time_ms, "voted": total["voted"]}
            )
        record = {
            "pseudonym": voter["pseudonym"],
            "district": voter["district"],
            **content,
            "changes": 0 if previous is None else previous["changes"] + 1,
            "height": ctx.height,
            "time_ms": ctx.time_ms,
            "tx_id": ctx.tx_id,
        }
        ctx.put(_ballot_key(poll_id, voter["pseudonym"]), record)
        return record

    @staticmethod
    def _trustees(ctx: TxContext, poll: dict[str, Any]) -> list[dict[str, Any]]:
        return [t for _, t in ctx.scan(f"trustee/{poll['poll_id']}/", MAX_TRUSTEES)]

    @staticmethod
    def _signer_trustee(ctx: TxContext, poll: dict[str, Any]) -> dict[str, Any]:
        if ctx.signer not in poll["trustees"]:
            ctx.fail("not_trustee", "the signer is not a trustee of this poll")
        index = poll["trustees"].index(ctx.signer) + 1
        return dict(ctx.get(_trustee_key(poll["poll_id"], index)))

    def _trustee_step(
        self, ctx: TxContext, poll_id: str, phase: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        poll = self._poll(ctx, poll_id)
        if poll["mode"] != "secret":
            ctx.fail("wrong_mode", "open polls have no key ceremony")
        trustee = self._signer_trustee(ctx, poll)
        if ctx.time_ms >= poll["opens_ms"]:
            ctx.fail("ceremony_closed", "the key ceremony must finish before the poll opens")
        if poll["phase"] != phase:
            ctx.fail("wrong_phase", f"the ceremony is in phase {poll['phase']!r}, not {phase!r}")
        return poll, trustee

    @staticmethod
    def _set_phase(ctx: TxContext, poll: dict[str, Any], phase: str) -> None:
        poll["phase"] = phase
        ctx.put(_poll_key(poll["poll_id"]), poll)
        ctx.emit("ceremony_phase", poll_id=poll["poll_id"], phase=phase)

    def _finish_ceremony(
        self, ctx: TxContext, poll: dict[str, Any], trustees: list[dict[str, Any]]
    ) -> None:
        """All shares verified: the joint key and each trustee's verification key.

        A last dealer could cancel the others' constant terms so that the joint key is the
        identity; ``joint_public_key`` refuses that, and the poll fails like on a complaint.
        """
        commitments = {
            t["index"]: [group.point_from_hex(c) for c in t["commitments"]] for t in trustees
        }
        try:
            public_key = dkg.joint_public_key(commitments)
            keys = {t["index"]: dkg.verification_key(commitments, t["index"]) for t in trustees}
        except CivicError as e:
            poll["failure"] = f"the joint key is unusable: {e}"
            self._set_phase(ctx, poll, "failed")
            return
        poll["public_key"] = group.point_hex(public_key)
        for trustee in trustees:
            trustee["verification_key"] = group.point_hex(keys[trustee["index"]])
            ctx.put(_trustee_key(poll["poll_id"], trustee["index"]), trustee)
        self._set_phase(ctx, poll, "ready")


def _new_trustee(index: int, did: str) -> dict[str, Any]:
    return {
        "index": index,
        "did": did,
        "box_key": None,
        "commitments": None,
        "shares": None,
        "acked": False,
        "complaints": [],
        "verification_key": None,
    }


def _status(poll: dict[str, Any], now_ms: int) -> str:
    """Where the poll stands at ``now_ms``: scheduled, open or closed."""
    if now_ms < poll["opens_ms"]:
        return "scheduled"
    return "open" if now_ms < poll["closes_ms"] else "closed"


def share_context(chain_id: str, poll_id: str) -> bytes:
    """What a dealer binds its sealed shares to (``dkg.encrypt_share``'s ``context``)."""
    return f"civicledger/polls/share/v1\x00{chain_id}\x00{poll_id}".encode()


def possession_context(chain_id: str, poll_id: str) -> bytes:
    """What a dealer binds its proof of possession to (``dkg.prove_possession``)."""
    return f"civicledger/polls/possession/v1\x00{chain_id}\x00{poll_id}".encode()


def partial_context(chain_id: str, poll_id: str, trustee: int, option: int) -> bytes:
    """What trustee ``trustee``'s proof for option ``option``'s partial decryption is bound to."""
    return (
        f"civicledger/polls/partial/v1\x00{chain_id}\x00{poll_id}\x00{trustee}\x00{option}".encode()
    )
