"""Range and DLEQ proofs, and whole ballots: honest inputs verify, every tampering fails."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.services.voting import elgamal, group
from civicledger.services.voting.ballot import (
    MAX_OPTIONS,
    BallotError,
    EncryptedBallot,
    _selection_context,
    _total_context,
    ballot_context,
    encrypt_ballot,
    tracking_code,
    verify_ballot,
)
from civicledger.services.voting.elgamal import Ciphertext
from civicledger.services.voting.group import IDENTITY, L
from civicledger.services.voting.proofs import (
    DleqProof,
    ProofFormatError,
    RangeProof,
    prove_dleq,
    prove_range,
    verify_dleq,
    verify_range,
)

SK = 0x1234_5678_9ABC_DEF0
PK = group.base_mul(SK)
CTX = ballot_context("testville", "poll-1", "did:key:zVoterA")
OTHER_VOTER = ballot_context("testville", "poll-1", "did:key:zVoterB")
OTHER_POLL = ballot_context("testville", "poll-2", "did:key:zVoterA")
OTHER_CHAIN = ballot_context("otherville", "poll-1", "did:key:zVoterA")
ORDER_8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")


# --- Range proofs --------------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi"), [(0, 1), (0, 0), (2, 2), (1, 3), (0, 20)])
def test_honest_range_proofs_verify_for_every_value(lo: int, hi: int) -> None:
    for m in sorted({lo, hi, (lo + hi) // 2}):
        r = group.random_scalar()
        ct = elgamal.encrypt(PK, m, r)
        proof = prove_range(PK, ct, m, r, lo, hi, b"ctx")
        assert verify_range(PK, ct, proof, lo, hi, b"ctx")
        assert RangeProof.from_json(proof.to_json()) == proof


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([0, 1]), st.integers(1, L - 1))
def test_selection_proofs_verify_property(m: int, r: int) -> None:
    ct = elgamal.encrypt(PK, m, r)
    assert verify_range(PK, ct, prove_range(PK, ct, m, r, 0, 1, b"c"), 0, 1, b"c")


def test_a_selection_of_two_cannot_be_proven_zero_or_one() -> None:
    r = group.random_scalar()
    two = elgamal.encrypt(PK, 2, r)
    with pytest.raises(ValueError, match="not in"):
        prove_range(PK, two, 2, r, 0, 1, b"ctx")
    # A lying prover who claims either branch produces a proof that fails.
    for claimed in (0, 1):
        proof = prove_range(PK, two, claimed, r, 0, 1, b"ctx")
        assert not verify_range(PK, two, proof, 0, 1, b"ctx")


def test_a_negative_selection_cannot_be_proven() -> None:
    r = group.random_scalar()
    minus_one = elgamal.encrypt(PK, L - 1, r)
    for claimed in (0, 1):
        assert not verify_range(
            PK, minus_one, prove_range(PK, minus_one, claimed, r, 0, 1, b"c"), 0, 1, b"c"
        )


def _honest() -> tuple[Ciphertext, RangeProof]:
    r = group.random_scalar()
    ct = elgamal.encrypt(PK, 1, r)
    return ct, prove_range(PK, ct, 1, r, 0, 1, b"ctx")


def test_range_proof_tampering_fails() -> None:
    ct, proof = _honest()
    other_ct, _ = _honest()
    c, s = proof.challenges, proof.responses
    cases: list[tuple[str, Any]] = [
        ("other context", (PK, ct, proof, 0, 1, b"ctx2")),
        ("other ciphertext", (PK, other_ct, proof, 0, 1, b"ctx")),
        ("other key", (group.base_mul(SK + 1), ct, proof, 0, 1, b"ctx")),
        ("other bounds", (PK, ct, proof, 1, 2, b"ctx")),
        ("wider bounds", (PK, ct, proof, 0, 2, b"ctx")),
        ("tampered response", (PK, ct, RangeProof(c, (s[0], (s[1] + 1) % L)), 0, 1, b"ctx")),
        ("tampered challenge", (PK, ct, RangeProof((c[0], (c[1] + 1) % L), s), 0, 1, b"ctx")),
        ("swapped branches", (PK, ct, RangeProof(c[::-1], s[::-1]), 0, 1, b"ctx")),
        ("rerandomised ct", (PK, elgamal.add(ct, elgamal.encrypt(PK, 0, 5)), proof, 0, 1, b"ctx")),
        ("identity key", (IDENTITY, ct, proof, 0, 1, b"ctx")),
    ]
    for label, args in cases:
        assert not verify_range(*args), label


def test_range_bounds_are_limited() -> None:
    ct, _ = _honest()
    with pytest.raises(ValueError, match="range"):
        prove_range(PK, ct, 1, 1, 0, 21, b"")
    with pytest.raises(ValueError, match="range"):
        prove_range(PK, ct, 1, 1, 2, 1, b"")


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"challenges": [], "responses": []},
        {"challenges": ["00" * 32], "responses": ["00" * 32, "00" * 32]},
        {"challenges": ["00" * 32] * 22, "responses": ["00" * 32] * 22},
        {"challenges": [L.to_bytes(32, "little").hex()], "responses": ["00" * 32]},
        {"challenges": ["zz" * 32], "responses": ["00" * 32]},
        {"challenges": [1], "responses": ["00" * 32]},
        {"challenges": "00" * 32, "responses": ["00" * 32]},
        {"challenges": ["00" * 32], "responses": ["00" * 32], "extra": 1},
    ],
)
def test_malformed_range_proofs_are_refused(obj: dict[str, Any]) -> None:
    with pytest.raises(ProofFormatError) as info:
        RangeProof.from_json(obj)
    assert info.value.reason == "malformed_proof"


# --- DLEQ proofs ---------------------------------------------------------------------------


def test_dleq_honest_and_tampered() -> None:
    x = group.random_scalar()
    big_x = group.base_mul(x)
    a = group.base_mul(group.random_scalar())
    d, proof = prove_dleq(x, a, b"ctx")
    assert d == group.mul(a, x)
    assert verify_dleq(big_x, a, d, proof, b"ctx")
    assert DleqProof.from_json(proof.to_json()) == proof
    wrong_d = group.mul(a, x + 1)
    cases = [
        ("other context", (big_x, a, d, proof, b"other")),
        ("wrong D", (big_x, a, wrong_d, proof, b"ctx")),
        ("other A", (big_x, group.add(a, group.G), d, proof, b"ctx")),
        ("other X", (group.base_mul(x + 1), a, d, proof, b"ctx")),
        ("tampered response", (big_x, a, d, DleqProof(proof.challenge, proof.response ^ 1), b"c")),
        ("identity X", (IDENTITY, a, d, proof, b"ctx")),
    ]
    for label, args in cases:
        assert not verify_dleq(*args), label


def test_dleq_over_the_identity() -> None:
    x = group.random_scalar()
    d, proof = prove_dleq(x, IDENTITY, b"c")
    assert d == IDENTITY
    assert verify_dleq(group.base_mul(x), IDENTITY, d, proof, b"c")


@pytest.mark.parametrize(
    "obj",
    [{}, {"challenge": "00" * 32}, {"challenge": "00" * 32, "response": "ff" * 32}],
)
def test_malformed_dleq_proofs_are_refused(obj: dict[str, Any]) -> None:
    with pytest.raises(ProofFormatError):
        DleqProof.from_json(obj)


# --- Ballots -------------------------------------------------------------------------------


def _ballot(choices: list[int], lo: int = 0, hi: int = 1, ctx: bytes = CTX) -> EncryptedBallot:
    ballot, _ = encrypt_ballot(PK, choices, min_selections=lo, max_selections=hi, context=ctx)
    return ballot


def _verify(ballot: EncryptedBallot, lo: int = 0, hi: int = 1, ctx: bytes = CTX) -> None:
    options = len(ballot.selections)
    verify_ballot(PK, ballot, options=options, min_selections=lo, max_selections=hi, context=ctx)


def _reason(ballot: EncryptedBallot, lo: int = 0, hi: int = 1, ctx: bytes = CTX) -> str:
    with pytest.raises(BallotError) as info:
        _verify(ballot, lo, hi, ctx)
    return info.value.reason


@pytest.mark.parametrize(
    ("choices", "lo", "hi"),
    [([1, 0, 0], 1, 1), ([0, 0, 0], 0, 1), ([1, 1, 0], 0, 3), ([1], 1, 1), ([0, 1], 0, 2)],
)
def test_honest_ballots_verify_and_decrypt(choices: list[int], lo: int, hi: int) -> None:
    ballot, rs = encrypt_ballot(PK, choices, min_selections=lo, max_selections=hi, context=CTX)
    _verify(ballot, lo, hi)
    for ct, m, r in zip(ballot.selections, choices, rs, strict=True):
        assert ct == elgamal.encrypt(PK, m, r)
        assert elgamal.decrypt_to_point(SK, ct) == group.base_mul(m)
    assert EncryptedBallot.from_json(ballot.to_json()) == ballot


def test_a_ballot_moved_to_another_voter_poll_or_chain_fails() -> None:
    ballot = _ballot([0, 1, 0])
    for ctx in (OTHER_VOTER, OTHER_POLL, OTHER_CHAIN):
        assert _reason(ballot, ctx=ctx) == "bad_selection_proof"


def test_contexts_differ_and_are_unambiguous() -> None:
    assert len({CTX, OTHER_VOTER, OTHER_POLL, OTHER_CHAIN}) == 4
    assert ballot_context("a", "bc", "d") != ballot_context("ab", "c", "d")


def test_swapped_ciphertexts_fail() -> None:
    ballot = _ballot([1, 0, 0])
    s, p = ballot.selections, ballot.selection_proofs
    swapped_cts = dataclasses.replace(ballot, selections=(s[1], s[0], s[2]))
    assert _reason(swapped_cts) == "bad_selection_proof"
    # Moving a ciphertext together with its proof fails too: proofs are bound to positions.
    swapped_both = dataclasses.replace(
        ballot, selections=(s[1], s[0], s[2]), selection_proofs=(p[1], p[0], p[2])
    )
    assert _reason(swapped_both) == "bad_selection_proof"
    other = _ballot([1, 0, 0])
    foreign = dataclasses.replace(ballot, total_proof=other.total_proof)
    assert _reason(foreign) == "bad_total_proof"


def test_tampered_response_fails() -> None:
    ballot = _ballot([0, 1])
    proof = ballot.selection_proofs[1]
    bad = RangeProof(proof.challenges, (proof.responses[0], (proof.responses[1] + 1) % L))
    tampered = dataclasses.replace(ballot, selection_proofs=(ballot.selection_proofs[0], bad))
    assert _reason(tampered) == "bad_selection_proof"
    t = ballot.total_proof
    bad_total = RangeProof(t.challenges, tuple((s + 1) % L for s in t.responses))
    assert _reason(dataclasses.replace(ballot, total_proof=bad_total)) == "bad_total_proof"


def test_a_selection_of_two_fails() -> None:
    ballot, rs = encrypt_ballot(PK, [1, 0], min_selections=0, max_selections=2, context=CTX)
    two = elgamal.encrypt(PK, 2, rs[0])
    lying = prove_range(PK, two, 1, rs[0], 0, 1, _selection_context(CTX, 0))
    forged = dataclasses.replace(
        ballot,
        selections=(two, ballot.selections[1]),
        selection_proofs=(lying, ballot.selection_proofs[1]),
    )
    assert _reason(forged, 0, 2) == "bad_selection_proof"


def test_a_total_outside_the_bounds_fails() -> None:
    with pytest.raises(BallotError) as info:
        _ballot([1, 1, 0], 0, 1)
    assert info.value.reason == "invalid_choices"
    # A ballot made for wider bounds does not pass narrower ones.
    assert _reason(_ballot([1, 1, 0], 0, 2), 0, 1) == "bad_total_proof"
    assert _reason(_ballot([0, 0, 0], 0, 1), 1, 1) == "bad_total_proof"
    # A lying total proof: two selections claimed as one.
    ballot, rs = encrypt_ballot(PK, [1, 1, 0], min_selections=0, max_selections=3, context=CTX)
    total = elgamal.sum_all(ballot.selections)
    lying = prove_range(PK, total, 1, sum(rs) % L, 0, 1, _total_context(CTX))
    assert _reason(dataclasses.replace(ballot, total_proof=lying), 0, 1) == "bad_total_proof"


def test_wrong_option_count_and_identity_alpha() -> None:
    ballot = _ballot([1, 0, 0])
    with pytest.raises(BallotError) as info:
        verify_ballot(PK, ballot, options=4, min_selections=0, max_selections=1, context=CTX)
    assert info.value.reason == "wrong_option_count"
    revealed = Ciphertext(IDENTITY, group.base_mul(1))
    exposed = dataclasses.replace(ballot, selections=(revealed, *ballot.selections[1:]))
    assert _reason(exposed) == "bad_group_element"


@pytest.mark.parametrize(
    ("choices", "lo", "hi"),
    [([2, 0], 0, 2), ([1, 0], 2, 1), ([1] * 3, 0, 4), ([], 0, 0), ([0] * 21, 0, 1), ([1, 1], 0, 1)],
)
def test_encrypt_ballot_refuses_bad_choices(choices: list[int], lo: int, hi: int) -> None:
    with pytest.raises(BallotError):
        encrypt_ballot(PK, choices, min_selections=lo, max_selections=hi, context=CTX)


def _mutate(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = dict(obj)
    if path == "-":
        return value  # type: ignore[no-any-return]
    out[path] = value
    return out


def test_malformed_ballot_json_is_refused() -> None:
    good = _ballot([1, 0]).to_json()
    sel, proofs = good["selections"], good["selection_proofs"]
    torsion = group.add(group.G, ORDER_8)
    cases = [
        ("not an object", "-", [], "malformed_ballot"),
        ("extra key", "extra", 1, "malformed_ballot"),
        ("selections not a list", "selections", "x", "malformed_ballot"),
        ("no selections", "selections", [], "wrong_option_count"),
        ("too many", "selections", sel * 11, "wrong_option_count"),
        ("proof count", "selection_proofs", proofs[:1], "wrong_option_count"),
        (
            "bad point",
            "selections",
            [{"alpha": torsion.hex(), "beta": sel[0]["beta"]}, sel[1]],
            "bad_group_element",
        ),
        (
            "bad scalar",
            "total_proof",
            {"challenges": ["ff" * 32], "responses": ["00" * 32]},
            "malformed_ballot",
        ),
        ("bad proof shape", "selection_proofs", [{}, proofs[1]], "malformed_ballot"),
    ]
    for label, path, value, reason in cases:
        with pytest.raises(BallotError) as info:
            EncryptedBallot.from_json(_mutate(good, path, value))
        assert info.value.reason == reason, label
    del good["total_proof"]
    with pytest.raises(BallotError):
        EncryptedBallot.from_json(good)


def test_tracking_code_depends_on_ballot_and_context() -> None:
    ballot = _ballot([1, 0])
    code = tracking_code(ballot, CTX)
    assert len(code) == 64
    assert code == tracking_code(EncryptedBallot.from_json(ballot.to_json()), CTX)
    assert code != tracking_code(ballot, OTHER_VOTER)
    assert code != tracking_code(_ballot([1, 0]), CTX)


def test_max_options_is_twenty() -> None:
    assert MAX_OPTIONS == 20
