"""Non-interactive zero-knowledge proofs (Fiat-Shamir over SHA-512): range and DLEQ.

``RangeProof``: a ciphertext ``(alpha, beta)`` under ``pk`` encrypts some integer ``m`` in
``[lo, hi]``. It is the Cramer-Damgård-Schoenmakers disjunction of Chaum-Pedersen proofs that
``(alpha, beta · g^-j)`` is a Diffie-Hellman pair for ``(g, pk)``, one branch per ``j``; all
branches but the true one are simulated and their challenges add up to the hash.

``DleqProof``: ``log_g X = log_A D`` (Chaum-Pedersen); a trustee's partial decryption
``D = A^x_j`` is correct for its public verification key ``X = g^x_j``.

Invariants:

- Every challenge hashes a domain, the caller's ``context`` and the whole statement (the key,
  the ciphertext, the bounds, or ``X``, ``A``, ``D``) before the commitments, so a proof is valid
  for exactly one statement in exactly one context: it cannot be moved to another ciphertext,
  another poll or another voter.
- Proofs are stored as ``(challenge, response)`` scalars; the verifier recomputes the
  commitments. Every scalar is below ``L``; ``from_json`` accepts only canonical encodings.
- ``verify_*`` returns ``False`` for any proof that does not verify, including statements with
  points outside the group; it raises only for bounds a caller should never pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from civicledger.errors import CivicError
from civicledger.services.voting import group
from civicledger.services.voting.elgamal import Ciphertext
from civicledger.services.voting.group import IDENTITY, GroupError, L, Point

__all__ = [
    "MAX_RANGE_WIDTH",
    "DleqProof",
    "ProofFormatError",
    "RangeProof",
    "prove_dleq",
    "prove_range",
    "verify_dleq",
    "verify_range",
]

MAX_RANGE_WIDTH = 20
"""``hi - lo`` at most: a range proof has one branch per value, so its size is bounded."""

_RANGE_DOMAIN = "CivicLedger/voting/v1/range"
_DLEQ_DOMAIN = "CivicLedger/voting/v1/dleq"


class ProofFormatError(CivicError):
    """A proof's encoding is malformed (wrong shape, non-canonical scalar)."""

    reason = "malformed_proof"


def _check_scalars(values: tuple[int, ...]) -> None:
    for v in values:
        if type(v) is not int or not 0 <= v < L:
            raise ProofFormatError("proof scalars are integers in [0, L)")


def _scalars_from_json(items: object, name: str) -> tuple[int, ...]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RANGE_WIDTH + 1:
        raise ProofFormatError(f"{name} must be a list of 1..{MAX_RANGE_WIDTH + 1} scalars")
    out = []
    for item in items:
        out.append(_scalar_from_json(item, name))
    return tuple(out)


def _scalar_from_json(item: object, name: str) -> int:
    if not isinstance(item, str):
        raise ProofFormatError(f"{name} must hold hex strings")
    try:
        return group.scalar_from_hex(item)
    except GroupError as e:
        raise ProofFormatError(f"{name}: {e.message}") from e


@dataclass(frozen=True, slots=True)
class RangeProof:
    """A disjunctive proof that a ciphertext encrypts one of ``lo..hi``."""

    challenges: tuple[int, ...]
    """One challenge per value ``lo..hi``; their sum mod ``L`` is the Fiat-Shamir hash."""
    responses: tuple[int, ...]
    """One response per value, in the same order."""

    def __post_init__(self) -> None:
        if len(self.challenges) != len(self.responses):
            raise ProofFormatError("a range proof has as many responses as challenges")
        if not 1 <= len(self.challenges) <= MAX_RANGE_WIDTH + 1:
            raise ProofFormatError(f"a range proof has 1..{MAX_RANGE_WIDTH + 1} branches")
        _check_scalars(self.challenges)
        _check_scalars(self.responses)

    def to_json(self) -> dict[str, list[str]]:
        return {
            "challenges": [group.scalar_hex(c) for c in self.challenges],
            "responses": [group.scalar_hex(s) for s in self.responses],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> RangeProof:
        if not isinstance(obj, Mapping) or set(obj) != {"challenges", "responses"}:
            raise ProofFormatError("a range proof has exactly challenges and responses")
        return cls(
            _scalars_from_json(obj["challenges"], "challenges"),
            _scalars_from_json(obj["responses"], "responses"),
        )


@dataclass(frozen=True, slots=True)
class DleqProof:
    """A Chaum-Pedersen proof that two points share one discrete logarithm."""

    challenge: int
    response: int

    def __post_init__(self) -> None:
        _check_scalars((self.challenge, self.response))

    def to_json(self) -> dict[str, str]:
        return {
            "challenge": group.scalar_hex(self.challenge),
            "response": group.scalar_hex(self.response),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> DleqProof:
        if not isinstance(obj, Mapping) or set(obj) != {"challenge", "response"}:
            raise ProofFormatError("a DLEQ proof has exactly challenge and response")
        return cls(
            _scalar_from_json(obj["challenge"], "challenge"),
            _scalar_from_json(obj["response"], "response"),
        )


def _check_bounds(lo: int, hi: int) -> None:
    if not 0 <= lo <= hi or hi - lo > MAX_RANGE_WIDTH:
        raise ValueError(f"range [{lo}, {hi}] is not 0 <= lo <= hi <= lo + {MAX_RANGE_WIDTH}")


def _range_challenge(
    context: bytes, pk: Point, ct: Ciphertext, lo: int, hi: int, commitments: list[bytes]
) -> int:
    return group.hash_to_scalar(_RANGE_DOMAIN, context, pk, ct.alpha, ct.beta, lo, hi, *commitments)


def _simulated_commitments(pk: Point, ct: Ciphertext, j: int, c: int, s: int) -> list[bytes]:
    """``a = g^s · alpha^-c`` and ``b = pk^s · (beta · g^-j)^-c`` for one branch."""
    a = group.add(group.base_mul(s), group.mul(ct.alpha, -c))
    b = group.add(group.add(group.mul(pk, s), group.mul(ct.beta, -c)), group.base_mul(j * c % L))
    return [a, b]


def prove_range(
    pk: Point, ct: Ciphertext, m: int, r: int, lo: int, hi: int, context: bytes
) -> RangeProof:
    """Prove that ``ct = encrypt(pk, m, r)`` holds some value in ``[lo, hi]``.

    The prover's witness is ``(m, r)``; a ciphertext that does not match it yields a proof that
    fails verification.
    """
    _check_bounds(lo, hi)
    if not lo <= m <= hi:
        raise ValueError(f"{m} is not in [{lo}, {hi}]")
    width = hi - lo + 1
    challenges = [0] * width
    responses = [0] * width
    commitments: list[bytes] = []
    w = group.random_scalar()
    for index in range(width):
        j = lo + index
        if j == m:
            commitments += [group.base_mul(w), group.mul(pk, w)]
            continue
        challenges[index] = group.random_scalar()
        responses[index] = group.random_scalar()
        commitments += _simulated_commitments(pk, ct, j, challenges[index], responses[index])
    c = _range_challenge(context, pk, ct, lo, hi, commitments)
    real = m - lo
    challenges[real] = (c - sum(challenges)) % L
    responses[real] = (w + challenges[real] * r) % L
    return RangeProof(tuple(challenges), tuple(responses))


def _statement_in_group(*points: bytes, identity_ok: tuple[bool, ...]) -> bool:
    for p, ok in zip(points, identity_ok, strict=True):
        if not (group.is_valid(p) or (ok and p == IDENTITY)):
            return False
    return True


def verify_range(
    pk: Point, ct: Ciphertext, proof: RangeProof, lo: int, hi: int, context: bytes
) -> bool:
    """True if ``proof`` shows that ``ct`` encrypts a value in ``[lo, hi]`` in ``context``."""
    _check_bounds(lo, hi)
    if len(proof.challenges) != hi - lo + 1:
        return False
    if not _statement_in_group(pk, ct.alpha, ct.beta, identity_ok=(False, True, True)):
        return False
    commitments: list[bytes] = []
    try:
        for index, (c, s) in enumerate(zip(proof.challenges, proof.responses, strict=True)):
            commitments += _simulated_commitments(pk, ct, lo + index, c, s)
    except GroupError:
        return False
    expected = _range_challenge(context, pk, ct, lo, hi, commitments)
    return sum(proof.challenges) % L == expected


def _dleq_challenge(context: bytes, x: Point, a: Point, d: Point, u: Point, v: Point) -> int:
    return group.hash_to_scalar(_DLEQ_DOMAIN, context, group.G, x, a, d, u, v)


def prove_dleq(x: int, a: Point, context: bytes) -> tuple[Point, DleqProof]:
    """``D = A^x`` and a proof that ``log_A D = log_g X`` for ``X = g^x``."""
    big_x = group.base_mul(x)
    d = group.mul(a, x)
    w = group.random_scalar()
    c = _dleq_challenge(context, big_x, a, d, group.base_mul(w), group.mul(a, w))
    return d, DleqProof(c, (w + c * x) % L)


def verify_dleq(x: Point, a: Point, d: Point, proof: DleqProof, context: bytes) -> bool:
    """True if ``proof`` shows ``log_g X = log_A D`` in ``context``.

    ``A`` and ``D`` may be the identity (an empty tally); ``X`` may not.
    """
    if not _statement_in_group(x, a, d, identity_ok=(False, True, True)):
        return False
    c, s = proof.challenge, proof.response
    try:
        u = group.add(group.base_mul(s), group.mul(x, -c))
        v = group.add(group.mul(a, s), group.mul(d, -c))
    except GroupError:
        return False
    return _dleq_challenge(context, x, a, d, u, v) == c
