"""The trustees' threshold key: joint-Feldman (Pedersen) DKG, partial decryption, combination.

Trustees are numbered ``1..n``; any ``k`` of them can decrypt, fewer learn nothing.

1. Each trustee ``i`` runs ``deal(k, n)``: a random polynomial ``f_i`` of degree ``k - 1``,
   publishes ``commitments`` ``C_it = g^{a_it}`` with ``prove_possession`` (checked by
   ``verify_possession``: no rogue key) and sends ``s_ij = f_i(j)`` to each trustee
   ``j``, encrypted to ``j``'s X25519 key with ``encrypt_share`` so it can travel on the ledger.
2. Each trustee ``j`` decrypts its shares, checks each with ``verify_share`` (a dealer whose
   share fails is disqualified by the poll) and keeps ``x_j = Σ_i s_ij`` (``combine_secret_share``).
3. The poll key is ``pk = Π_i C_i0 = g^{Σ_i a_i0}`` (``joint_public_key``) and trustee ``j``'s
   verification key ``g^{x_j}`` is computable by anyone (``verification_key``). The secret
   ``Σ_i a_i0`` never exists in one place.
4. After closing, trustee ``j`` publishes ``D_j = A^{x_j}`` for the tally's ``A`` with a DLEQ
   proof against its verification key (``partial_decrypt`` / ``verify_partial``); any ``k``
   correct partials give ``A^x = Π D_j^{λ_j}`` (``combine_partials``).

Known limit: Pedersen's DKG lets a last dealer bias the public key's distribution (Gennaro,
Jarecki, Krawczyk, Rabin 1999); for ElGamal this does not help decrypt, and we accept it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.public

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, parse_json
from civicledger.errors import CivicError, EncodingError
from civicledger.services.voting import group
from civicledger.services.voting.group import IDENTITY, GroupError, L, Point
from civicledger.services.voting.proofs import DleqProof, prove_dleq, verify_dleq

__all__ = [
    "MAX_TRUSTEES",
    "Dealing",
    "DkgError",
    "combine_partials",
    "combine_secret_share",
    "deal",
    "decrypt_share",
    "encrypt_share",
    "joint_public_key",
    "lagrange_at_zero",
    "partial_decrypt",
    "prove_possession",
    "verification_key",
    "verify_partial",
    "verify_possession",
    "verify_share",
]

MAX_TRUSTEES = 20

_SHARE_VERSION = "civicledger/voting/v1/share"
_PARTIAL_TAG = b"CivicLedger/voting/v1/partial\x00"
_POSSESSION_TAG = b"CivicLedger/voting/v1/possession\x00"


class DkgError(CivicError):
    """A key-generation or combination step refused. Reasons: ``bad_threshold``,
    ``bad_trustee``, ``bad_commitments``, ``bad_share_ciphertext``, ``share_mismatch``,
    ``bad_subset``."""

    reason = "dkg_error"


def _check_threshold(k: int, n: int) -> None:
    if not 1 <= k <= n <= MAX_TRUSTEES:
        raise DkgError(
            f"need 1 <= k <= n <= {MAX_TRUSTEES}, got k={k} n={n}", reason="bad_threshold"
        )


def _check_trustee(j: int) -> None:
    if type(j) is not int or not 1 <= j <= MAX_TRUSTEES:
        raise DkgError(f"trustee numbers are 1..{MAX_TRUSTEES}, got {j!r}", reason="bad_trustee")


def _eval(coefficients: Sequence[int], x: int) -> int:
    acc = 0
    for a in reversed(coefficients):
        acc = (acc * x + a) % L
    return acc


@dataclass(frozen=True, slots=True)
class Dealing:
    """One trustee's contribution: a secret polynomial and its public commitments."""

    k: int
    n: int
    commitments: tuple[Point, ...]
    """``g^{a_0}, ..., g^{a_{k-1}}``: published."""
    _coefficients: tuple[int, ...] = field(repr=False)
    """``a_0..a_{k-1}``: never published; the dealer forgets them once shares are sent."""

    def share_for(self, j: int) -> int:
        """``f(j)``: trustee ``j``'s share of this dealer's secret."""
        _check_trustee(j)
        if j > self.n:
            raise DkgError(f"trustee {j} is not one of 1..{self.n}", reason="bad_trustee")
        return _eval(self._coefficients, j)


def _possession_context(dealer: int, context: bytes) -> bytes:
    return _POSSESSION_TAG + dealer.to_bytes(4, "big") + len(context).to_bytes(4, "big") + context


def prove_possession(dealing: Dealing, dealer: int, context: bytes) -> DleqProof:
    """A Schnorr proof (a DLEQ with ``A = g``) that the dealer knows ``log_g C_0``.

    Without it, a dealer who publishes after the others could choose
    ``C_0 = g^y · (Π_others C_i0)^-1`` and, when fewer than ``k`` honest trustees check shares
    (``n < 2k - 1`` with ``k - 1`` accomplices), craft commitments their shares still satisfy:
    the poll key would be ``g^y``, known to the attacker. Bound to the dealer's number and the
    poll's context so it cannot be copied from another dealer or ceremony.
    """
    _check_trustee(dealer)
    _, proof = prove_dleq(dealing._coefficients[0], group.G, _possession_context(dealer, context))
    return proof


def verify_possession(
    commitments: Sequence[Point], dealer: int, proof: DleqProof, context: bytes
) -> bool:
    """True if ``proof`` shows that ``dealer`` knows the secret behind ``commitments[0]``."""
    _check_trustee(dealer)
    _check_commitments(commitments)
    c0 = commitments[0]
    return verify_dleq(c0, group.G, c0, proof, _possession_context(dealer, context))


def deal(k: int, n: int) -> Dealing:
    """A fresh dealing for threshold ``k`` of ``n`` trustees."""
    _check_threshold(k, n)
    coefficients = tuple(group.random_scalar() for _ in range(k))
    return Dealing(k, n, tuple(group.base_mul(a) for a in coefficients), coefficients)


def _check_commitments(commitments: Sequence[Point]) -> None:
    if not 1 <= len(commitments) <= MAX_TRUSTEES:
        raise DkgError("a dealing has 1..20 commitments", reason="bad_commitments")
    if not all(group.is_valid(c) for c in commitments):
        raise DkgError("a commitment is not a group element", reason="bad_commitments")


def _commitment_at(commitments: Sequence[Point], j: int) -> Point:
    """``Π_t C_t^{j^t}``, the commitment to ``f(j)``."""
    acc = IDENTITY
    power = 1
    for c in commitments:
        acc = group.add(acc, group.mul(c, power))
        power = power * j % L
    return acc


def verify_share(commitments: Sequence[Point], j: int, share: int) -> bool:
    """True if ``g^share = Π_t C_t^{j^t}``: the share lies on the committed polynomial."""
    _check_trustee(j)
    _check_commitments(commitments)
    if type(share) is not int or not 0 <= share < L:
        return False
    return group.base_mul(share) == _commitment_at(commitments, j)


def encrypt_share(
    recipient_box_public: bytes, dealer: int, recipient: int, share: int, context: bytes
) -> str:
    """Seal ``share`` to the recipient's X25519 key; dealer, recipient and context ride inside.

    Returns unpadded base64url. A sealed box is anonymous, so the plaintext names who dealt it
    and for whom; ``decrypt_share`` checks both and the context (the poll), so a share cannot be
    replayed to another recipient, from another dealer or into another poll.
    """
    _check_trustee(dealer)
    _check_trustee(recipient)
    if type(share) is not int or not 0 <= share < L:
        raise DkgError("a share is a scalar in [0, L)", reason="share_mismatch")
    plaintext = canonical_json(
        {
            "v": _SHARE_VERSION,
            "dealer": dealer,
            "recipient": recipient,
            "context": context.hex(),
            "share": group.scalar_hex(share),
        }
    )
    try:
        box = nacl.public.SealedBox(nacl.public.PublicKey(recipient_box_public))
    except (nacl.exceptions.CryptoError, TypeError, ValueError) as e:
        raise DkgError("not an X25519 public key", reason="bad_trustee") from e
    return b64url(box.encrypt(plaintext))


def decrypt_share(
    box_private_key: nacl.public.PrivateKey,
    ciphertext: str,
    *,
    dealer: int,
    recipient: int,
    context: bytes,
) -> int:
    """Open a sealed share and check that it is ``dealer``'s share for ``recipient`` here."""
    try:
        sealed = from_b64url(ciphertext)
        plaintext = nacl.public.SealedBox(box_private_key).decrypt(sealed)
        obj = parse_json(plaintext)
    except (EncodingError, nacl.exceptions.CryptoError, TypeError, ValueError) as e:
        raise DkgError("the share does not decrypt", reason="bad_share_ciphertext") from e
    expected = {
        "v": _SHARE_VERSION,
        "dealer": dealer,
        "recipient": recipient,
        "context": context.hex(),
    }
    if not isinstance(obj, dict) or set(obj) != {*expected, "share"}:
        raise DkgError("the share's plaintext is malformed", reason="bad_share_ciphertext")
    if any(obj[key] != value for key, value in expected.items()):
        raise DkgError(
            "the share was dealt for another dealer, recipient or poll", reason="share_mismatch"
        )
    share = obj["share"]
    if not isinstance(share, str):
        raise DkgError("the share is not a scalar", reason="bad_share_ciphertext")
    try:
        return group.scalar_from_hex(share)
    except GroupError as e:
        raise DkgError("the share is not a scalar", reason="bad_share_ciphertext") from e


def _check_all_commitments(all_commitments: Mapping[int, Sequence[Point]]) -> int:
    """Check every dealer's commitments; return the common threshold ``k``."""
    if not 1 <= len(all_commitments) <= MAX_TRUSTEES:
        raise DkgError("need 1..20 dealers", reason="bad_commitments")
    sizes = set()
    for dealer, commitments in all_commitments.items():
        _check_trustee(dealer)
        _check_commitments(commitments)
        sizes.add(len(commitments))
    if len(sizes) != 1:
        raise DkgError("dealers committed to different thresholds", reason="bad_commitments")
    return sizes.pop()


def joint_public_key(all_commitments: Mapping[int, Sequence[Point]]) -> Point:
    """The poll key ``Π_i C_i0``; refused if it would be the identity (never, honestly)."""
    _check_all_commitments(all_commitments)
    pk = IDENTITY
    for commitments in all_commitments.values():
        pk = group.add(pk, commitments[0])
    if pk == IDENTITY:
        raise DkgError("the joint key is the identity", reason="bad_commitments")
    return pk


def verification_key(all_commitments: Mapping[int, Sequence[Point]], j: int) -> Point:
    """``g^{x_j} = Π_i Π_t C_it^{j^t}``: trustee ``j``'s public key for partial decryptions."""
    _check_trustee(j)
    k = _check_all_commitments(all_commitments)
    # Summing the dealers' commitments per degree first costs k multiplications, not n·k.
    summed = []
    for t in range(k):
        acc = IDENTITY
        for commitments in all_commitments.values():
            acc = group.add(acc, commitments[t])
        summed.append(acc)
    return _commitment_at(summed, j)


def combine_secret_share(shares_received: Mapping[int, int]) -> int:
    """``x_j = Σ_i s_ij mod L`` over the shares trustee ``j`` received (one per dealer)."""
    if not shares_received:
        raise DkgError("no shares to combine", reason="bad_subset")
    for dealer, share in shares_received.items():
        _check_trustee(dealer)
        if type(share) is not int or not 0 <= share < L:
            raise DkgError("a share is a scalar in [0, L)", reason="share_mismatch")
    return sum(shares_received.values()) % L


def _partial_context(context: bytes) -> bytes:
    return _PARTIAL_TAG + len(context).to_bytes(4, "big") + context


def partial_decrypt(x_j: int, a: Point, context: bytes) -> tuple[Point, DleqProof]:
    """``D_j = A^{x_j}`` with a proof that it matches trustee ``j``'s verification key."""
    return prove_dleq(x_j, a, _partial_context(context))


def verify_partial(vk_j: Point, a: Point, d: Point, proof: DleqProof, context: bytes) -> bool:
    """True if ``D`` is ``A`` raised to the secret behind ``vk_j``, proven in ``context``."""
    return verify_dleq(vk_j, a, d, proof, _partial_context(context))


def lagrange_at_zero(j: int, subset: Sequence[int]) -> int:
    """``λ_j = Π_{m ≠ j} m / (m - j) mod L`` for interpolating at 0 over ``subset``."""
    _check_trustee(j)
    for m in subset:
        _check_trustee(m)
    if len(set(subset)) != len(subset) or j not in subset:
        raise DkgError("the subset must be distinct trustees including j", reason="bad_subset")
    num, den = 1, 1
    for m in subset:
        if m != j:
            num = num * m % L
            den = den * (m - j) % L
    return num * pow(den, -1, L) % L


def combine_partials(partials: Mapping[int, Point]) -> Point:
    """``Π_j D_j^{λ_j}`` over exactly the given trustees: ``A^x`` if they are ``k`` honest ones.

    Verify each partial (``verify_partial``) first; this only interpolates. Given fewer than
    ``k`` partials the result is a wrong point, not an error: the count of trustees is the
    caller's policy.
    """
    if not partials:
        raise DkgError("no partial decryptions to combine", reason="bad_subset")
    subset = list(partials)
    acc = IDENTITY
    for j, d in partials.items():
        acc = group.add(acc, group.mul(d, lagrange_at_zero(j, subset)))
    return acc
