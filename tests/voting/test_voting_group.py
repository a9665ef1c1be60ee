"""The group, exponential ElGamal and the small discrete log: laws, edge cases, bad encodings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.errors import CivicError
from civicledger.services.voting import dlog, elgamal, group
from civicledger.services.voting.elgamal import Ciphertext
from civicledger.services.voting.group import IDENTITY, G, GroupError, L

SLOW = settings(max_examples=15, deadline=None)

# A point of order 8 (from libsodium's small-order blocklist).
ORDER_8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
# y = p - 1, x = 0: the point of order 2.
ORDER_2 = bytes.fromhex("ec" + "ff" * 30 + "7f")
# The identity with the sign bit of x set: x = 0 has no negative, so the encoding is invalid.
NON_CANONICAL_IDENTITY = bytes.fromhex("01" + "00" * 30 + "80")
# y = p + 1 encodes the identity's y non-canonically.
NON_CANONICAL_Y = bytes.fromhex("ee" + "ff" * 30 + "7f")

scalars = st.integers(min_value=0, max_value=L - 1)
small = st.integers(min_value=0, max_value=1000)


def test_generator_is_the_ed25519_base_point() -> None:
    assert G.hex() == "58" + "66" * 31
    assert group.is_valid(G)
    assert group.base_mul(1) == G


def test_zero_scalar_and_identity_give_the_identity() -> None:
    assert group.base_mul(0) == IDENTITY
    assert group.base_mul(L) == IDENTITY
    assert group.mul(G, 0) == IDENTITY
    assert group.mul(G, 2 * L) == IDENTITY
    assert group.mul(IDENTITY, 12345) == IDENTITY
    assert group.add(G, IDENTITY) == G
    assert group.sub(G, G) == IDENTITY
    assert group.neg(IDENTITY) == IDENTITY


def test_identity_is_not_a_valid_point_but_may_be_allowed() -> None:
    assert not group.is_valid(IDENTITY)
    with pytest.raises(GroupError):
        group.point_from_hex(IDENTITY.hex())
    assert group.point_from_hex(IDENTITY.hex(), allow_identity=True) == IDENTITY


def test_order_of_the_group_is_l() -> None:
    assert group.mul(G, L - 1) == group.neg(G)
    assert group.mul(G, L + 5) == group.base_mul(5)


@SLOW
@given(scalars, scalars)
def test_exponent_laws(a: int, b: int) -> None:
    assert group.add(group.base_mul(a), group.base_mul(b)) == group.base_mul(a + b)
    assert group.sub(group.base_mul(a), group.base_mul(b)) == group.base_mul(a - b)
    assert group.mul(group.base_mul(a), b) == group.base_mul(a * b)
    assert group.add(group.base_mul(a), group.neg(group.base_mul(a))) == IDENTITY


MIXED_ORDER = group.add(G, ORDER_8)  # libsodium's add checks only that points are on the curve


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("empty", ""),
        ("short", G.hex()[:-2]),
        ("long", G.hex() + "00"),
        ("not hex", "zz" * 32),
        ("uppercase", group.base_mul(2).hex().upper()),
        ("identity", IDENTITY.hex()),
        ("order 2", ORDER_2.hex()),
        ("order 8", ORDER_8.hex()),
        ("torsion component", MIXED_ORDER.hex()),
        ("non-canonical identity", NON_CANONICAL_IDENTITY.hex()),
        ("non-canonical y", NON_CANONICAL_Y.hex()),
        ("all ones", "ff" * 32),
    ],
)
def test_bad_point_encodings_are_refused(label: str, text: str) -> None:
    with pytest.raises(GroupError) as info:
        group.point_from_hex(text)
    assert info.value.reason == "bad_group_element", label
    assert isinstance(info.value, CivicError)


@pytest.mark.parametrize("point", [ORDER_2, ORDER_8, MIXED_ORDER])
def test_mul_refuses_points_outside_the_subgroup(point: bytes) -> None:
    assert not group.is_valid(point)
    with pytest.raises(GroupError):
        group.mul(point, 7)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "00" * 31,
        "zz" * 32,
        "AB" * 32,
        L.to_bytes(32, "little").hex(),
        (2**256 - 1).to_bytes(32, "little").hex(),
    ],
)
def test_bad_scalar_encodings_are_refused(text: str) -> None:
    with pytest.raises(GroupError):
        group.scalar_from_hex(text)


@SLOW
@given(scalars)
def test_encodings_round_trip(k: int) -> None:
    assert group.scalar_from_hex(group.scalar_hex(k)) == k
    p = group.base_mul(k)
    assert group.point_from_hex(group.point_hex(p), allow_identity=True) == p


def test_hash_to_scalar_is_domain_separated_and_unambiguous() -> None:
    h = group.hash_to_scalar
    assert h("a", b"x") == h("a", b"x")
    assert h("a", b"x") != h("b", b"x")
    assert h("a", b"ab", b"c") != h("a", b"a", b"bc")
    assert h("a", b"1") != h("a", "1") != h("a", 1)
    assert 0 <= h("a") < L
    with pytest.raises(GroupError):
        h("a", -1)


def test_random_scalars_are_nonzero_and_distinct() -> None:
    values = {group.random_scalar() for _ in range(50)}
    assert len(values) == 50
    assert all(0 < v < L for v in values)


# --- ElGamal -------------------------------------------------------------------------------


@SLOW
@given(st.lists(st.tuples(small, st.integers(1, L - 1)), min_size=0, max_size=5))
def test_homomorphic_sum_decrypts_to_the_sum(items: list[tuple[int, int]]) -> None:
    sk = 1234567
    pk = group.base_mul(sk)
    total = elgamal.sum_all(elgamal.encrypt(pk, m, r) for m, r in items)
    assert total == elgamal.encrypt(pk, sum(m for m, _ in items), sum(r for _, r in items))
    point = elgamal.decrypt_to_point(sk, total)
    assert dlog.solve(point, 5000) == sum(m for m, _ in items)


def test_add_sub_and_zero() -> None:
    pk = group.base_mul(99)
    a, b = elgamal.encrypt(pk, 3, 11), elgamal.encrypt(pk, 5, 13)
    assert elgamal.add(a, elgamal.ZERO) == a
    assert elgamal.sub(elgamal.add(a, b), b) == a
    assert elgamal.sum_all([]) == elgamal.ZERO
    assert elgamal.decrypt_to_point(99, elgamal.sub(b, a)) == group.base_mul(2)


def test_ciphertext_json_round_trip_and_refusals() -> None:
    ct = elgamal.encrypt(group.base_mul(5), 1, 7)
    assert Ciphertext.from_json(ct.to_json()) == ct
    assert Ciphertext.from_json(elgamal.ZERO.to_json()) == elgamal.ZERO
    bad = [
        {"alpha": ct.to_json()["alpha"]},
        {**ct.to_json(), "extra": "00"},
        {"alpha": ORDER_8.hex(), "beta": ct.to_json()["beta"]},
        {"alpha": 5, "beta": ct.to_json()["beta"]},
        [ct.to_json()["alpha"], ct.to_json()["beta"]],
    ]
    for obj in bad:
        with pytest.raises(GroupError):
            Ciphertext.from_json(obj)  # type: ignore[arg-type]
    with pytest.raises(GroupError):
        Ciphertext(b"\x00" * 31, IDENTITY)


# --- Discrete log --------------------------------------------------------------------------


@pytest.mark.parametrize("m", [0, 1, 2, 999, 1000, 1001, 123456, 999_999, 1_000_000])
def test_dlog_round_trips_up_to_a_million(m: int) -> None:
    assert dlog.solve(group.base_mul(m), 1_000_000) == m


@pytest.mark.parametrize(("m", "max_value"), [(0, 0), (1, 1), (7, 7), (15, 15), (16, 16)])
def test_dlog_small_ranges_including_the_maximum(m: int, max_value: int) -> None:
    assert dlog.solve(group.base_mul(m), max_value) == m


@pytest.mark.parametrize(("m", "max_value"), [(1, 0), (8, 7), (17, 16), (1001, 1000), (L - 1, 100)])
def test_dlog_out_of_range_is_refused(m: int, max_value: int) -> None:
    with pytest.raises(dlog.DlogError) as info:
        dlog.solve(group.base_mul(m), max_value)
    assert info.value.reason == "result_out_of_range"


def test_dlog_refuses_points_outside_the_group_and_bad_bounds() -> None:
    with pytest.raises(GroupError):
        dlog.solve(ORDER_8, 10)
    with pytest.raises(ValueError, match="max_value"):
        dlog.solve(G, -1)
