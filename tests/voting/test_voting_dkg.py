"""The trustees' key: a 3-of-5 DKG end to end, shares over sealed boxes, threshold decryption."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import nacl.public
import pytest

from civicledger.services.voting import dkg, dlog, elgamal, group
from civicledger.services.voting.ballot import ballot_context, encrypt_ballot, verify_ballot
from civicledger.services.voting.dkg import DkgError
from civicledger.services.voting.group import IDENTITY, L
from civicledger.services.voting.proofs import prove_dleq

G = group.G
K, N = 3, 5
TRUSTEES = range(1, N + 1)
POLL = b"testville/poll-7"


@dataclass(frozen=True)
class Ceremony:
    commitments: dict[int, tuple[bytes, ...]]
    secrets: dict[int, int]
    dealt_secret: int
    pk: bytes


@pytest.fixture(scope="module")
def ceremony() -> Ceremony:
    """Every trustee deals; shares travel sealed to each recipient's box key and are checked."""
    boxes = {j: nacl.public.PrivateKey.generate() for j in TRUSTEES}
    dealings = {i: dkg.deal(K, N) for i in TRUSTEES}
    sealed = {
        (i, j): dkg.encrypt_share(bytes(boxes[j].public_key), i, j, dealings[i].share_for(j), POLL)
        for i in TRUSTEES
        for j in TRUSTEES
    }
    commitments = {i: d.commitments for i, d in dealings.items()}
    for i, d in dealings.items():
        assert dkg.verify_possession(d.commitments, i, dkg.prove_possession(d, i, POLL), POLL)
    secrets = {}
    for j in TRUSTEES:
        received = {
            i: dkg.decrypt_share(boxes[j], sealed[i, j], dealer=i, recipient=j, context=POLL)
            for i in TRUSTEES
        }
        for i, share in received.items():
            assert dkg.verify_share(commitments[i], j, share)
        secrets[j] = dkg.combine_secret_share(received)
    dealt_secret = sum(_constant(d) for d in dealings.values()) % L
    return Ceremony(commitments, secrets, dealt_secret, dkg.joint_public_key(commitments))


def _constant(dealing: dkg.Dealing) -> int:
    """The dealer's secret ``f(0)``, interpolated from k shares (tests only)."""
    subset = list(range(1, dealing.k + 1))
    return sum(dealing.share_for(j) * dkg.lagrange_at_zero(j, subset) for j in subset) % L


def test_public_and_verification_keys_match_the_secrets(ceremony: Ceremony) -> None:
    assert ceremony.pk == group.base_mul(ceremony.dealt_secret)
    for j in TRUSTEES:
        assert dkg.verification_key(ceremony.commitments, j) == group.base_mul(ceremony.secrets[j])
    # Any k combined secret shares interpolate to the joint secret (which no trustee holds).
    subset = [1, 3, 5]
    x = sum(ceremony.secrets[j] * dkg.lagrange_at_zero(j, subset) for j in subset) % L
    assert x == ceremony.dealt_secret


def _tally(ceremony: Ceremony) -> tuple[list[elgamal.Ciphertext], list[int]]:
    votes = [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]]
    ballots = []
    for n, choices in enumerate(votes):
        ctx = ballot_context("testville", "poll-7", f"did:key:zVoter{n}")
        ballot, _ = encrypt_ballot(
            ceremony.pk, choices, min_selections=1, max_selections=1, context=ctx
        )
        verify_ballot(
            ceremony.pk, ballot, options=3, min_selections=1, max_selections=1, context=ctx
        )
        ballots.append(ballot)
    sums = [elgamal.sum_all(b.selections[o] for b in ballots) for o in range(3)]
    return sums, [sum(v[o] for v in votes) for o in range(3)]


def test_any_three_trustees_decrypt_the_same_tally_and_two_cannot(ceremony: Ceremony) -> None:
    sums, expected = _tally(ceremony)
    vks = {j: dkg.verification_key(ceremony.commitments, j) for j in TRUSTEES}
    for option, ct in enumerate(sums):
        partials = {}
        for j in TRUSTEES:
            d, proof = dkg.partial_decrypt(ceremony.secrets[j], ct.alpha, POLL)
            assert dkg.verify_partial(vks[j], ct.alpha, d, proof, POLL)
            partials[j] = d
        for subset in itertools.combinations(TRUSTEES, K):
            shared = dkg.combine_partials({j: partials[j] for j in subset})
            assert dlog.solve(group.sub(ct.beta, shared), 10) == expected[option]
        for pair in itertools.combinations(TRUSTEES, 2):
            shared = dkg.combine_partials({j: partials[j] for j in pair})
            assert shared != group.mul(ct.alpha, ceremony.dealt_secret)


def test_a_bad_share_is_detected() -> None:
    dealing = dkg.deal(K, N)
    assert dkg.verify_share(dealing.commitments, 2, dealing.share_for(2))
    assert not dkg.verify_share(dealing.commitments, 2, (dealing.share_for(2) + 1) % L)
    assert not dkg.verify_share(dealing.commitments, 3, dealing.share_for(2))
    assert not dkg.verify_share(dkg.deal(K, N).commitments, 2, dealing.share_for(2))
    assert not dkg.verify_share(dealing.commitments, 2, L + 5)


def test_a_wrong_partial_decryption_fails(ceremony: Ceremony) -> None:
    a = group.base_mul(group.random_scalar())
    vk1 = dkg.verification_key(ceremony.commitments, 1)
    d, proof = dkg.partial_decrypt(ceremony.secrets[1], a, POLL)
    assert dkg.verify_partial(vk1, a, d, proof, POLL)
    # Trustee 2's partial (and proof) presented as trustee 1's.
    d2, proof2 = dkg.partial_decrypt(ceremony.secrets[2], a, POLL)
    assert not dkg.verify_partial(vk1, a, d2, proof2, POLL)
    # A wrong D with the honest proof, the proof in another poll, for another ciphertext.
    assert not dkg.verify_partial(vk1, a, group.add(d, group.G), proof, POLL)
    assert not dkg.verify_partial(vk1, a, d, proof, b"other poll")
    assert not dkg.verify_partial(vk1, group.add(a, group.G), d, proof, POLL)
    # A plain DLEQ proof with the same secret is not a partial: the domains differ.
    d3, raw = prove_dleq(ceremony.secrets[1], a, POLL)
    assert d3 == d
    assert not dkg.verify_partial(vk1, a, d3, raw, POLL)


def test_sealed_shares_are_bound_to_dealer_recipient_and_poll() -> None:
    box = nacl.public.PrivateKey.generate()
    other = nacl.public.PrivateKey.generate()
    sealed = dkg.encrypt_share(bytes(box.public_key), 2, 4, 12345, POLL)
    assert dkg.decrypt_share(box, sealed, dealer=2, recipient=4, context=POLL) == 12345
    for kwargs in (
        {"dealer": 3, "recipient": 4, "context": POLL},
        {"dealer": 2, "recipient": 5, "context": POLL},
        {"dealer": 2, "recipient": 4, "context": b"another poll"},
    ):
        with pytest.raises(DkgError) as info:
            dkg.decrypt_share(box, sealed, **kwargs)  # type: ignore[arg-type]
        assert info.value.reason == "share_mismatch"
    for key, text in ((other, sealed), (box, sealed[:-4]), (box, "not base64!"), (box, "")):
        with pytest.raises(DkgError) as info:
            dkg.decrypt_share(key, text, dealer=2, recipient=4, context=POLL)
        assert info.value.reason == "bad_share_ciphertext"


def test_lagrange_coefficients_interpolate() -> None:
    subset = [2, 4, 5]
    coeffs = {j: dkg.lagrange_at_zero(j, subset) for j in subset}
    # f(x) = 7 + 3x + 11x^2 at 2, 4, 5 interpolates to f(0) = 7.
    assert sum(coeffs[j] * (7 + 3 * j + 11 * j * j) for j in subset) % L == 7
    assert dkg.lagrange_at_zero(1, [1]) == 1


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: dkg.deal(0, 3), "bad_threshold"),
        (lambda: dkg.deal(4, 3), "bad_threshold"),
        (lambda: dkg.deal(3, 21), "bad_threshold"),
        (lambda: dkg.deal(2, 3).share_for(4), "bad_trustee"),
        (lambda: dkg.deal(2, 3).share_for(0), "bad_trustee"),
        (lambda: dkg.lagrange_at_zero(1, [2, 3]), "bad_subset"),
        (lambda: dkg.lagrange_at_zero(1, [1, 1, 2]), "bad_subset"),
        (lambda: dkg.combine_partials({}), "bad_subset"),
        (lambda: dkg.combine_secret_share({}), "bad_subset"),
        (lambda: dkg.joint_public_key({}), "bad_commitments"),
        (lambda: dkg.joint_public_key({1: (IDENTITY,)}), "bad_commitments"),
        (lambda: dkg.joint_public_key({1: (group.G,), 2: (group.G, group.G)}), "bad_commitments"),
        (
            lambda: dkg.joint_public_key({1: (group.G,), 2: (group.neg(group.G),)}),
            "bad_commitments",
        ),
        (lambda: dkg.verify_share((), 1, 1), "bad_commitments"),
        (lambda: dkg.encrypt_share(b"short", 1, 2, 3, POLL), "bad_trustee"),
    ],
)
def test_refusals(call: object, reason: str) -> None:
    with pytest.raises(DkgError) as info:
        call()  # type: ignore[operator]
    assert info.value.reason == reason


def test_dealing_keeps_coefficients_out_of_its_repr() -> None:
    dealing = dkg.deal(2, 3)
    assert str(dealing.share_for(1)) not in repr(dealing)
    assert "coefficients" not in repr(dealing)


def test_proof_of_possession_verifies_and_is_bound() -> None:
    dealing = dkg.deal(K, N)
    proof = dkg.prove_possession(dealing, 2, POLL)
    assert dkg.verify_possession(dealing.commitments, 2, proof, POLL)
    assert not dkg.verify_possession(dealing.commitments, 3, proof, POLL)
    assert not dkg.verify_possession(dealing.commitments, 2, proof, b"another poll")
    assert not dkg.verify_possession(dkg.deal(K, N).commitments, 2, proof, POLL)


def test_a_rogue_key_passes_share_checks_but_not_possession() -> None:
    """3-of-4 with dealer 3 and trustee 4 colluding: only trustees 1 and 2 check dealer 3's
    shares, which a dealer can satisfy without knowing its constant term. Possession stops it."""
    k, n = 3, 4
    honest = {i: dkg.deal(k, n) for i in (1, 2, 4)}
    y = group.random_scalar()
    others = IDENTITY
    for d in honest.values():
        others = group.add(others, d.commitments[0])
    c0 = group.sub(group.base_mul(y), others)
    # C_t = C_0^{u_t} g^{v_t} with 1 + u_1 j + u_2 j^2 = 0 at j = 1, 2 cancels C_0 there.
    half = pow(2, -1, L)
    u = {1: -3 * half % L, 2: half}
    v = {1: group.random_scalar(), 2: group.random_scalar()}
    rogue = (c0, *(group.add(group.mul(c0, u[t]), group.base_mul(v[t])) for t in (1, 2)))
    for j in (1, 2):
        assert dkg.verify_share(rogue, j, (v[1] * j + v[2] * j * j) % L)
    all_commitments = {**{i: d.commitments for i, d in honest.items()}, 3: rogue}
    assert dkg.joint_public_key(all_commitments) == group.base_mul(y)  # the attacker's key
    # The best dealer 3 can offer is a proof made for a key it does know; it does not verify.
    stolen = dkg.prove_possession(honest[4], 3, POLL)
    assert not dkg.verify_possession(rogue, 3, stolen, POLL)
