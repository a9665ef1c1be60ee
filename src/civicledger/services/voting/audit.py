"""The independent verifier of a poll: recompute everything from the poll's ledger data alone.

``audit_poll`` takes a ``PollRecord`` (the bodies of the poll's committed, ``ok`` transactions
with their signers and block times, plus the contract's final stored view) and re-derives,
without trusting a single receipt or stored value:

- which registrations are valid (signed by a key of the registrar agency, before closing, in an
  eligible district; pseudonyms unique; voter keys unique);
- the trustees' key ceremony (every dealing's proof of possession, no complaint), the joint
  public key and each trustee's verification key;
- which ballots count (signed by a registered voter key, block time in ``[opens, closes)``,
  every proof valid for a secret poll or the choices valid for an open one; the last valid
  ballot of each voter counts);
- the turnout, the homomorphic sum per option (against the stored aggregate) or the open recount
  (against the stored tally);
- every partial decryption proof, the combination of ``k`` valid partials, the discrete logs, and
  the published result.

Each step is a named ``Check``; the report is ``ok`` only if every check is. A check that cannot
run yet (no result published, say) is ``pending``, which is not ok: fail closed.

Invariants: no I/O, no clock. The ledger order of transactions is ``(height, index)``; the record
keeps it. A transaction the contract should have refused but which appears as ``ok`` in the
record makes a check fail and is left out of every recount, exactly as the contract would have
left it out; so one tampered item shows as its own failed check plus whatever it changes
downstream (a changed sum, a result that no longer matches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from civicledger.errors import CivicError
from civicledger.services.voting import dkg, dlog, elgamal, group
from civicledger.services.voting.ballot import (
    MAX_OPTIONS,
    EncryptedBallot,
    ballot_context,
    verify_ballot,
)
from civicledger.services.voting.polls import partial_context, possession_context
from civicledger.services.voting.proofs import DleqProof

__all__ = [
    "AuditReport",
    "BallotTask",
    "Check",
    "LedgerTx",
    "Mapper",
    "PollRecord",
    "StoredView",
    "audit_poll",
    "ballot_problem",
    "render_report",
    "sum_selections",
]

Status = Literal["ok", "failed", "pending"]
_EXAMPLES = 3
"""Failed items named in a check's detail; the counts say how many there were."""

_T = TypeVar("_T")
_R = TypeVar("_R")


class Mapper(Protocol):
    """``map``-like: applies a picklable module-level function to every item, in order.

    ``audit_poll`` hands its expensive work (ballot proofs, the homomorphic sum) to this, so a
    caller can spread it over processes (``multiprocessing.Pool.imap``); the default is ``map``.
    """

    def __call__(self, fn: Callable[[_T], _R], items: Iterable[_T], /) -> Iterable[_R]: ...


@dataclass(frozen=True, slots=True)
class LedgerTx:
    """One committed transaction of the poll whose receipt was ``ok``: what the audit re-checks."""

    method: str
    """The ``polls`` method (``create``, ``register_voter``, ``cast_secret``, ...)."""
    args: Mapping[str, Any]
    """The signed body's arguments, as submitted."""
    signer: str
    """The did:key that signed the transaction."""
    time_ms: int
    """The block's time."""
    height: int
    """The block's height."""
    index: int
    """Position in the block; ``(height, index)`` is the ledger order."""
    tx_id: str
    """Hex transaction id."""

    @property
    def position(self) -> tuple[int, int]:
        return (self.height, self.index)


@dataclass(frozen=True, slots=True)
class StoredView:
    """What the contract stored at the head, to be compared with the recomputation."""

    phase: str
    """The key ceremony's phase (``ready`` for open polls)."""
    public_key: str | None
    """A secret poll's joint key (hex), or null."""
    registered: int
    """``total/<poll>.registered``."""
    voted: int
    """``total/<poll>.voted``: distinct pseudonyms with a ballot."""
    aggregate: tuple[Mapping[str, str], ...] | None
    """A secret poll's aggregate ciphertext per option (JSON), or null for an open poll."""
    tally: tuple[int, ...] | None
    """Open: the live counts. Secret: the published result's counts, or null."""
    tally_by_district: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    """Open: counts per district."""
    verification_keys: Mapping[int, str] = field(default_factory=dict)
    """Secret: trustee index to its stored verification key (hex)."""


@dataclass(frozen=True, slots=True)
class PollRecord:
    """A poll as the ledger holds it: its ``ok`` transactions in ledger order, and the view."""

    poll_id: str
    chain_id: str
    """The chain the poll's transactions were signed for (ballot contexts bind it)."""
    create: LedgerTx
    joins: tuple[LedgerTx, ...]
    deals: tuple[LedgerTx, ...]
    acks: tuple[LedgerTx, ...]
    registrations: tuple[LedgerTx, ...]
    casts: tuple[LedgerTx, ...]
    """Every ``cast`` / ``cast_secret``, in ledger order (re-votes included)."""
    partials: tuple[LedgerTx, ...]
    """Every ``decrypt_share``."""
    publications: tuple[LedgerTx, ...]
    """Every ``publish_result`` (the contract accepts one)."""
    stored: StoredView


@dataclass(frozen=True, slots=True)
class Check:
    """One named verification step."""

    name: str
    status: Status
    detail: str
    checked: int = 0
    """Items examined."""
    failed: int = 0
    """Items that did not pass."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Every check in order, and what the audit itself computed."""

    poll_id: str
    mode: str
    checks: tuple[Check, ...]
    counts: tuple[int, ...] | None
    """The recomputed result per option (null when it could not be computed)."""
    registered: int
    """Valid registrations."""
    voted: int
    """Voters with a counted ballot."""

    @property
    def ok(self) -> bool:
        """True only if there are checks and every one of them passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def result(self) -> list[int] | None:
        """The recomputed counts as a list (what the CLI prints), or None."""
        return None if self.counts is None else list(self.counts)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "failed")

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


BallotTask = tuple[str, Mapping[str, Any], int, int, int, bytes]
"""``(poll key hex, ballot JSON, options, min, max, ballot context)`` for ``ballot_problem``."""


def ballot_problem(task: BallotTask) -> str | None:
    """The reason a secret ballot fails verification, or None if every proof holds.

    Module-level and picklable, so a ``Mapper`` can run it in worker processes.
    """
    pk_hex, ballot, options, lo, hi, context = task
    try:
        encrypted = EncryptedBallot.from_json(ballot)
        verify_ballot(
            group.point_from_hex(pk_hex),
            encrypted,
            options=options,
            min_selections=lo,
            max_selections=hi,
            context=context,
        )
    except CivicError as e:
        return e.reason
    return None


def sum_selections(ballots: Sequence[Mapping[str, Any]]) -> list[tuple[bytes, bytes]]:
    """The per-option homomorphic sum of already verified ballots, as ``(alpha, beta)``.

    Picklable (run on chunks by a ``Mapper``); skips the point checks ``ballot_problem`` did.
    """
    sums: list[tuple[bytes, bytes]] = []
    for ballot in ballots:
        selections = ballot["selections"]
        if not sums:
            sums = [(group.IDENTITY, group.IDENTITY)] * len(selections)
        sums = [
            (group.add(a, bytes.fromhex(s["alpha"])), group.add(b, bytes.fromhex(s["beta"])))
            for (a, b), s in zip(sums, selections, strict=True)
        ]
    return sums


class _Checks:
    """Collects checks; each helper turns (examined, problems) into one ``Check``."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(self, name: str, checked: int, problems: Sequence[str], what: str) -> bool:
        if problems:
            shown = "; ".join(problems[:_EXAMPLES])
            more = f" (and {len(problems) - _EXAMPLES} more)" if len(problems) > _EXAMPLES else ""
            detail = f"{len(problems)} of {checked} {what} fail: {shown}{more}"
            self.items.append(Check(name, "failed", detail, checked, len(problems)))
            return False
        self.items.append(Check(name, "ok", f"{checked} {what} pass", checked, 0))
        return True

    def compare(self, name: str, expected: object, stored: object, what: str) -> bool:
        if expected == stored:
            self.items.append(Check(name, "ok", f"{what}: {_short(expected)}", 1, 0))
            return True
        detail = f"{what}: recomputed {_short(expected)}, the ledger holds {_short(stored)}"
        self.items.append(Check(name, "failed", detail, 1, 1))
        return False

    def pending(self, name: str, why: str) -> None:
        self.items.append(Check(name, "pending", why))


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _tx(tx: LedgerTx) -> str:
    return f"tx {tx.tx_id[:12]}"


@dataclass
class _Voter:
    pseudonym: str
    district: str
    position: tuple[int, int]


def audit_poll(
    record: PollRecord, registrar_keys: set[str], *, mapper: Mapper | None = None
) -> AuditReport:
    """Recompute the poll from ``record`` and compare with what the ledger stored.

    ``registrar_keys``: the did:keys of the registrar agency (empty fails every registration:
    fail closed). ``mapper`` runs the per-ballot work (default: ``map``, in this process).
    """
    run: Mapper = mapper if mapper is not None else map
    checks = _Checks()
    poll = record.create.args
    mode = str(poll.get("mode", "?"))
    if not _check_definition(record, checks):
        return AuditReport(record.poll_id, mode, tuple(checks.items), None, 0, 0)
    voters = _registrations(record, registrar_keys, checks)
    checks.compare(
        "registered", len(voters), record.stored.registered, "valid registrations (total)"
    )
    pk_hex: str | None = None
    vks: dict[int, group.Point] = {}
    if mode == "secret":
        ceremony = _ceremony(record, checks)
        if ceremony is not None:
            pk, vks = ceremony
            pk_hex = group.point_hex(pk)
    latest = _casts(record, voters, checks)
    if mode == "open":
        recount = _open_tally(record, voters, latest, checks)
        return AuditReport(
            record.poll_id, mode, tuple(checks.items), recount, len(voters), len(latest)
        )
    counted = _secret_ballots(record, latest, pk_hex, checks, run)
    checks.compare("turnout", len(counted), record.stored.voted, "voters with a counted ballot")
    if pk_hex is None:
        checks.pending("aggregate", "no joint key: no ballot can be counted")
        return AuditReport(record.poll_id, mode, tuple(checks.items), None, len(voters), 0)
    aggregate = _aggregate(record, counted, checks, run)
    counts = _decrypt(record, aggregate, vks, len(counted), checks)
    _published(record, counts, len(counted), checks)
    return AuditReport(record.poll_id, mode, tuple(checks.items), counts, len(voters), len(counted))


def _check_definition(record: PollRecord, checks: _Checks) -> bool:
    poll = record.create.args
    problems = []
    options = poll.get("options")
    lo, hi = poll.get("min_selections"), poll.get("max_selections")
    if poll.get("poll_id") != record.poll_id:
        problems.append("the create transaction is for another poll")
    if poll.get("mode") not in ("open", "secret"):
        problems.append(f"mode {poll.get('mode')!r}")
    if not isinstance(options, list) or not 2 <= len(options) <= MAX_OPTIONS:
        problems.append("options are not a list of 2..20")
    elif not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi <= len(options)):
        problems.append("selection bounds are not 0 <= min <= max <= options")
    opens, closes = poll.get("opens_ms"), poll.get("closes_ms")
    if not (isinstance(opens, int) and isinstance(closes, int) and opens < closes):
        problems.append("the schedule is not opens < closes")
    elif opens < record.create.time_ms:
        problems.append("the poll opens before it was created")
    if poll.get("mode") == "secret":
        trustees, k = poll.get("trustees"), poll.get("threshold")
        if not isinstance(trustees, list) or len(set(trustees)) != len(trustees) < 2:
            problems.append("a secret poll has at least 2 distinct trustees")
        elif not isinstance(k, int) or not 1 <= k <= len(trustees):
            problems.append("the threshold is not 1..trustees")
    return checks.add("definition", 1, problems, "poll definitions")


def _registrations(
    record: PollRecord, registrar_keys: set[str], checks: _Checks
) -> dict[str, _Voter]:
    """Valid registrations, by voter key; the first of a repeated pseudonym or key stands."""
    poll = record.create.args
    districts = set(poll["eligibility"].get("districts", []))
    by_key: dict[str, _Voter] = {}
    pseudonyms: set[str] = set()
    unsigned, late, ineligible, repeated, reused = [], [], [], [], []
    for tx in record.registrations:
        args = tx.args
        pseudonym, key, district = args["pseudonym"], args["voter_key"], args["district"]
        if tx.signer not in registrar_keys:
            unsigned.append(f"{_tx(tx)} signed by {tx.signer[:24]}...")
            continue
        if not record.create.position < tx.position or tx.time_ms >= poll["closes_ms"]:
            late.append(f"{_tx(tx)} at {tx.time_ms}")
            continue
        if districts and district not in districts:
            ineligible.append(f"{_tx(tx)} from {district}")
            continue
        if pseudonym in pseudonyms:
            repeated.append(f"{_tx(tx)} repeats pseudonym {pseudonym[:12]}")
            continue
        if key in by_key:
            reused.append(f"{_tx(tx)} reuses voter key {key[:24]}...")
            continue
        pseudonyms.add(pseudonym)
        by_key[key] = _Voter(pseudonym, district, tx.position)
    total = len(record.registrations)
    checks.add("registrar_signatures", total, unsigned, "registrations signed by the registrar")
    checks.add("registration_window", total, late, "registrations made before closing")
    checks.add("eligible_districts", total, ineligible, "registrations in eligible districts")
    checks.add("unique_pseudonyms", total, repeated, "pseudonyms registered once")
    checks.add("unique_voter_keys", total, reused, "voter keys serving one pseudonym")
    return by_key


def _ceremony_steps(record: PollRecord, checks: _Checks) -> bool:
    """Every trustee joined, dealt and acknowledged once, before opening, with no complaint."""
    trustees: list[str] = record.create.args["trustees"]
    opens = record.create.args["opens_ms"]
    problems: list[str] = []
    for step, txs in (("join", record.joins), ("deal", record.deals), ("ack", record.acks)):
        signers = [tx.signer for tx in txs]
        problems += [f"{step} {_tx(tx)}: not a trustee" for tx in txs if tx.signer not in trustees]
        problems += [f"{step} {_tx(tx)} after opening" for tx in txs if tx.time_ms >= opens]
        if sorted(signers) != sorted(trustees):
            problems.append(f"{len(set(signers))} of {len(trustees)} trustees posted a {step}")
    problems += [
        f"trustee {tx.signer[:24]}... complained: {tx.args['complaints']}"
        for tx in record.acks
        if tx.args.get("complaints")
    ]
    return checks.add("ceremony_complete", len(trustees), problems, "trustees' ceremony steps")


def _ceremony(
    record: PollRecord, checks: _Checks
) -> tuple[group.Point, dict[int, group.Point]] | None:
    """The joint key and verification keys from the dealings; None if the ceremony is invalid."""
    poll = record.create.args
    trustees: list[str] = poll["trustees"]
    k: int = poll["threshold"]
    context = possession_context(record.chain_id, record.poll_id)
    steps_ok = _ceremony_steps(record, checks)
    commitments: dict[int, list[group.Point]] = {}
    bad: list[str] = []
    for tx in record.deals:
        if tx.signer not in trustees:
            continue
        j = trustees.index(tx.signer) + 1
        try:
            points = [group.point_from_hex(c) for c in tx.args["commitments"]]
            proof = DleqProof.from_json(tx.args["possession"])
        except CivicError as e:
            bad.append(f"trustee {j}: {e.message}")
            continue
        if len(points) != k:
            bad.append(f"trustee {j}: {len(points)} commitments, threshold {k}")
        elif not dkg.verify_possession(points, j, proof, context):
            bad.append(f"trustee {j}: the proof of possession does not hold")
        else:
            commitments[j] = points
    possession_ok = checks.add(
        "possession_proofs", len(record.deals), bad, "dealings' proofs of possession"
    )
    if not steps_ok or not possession_ok or len(commitments) != len(trustees):
        checks.pending("joint_key", "the ceremony is incomplete or invalid: no joint key")
        return None
    try:
        pk = dkg.joint_public_key(commitments)
        vks = {j: dkg.verification_key(commitments, j) for j in commitments}
    except CivicError as e:
        checks.add("joint_key", 1, [e.message], "joint keys")
        return None
    stored_vks = {j: group.point_hex(v) for j, v in sorted(vks.items())}
    same = record.stored.public_key == group.point_hex(pk) and (
        dict(record.stored.verification_keys) == stored_vks
    )
    checks.compare(
        "joint_key",
        group.point_hex(pk),
        record.stored.public_key if same else f"{record.stored.public_key} (or a trustee's key)",
        "joint public key and verification keys",
    )
    return pk, vks


def _casts(
    record: PollRecord, voters: Mapping[str, _Voter], checks: _Checks
) -> dict[str, list[LedgerTx]]:
    """Per voter key, its casts that a registered voter made in the voting window, in order."""
    poll = record.create.args
    method = "cast" if poll["mode"] == "open" else "cast_secret"
    opens, closes = poll["opens_ms"], poll["closes_ms"]
    by_voter: dict[str, list[LedgerTx]] = {}
    unregistered, untimely = [], []
    casts = sorted(record.casts, key=lambda tx: tx.position)
    for tx in casts:
        voter = voters.get(tx.signer)
        if tx.method != method:
            unregistered.append(f"{_tx(tx)} is a {tx.method} in a {poll['mode']} poll")
            continue
        if voter is None or not voter.position < tx.position:
            unregistered.append(f"{_tx(tx)} by an unregistered key")
            continue
        if not opens <= tx.time_ms < closes:
            untimely.append(f"{_tx(tx)} at {tx.time_ms}, open [{opens}, {closes})")
            continue
        by_voter.setdefault(tx.signer, []).append(tx)
    checks.add("ballot_voters", len(casts), unregistered, "ballots signed by a registered voter")
    checks.add("ballot_times", len(casts), untimely, "ballots cast while the poll was open")
    return by_voter


def _valid_choices(choices: object, options: int, lo: int, hi: int) -> bool:
    if not isinstance(choices, list) or not all(type(c) is int for c in choices):
        return False
    return (
        len(set(choices)) == len(choices)
        and all(0 <= c < options for c in choices)
        and lo <= len(choices) <= hi
    )


def _open_tally(
    record: PollRecord,
    voters: Mapping[str, _Voter],
    by_voter: Mapping[str, list[LedgerTx]],
    checks: _Checks,
) -> tuple[int, ...]:
    poll = record.create.args
    options, lo, hi = len(poll["options"]), poll["min_selections"], poll["max_selections"]
    counts = [0] * options
    by_district: dict[str, list[int]] = {}
    bad: list[str] = []
    examined = 0
    voted = 0
    for key, txs in by_voter.items():
        examined += len(txs)
        valid = [tx for tx in txs if _valid_choices(tx.args.get("choices"), options, lo, hi)]
        bad.extend(f"{_tx(tx)}: choices {tx.args.get('choices')}" for tx in txs if tx not in valid)
        if not valid:
            continue
        voted += 1
        district = by_district.setdefault(voters[key].district, [0] * options)
        for choice in valid[-1].args["choices"]:
            counts[choice] += 1
            district[choice] += 1
    checks.add("ballot_choices", examined, bad, "open ballots with valid choices")
    checks.compare("turnout", voted, record.stored.voted, "voters with a counted ballot")
    stored_districts = {d: tuple(c) for d, c in record.stored.tally_by_district.items()}
    recount_districts = {d: tuple(c) for d, c in by_district.items()}
    stored_districts = {d: c for d, c in stored_districts.items() if any(c)}
    checks.compare(
        "tally",
        (tuple(counts), recount_districts),
        (record.stored.tally, stored_districts),
        "counts per option and per district",
    )
    return tuple(counts)


def _secret_ballots(
    record: PollRecord,
    by_voter: Mapping[str, list[LedgerTx]],
    pk_hex: str | None,
    checks: _Checks,
    run: Mapper,
) -> list[Mapping[str, Any]]:
    """Every ballot's proofs; returns the last valid ballot of each voter (JSON)."""
    if pk_hex is None:
        checks.pending("ballot_proofs", "no joint key to verify ballots against")
        return []
    poll = record.create.args
    options, lo, hi = len(poll["options"]), poll["min_selections"], poll["max_selections"]
    txs = [tx for voter_txs in by_voter.values() for tx in voter_txs]
    tasks: list[BallotTask] = [
        (
            pk_hex,
            tx.args["ballot"],
            options,
            lo,
            hi,
            ballot_context(record.chain_id, record.poll_id, tx.signer),
        )
        for tx in txs
    ]
    problems = dict(zip((tx.tx_id for tx in txs), run(ballot_problem, tasks), strict=True))
    bad = [f"{tx_id[:12]}: {reason}" for tx_id, reason in problems.items() if reason is not None]
    checks.add("ballot_proofs", len(txs), bad, "secret ballots' proofs")
    counted = []
    for voter_txs in by_voter.values():
        valid = [tx for tx in voter_txs if problems[tx.tx_id] is None]
        if valid:
            counted.append(valid[-1].args["ballot"])
    return counted


_SUM_CHUNK = 2000


def _aggregate(
    record: PollRecord, counted: Sequence[Mapping[str, Any]], checks: _Checks, run: Mapper
) -> list[elgamal.Ciphertext]:
    options = len(record.create.args["options"])
    chunks = [counted[i : i + _SUM_CHUNK] for i in range(0, len(counted), _SUM_CHUNK)]
    total = [elgamal.ZERO] * options
    for sums in run(sum_selections, chunks):
        total = [
            elgamal.add(t, elgamal.Ciphertext(a, b)) for t, (a, b) in zip(total, sums, strict=True)
        ]
    stored = None if record.stored.aggregate is None else [dict(c) for c in record.stored.aggregate]
    checks.compare(
        "aggregate",
        [c.to_json() for c in total],
        stored,
        f"homomorphic sum of {len(counted)} counted ballots per option",
    )
    return total


def _decrypt(
    record: PollRecord,
    aggregate: Sequence[elgamal.Ciphertext],
    vks: Mapping[int, group.Point],
    voted: int,
    checks: _Checks,
) -> tuple[int, ...] | None:
    poll = record.create.args
    trustees: list[str] = poll["trustees"]
    k: int = poll["threshold"]
    valid: dict[int, list[group.Point]] = {}
    bad: list[str] = []
    for tx in record.partials:
        if tx.signer not in trustees:
            bad.append(f"{_tx(tx)} by a non-trustee")
            continue
        j = trustees.index(tx.signer) + 1
        problem = _partial_problem(record, tx, j, aggregate, vks)
        if problem is None and j in valid:
            problem = "a second set of partials"
        if problem is not None:
            bad.append(f"trustee {j}: {problem}")
            continue
        valid[j] = [group.point_from_hex(p["D"], allow_identity=True) for p in tx.args["partials"]]
    checks.add("partial_decryptions", len(record.partials), bad, "trustees' partial decryptions")
    if len(valid) < k:
        checks.pending("decryption", f"{len(valid)} of {k} valid partial decryptions")
        return None
    used = sorted(valid)[:k]
    counts = []
    for i, ciphertext in enumerate(aggregate):
        combined = dkg.combine_partials({j: valid[j][i] for j in used})
        try:
            counts.append(dlog.solve(group.sub(ciphertext.beta, combined), voted))
        except CivicError as e:
            checks.add("decryption", len(aggregate), [f"option {i}: {e.message}"], "options")
            return None
    checks.items.append(
        Check("decryption", "ok", f"trustees {used} decrypt to {counts}", len(aggregate), 0)
    )
    return tuple(counts)


def _partial_problem(
    record: PollRecord,
    tx: LedgerTx,
    j: int,
    aggregate: Sequence[elgamal.Ciphertext],
    vks: Mapping[int, group.Point],
) -> str | None:
    if tx.time_ms < record.create.args["closes_ms"]:
        return "posted before closing"
    partials = tx.args["partials"]
    if len(partials) != len(aggregate):
        return f"{len(partials)} partials for {len(aggregate)} options"
    for i, (partial, ciphertext) in enumerate(zip(partials, aggregate, strict=True)):
        context = partial_context(record.chain_id, record.poll_id, j, i)
        try:
            d = group.point_from_hex(partial["D"], allow_identity=True)
            proof = DleqProof.from_json(partial["proof"])
        except CivicError as e:
            return f"option {i}: {e.message}"
        if not dkg.verify_partial(vks[j], ciphertext.alpha, d, proof, context):
            return f"option {i}: the proof of decryption does not hold"
    return None


def _published(
    record: PollRecord, counts: tuple[int, ...] | None, voted: int, checks: _Checks
) -> None:
    if not record.publications:
        checks.pending("published_result", "no result published yet")
        return
    if counts is None:
        checks.add("published_result", 1, ["no recomputed result to compare"], "results")
        return
    closes = record.create.args["closes_ms"]
    problems = [
        f"{_tx(tx)} publishes {tx.args['counts']}, not {list(counts)}"
        for tx in record.publications
        if tuple(tx.args["counts"]) != counts
    ]
    problems += [f"{_tx(tx)} before closing" for tx in record.publications if tx.time_ms < closes]
    if len(record.publications) > 1:
        problems.append(f"{len(record.publications)} results published")
    if record.stored.tally != counts:
        problems.append(f"the stored result is {record.stored.tally}, not {list(counts)}")
    checks.add("published_result", len(record.publications), problems, "published results")


def render_report(report: AuditReport) -> list[tuple[str, str, str]]:
    """Rows ``(check, status, detail)`` for a table, then the verdict and recomputed result."""
    rows: list[tuple[str, str, str]] = [(c.name, c.status, c.detail) for c in report.checks]
    counts = "not computed" if report.counts is None else ", ".join(map(str, report.counts))
    rows.append(
        (
            "result",
            "ok" if report.ok else "failed",
            f"{report.mode} poll {report.poll_id}: counts {counts}; "
            f"{report.voted} of {report.registered} registered voters counted",
        )
    )
    return rows
