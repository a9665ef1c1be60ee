"""Exponential ElGamal over the group: ciphertexts that add up under encryption.

``encrypt(pk, m, r) = (g^r, pk^r · g^m)``. Multiplying two ciphertexts componentwise encrypts
the sum of their messages, so a tally is the product of every ballot's ciphertexts, decrypted
once. The message comes back as ``g^m``; ``dlog.solve`` recovers small ``m``.

Invariants: a ``Ciphertext`` holds two 32-byte encodings. ``from_json`` admits only elements of
the prime-order group (the identity included, since ``ZERO`` and sums may hold it); results of
``add``/``sub``/``encrypt`` are in the group by closure. Whoever accepts a ciphertext from a
voter also refuses an identity ``alpha`` (``ballot.verify_ballot`` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from civicledger.services.voting import group
from civicledger.services.voting.group import GroupError, Point

__all__ = ["ZERO", "Ciphertext", "add", "decrypt_to_point", "encrypt", "sub", "sum_all"]


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """One exponential-ElGamal ciphertext."""

    alpha: Point
    """``g^r``: the randomness' commitment."""
    beta: Point
    """``pk^r · g^m``: the message, masked."""

    def __post_init__(self) -> None:
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != group.POINT_SIZE:
                raise GroupError(f"ciphertext {name} must be 32 bytes")

    def to_json(self) -> dict[str, str]:
        return {"alpha": group.point_hex(self.alpha), "beta": group.point_hex(self.beta)}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> Ciphertext:
        """Decode ``{"alpha": hex, "beta": hex}``, refusing anything outside the group."""
        if not isinstance(obj, Mapping) or set(obj) != {"alpha", "beta"}:
            raise GroupError("a ciphertext is an object with exactly alpha and beta")
        alpha, beta = obj["alpha"], obj["beta"]
        if not isinstance(alpha, str) or not isinstance(beta, str):
            raise GroupError("ciphertext components are hex strings")
        return cls(
            group.point_from_hex(alpha, allow_identity=True),
            group.point_from_hex(beta, allow_identity=True),
        )


ZERO = Ciphertext(group.IDENTITY, group.IDENTITY)
"""The encryption of 0 with randomness 0: the neutral element of ``add``."""


def encrypt(pk: Point, m: int, r: int) -> Ciphertext:
    """Encrypt ``m`` under ``pk`` with randomness ``r`` (the caller draws ``r``, nonzero)."""
    return Ciphertext(group.base_mul(r), group.add(group.mul(pk, r), group.base_mul(m)))


def add(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    """A ciphertext of the sum of the messages (randomness adds too)."""
    return Ciphertext(group.add(a.alpha, b.alpha), group.add(a.beta, b.beta))


def sub(a: Ciphertext, b: Ciphertext) -> Ciphertext:
    """A ciphertext of the difference of the messages."""
    return Ciphertext(group.sub(a.alpha, b.alpha), group.sub(a.beta, b.beta))


def sum_all(cts: Iterable[Ciphertext]) -> Ciphertext:
    """The homomorphic sum of any number of ciphertexts (``ZERO`` for none)."""
    alpha, beta = group.IDENTITY, group.IDENTITY
    for ct in cts:
        alpha = group.add(alpha, ct.alpha)
        beta = group.add(beta, ct.beta)
    return Ciphertext(alpha, beta)


def decrypt_to_point(sk: int, ct: Ciphertext) -> Point:
    """``g^m`` from a ciphertext with the whole secret key; for tests and single-key tools.

    Polls never hold the whole key: trustees decrypt jointly with ``dkg.partial_decrypt``.
    """
    return group.sub(ct.beta, group.mul(ct.alpha, sk))
