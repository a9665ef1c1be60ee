"""An encrypted ballot: one ciphertext per option, each proven 0 or 1, their sum proven in range.

A ballot for a poll with ``n`` options (``1 <= n <= MAX_OPTIONS``) holds ``n`` ciphertexts
``E(v_i)`` with ``v_i`` in ``{0, 1}``, one ``RangeProof`` per ciphertext for ``[0, 1]``, and one
``RangeProof`` that their homomorphic sum (randomness ``Σ r_i``) lies in
``[min_selections, max_selections]``.

Every proof is bound to the ballot's ``context`` = ``ballot_context(chain_id, poll_id, voter)``,
and a selection proof also to its option's position, so a ballot (or any proof of it) copied to
another poll, another voter or another position does not verify. The tracking code the voter
keeps is a hash of the ballot's canonical JSON and its context.

JSON form (canonical bytes: RFC 8785 of this object)::

    {"selections": [{"alpha": hex, "beta": hex}, ...],
     "selection_proofs": [{"challenges": [hex, hex], "responses": [hex, hex]}, ...],
     "total_proof": {"challenges": [hex, ...], "responses": [hex, ...]}}
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError
from civicledger.services.voting import elgamal, group
from civicledger.services.voting.elgamal import Ciphertext
from civicledger.services.voting.group import IDENTITY, GroupError, L, Point
from civicledger.services.voting.proofs import (
    ProofFormatError,
    RangeProof,
    prove_range,
    verify_range,
)

__all__ = [
    "MAX_OPTIONS",
    "BallotError",
    "EncryptedBallot",
    "ballot_context",
    "encrypt_ballot",
    "tracking_code",
    "verify_ballot",
]

MAX_OPTIONS = 20
"""At most this many options per poll: a ballot is at most 20 ciphertexts and 21 proofs."""

_CONTEXT_TAG = b"CivicLedger/voting/v1/ballot-context\x00"
_SELECTION_TAG = b"CivicLedger/voting/v1/selection\x00"
_TOTAL_TAG = b"CivicLedger/voting/v1/total\x00"
_TRACKING_TAG = b"CivicLedger/voting/v1/tracking\x00"


class BallotError(CivicError):
    """A ballot refused. Reasons: ``malformed_ballot``, ``wrong_option_count``,
    ``bad_selection_proof``, ``bad_total_proof``, ``bad_group_element``, ``invalid_choices``."""

    reason = "malformed_ballot"


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def ballot_context(chain_id: str, poll_id: str, voter: str) -> bytes:
    """32 bytes binding a ballot to one chain, one poll and one voter key (a did:key)."""
    h = hashlib.sha256(_CONTEXT_TAG)
    for part in (chain_id, poll_id, voter):
        h.update(_lp(part.encode("utf-8")))
    return h.digest()


def _selection_context(context: bytes, index: int) -> bytes:
    return _SELECTION_TAG + _lp(context) + index.to_bytes(4, "big")


def _total_context(context: bytes) -> bytes:
    return _TOTAL_TAG + _lp(context)


@dataclass(frozen=True, slots=True)
class EncryptedBallot:
    """A voter's encrypted choices with the proofs that they are well formed."""

    selections: tuple[Ciphertext, ...]
    """One ciphertext per option, in the poll's option order; each encrypts 0 or 1."""
    selection_proofs: tuple[RangeProof, ...]
    """``selection_proofs[i]`` shows that ``selections[i]`` encrypts 0 or 1."""
    total_proof: RangeProof
    """Shows that the sum of ``selections`` is within the poll's selection bounds."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.selections) <= MAX_OPTIONS:
            raise BallotError(
                f"a ballot has 1..{MAX_OPTIONS} selections", reason="wrong_option_count"
            )
        if len(self.selection_proofs) != len(self.selections):
            raise BallotError("a ballot has one proof per selection", reason="malformed_ballot")

    def to_json(self) -> dict[str, Any]:
        return {
            "selections": [ct.to_json() for ct in self.selections],
            "selection_proofs": [p.to_json() for p in self.selection_proofs],
            "total_proof": self.total_proof.to_json(),
        }

    def to_bytes(self) -> bytes:
        """The canonical (RFC 8785) bytes of ``to_json()``."""
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EncryptedBallot:
        """Decode a ballot, refusing any shape, point or scalar that is not canonical."""
        if not isinstance(obj, Mapping) or set(obj) != {
            "selections",
            "selection_proofs",
            "total_proof",
        }:
            raise BallotError("a ballot has selections, selection_proofs and total_proof")
        selections, proofs = obj["selections"], obj["selection_proofs"]
        if not isinstance(selections, list) or not isinstance(proofs, list):
            raise BallotError("selections and selection_proofs are lists")
        if not 1 <= len(selections) <= MAX_OPTIONS or len(proofs) != len(selections):
            raise BallotError(
                f"a ballot has 1..{MAX_OPTIONS} selections, each with one proof",
                reason="wrong_option_count",
            )
        try:
            return cls(
                tuple(Ciphertext.from_json(ct) for ct in selections),
                tuple(RangeProof.from_json(p) for p in proofs),
                RangeProof.from_json(obj["total_proof"]),
            )
        except GroupError as e:
            raise BallotError(e.message, reason="bad_group_element") from e
        except ProofFormatError as e:
            raise BallotError(e.message, reason="malformed_ballot") from e


def _check_bounds(options: int, min_selections: int, max_selections: int) -> None:
    if not 1 <= options <= MAX_OPTIONS:
        raise BallotError(f"a poll has 1..{MAX_OPTIONS} options", reason="wrong_option_count")
    if not 0 <= min_selections <= max_selections <= options:
        raise BallotError(
            "selection bounds must satisfy 0 <= min <= max <= options", reason="invalid_choices"
        )


def encrypt_ballot(
    pk: Point,
    choices: Sequence[int],
    *,
    min_selections: int,
    max_selections: int,
    context: bytes,
) -> tuple[EncryptedBallot, tuple[int, ...]]:
    """Encrypt 0/1 choices under the poll key with fresh randomness; returns the ballot and
    the randomness used per selection (a receipt or a test may need it; never publish it)."""
    _check_bounds(len(choices), min_selections, max_selections)
    if any(type(c) is not int or c not in (0, 1) for c in choices):
        raise BallotError("each choice is 0 or 1", reason="invalid_choices")
    if not min_selections <= sum(choices) <= max_selections:
        raise BallotError(
            f"{sum(choices)} selections, allowed {min_selections}..{max_selections}",
            reason="invalid_choices",
        )
    rs = tuple(group.random_scalar() for _ in choices)
    selections = tuple(elgamal.encrypt(pk, m, r) for m, r in zip(choices, rs, strict=True))
    proofs = tuple(
        prove_range(pk, ct, m, r, 0, 1, _selection_context(context, i))
        for i, (ct, m, r) in enumerate(zip(selections, choices, rs, strict=True))
    )
    total_proof = prove_range(
        pk,
        elgamal.sum_all(selections),
        sum(choices),
        sum(rs) % L,
        min_selections,
        max_selections,
        _total_context(context),
    )
    return EncryptedBallot(selections, proofs, total_proof), rs


def verify_ballot(
    pk: Point,
    ballot: EncryptedBallot,
    *,
    options: int,
    min_selections: int,
    max_selections: int,
    context: bytes,
) -> None:
    """Raise ``BallotError`` unless every proof of ``ballot`` holds for this poll and voter."""
    _check_bounds(options, min_selections, max_selections)
    if len(ballot.selections) != options:
        raise BallotError(
            f"ballot has {len(ballot.selections)} selections, the poll {options} options",
            reason="wrong_option_count",
        )
    if not group.is_valid(pk):
        raise BallotError("the poll key is not a group element", reason="bad_group_element")
    for i, ct in enumerate(ballot.selections):
        # An identity alpha means r = 0: the vote would be readable by anyone.
        if not group.is_valid(ct.alpha) or not (group.is_valid(ct.beta) or ct.beta == IDENTITY):
            raise BallotError(f"selection {i} is not in the group", reason="bad_group_element")
    for i, (ct, proof) in enumerate(zip(ballot.selections, ballot.selection_proofs, strict=True)):
        if not verify_range(pk, ct, proof, 0, 1, _selection_context(context, i)):
            raise BallotError(f"selection {i} is not proven 0 or 1", reason="bad_selection_proof")
    total = elgamal.sum_all(ballot.selections)
    if not verify_range(
        pk, total, ballot.total_proof, min_selections, max_selections, _total_context(context)
    ):
        raise BallotError(
            f"the number of selections is not proven within {min_selections}..{max_selections}",
            reason="bad_total_proof",
        )


def tracking_code(ballot: EncryptedBallot, context: bytes) -> str:
    """SHA-256 hex of tag ‖ len(context) ‖ context ‖ canonical ballot JSON; shown to the voter,
    who can later find the ballot on the ledger by it."""
    return hashlib.sha256(_TRACKING_TAG + _lp(context) + ballot.to_bytes()).hexdigest()
