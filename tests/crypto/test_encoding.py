"""Canonical JSON: the published RFC 8785 vectors, and our fast path against ``rfc8785`` itself.

``canonical_json`` hands "simple" values (ASCII keys, ints within 2**53) to ``json.dumps`` and
everything else to ``rfc8785``. Whatever path a value takes, the bytes must be the RFC 8785 bytes,
or both implementations must refuse the value; a float is refused wherever it hides.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from civicledger.crypto.encoding import (
    _fast_dumps,
    _is_simple,
    b64url,
    canonical_json,
    from_b64url,
    from_hex,
    parse_json,
)
from civicledger.errors import EncodingError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The test data the RFC points to (github.com/cyberphone/json-canonicalization, testdata/input
# and testdata/outhex). "values" holds floats, which CivicLedger refuses; "structures" writes the
# integer 56 as ``56.0``, which is read here as the integer it denotes.
RFC8785_VECTORS = {
    "arrays": (
        '[56, {"d": true, "10": null, "1": [ ]}]',
        "5b35362c7b2231223a5b5d2c223130223a6e756c6c2c2264223a747275657d5d",
    ),
    "french": (
        '{"peach": "This sorting order", "p\\u00e9ch\\u00e9": "is wrong according to French",'
        ' "p\\u00eache": "but canonicalization MUST", "sin": "ignore locale"}',
        "7b227065616368223a225468697320736f7274696e67206f72646572222c2270c3a96368c3a9223a226973"
        "2077726f6e67206163636f7264696e6720746f204672656e6368222c2270c3aa636865223a22627574206361"
        "6e6f6e6963616c697a6174696f6e204d555354222c2273696e223a2269676e6f7265206c6f63616c65227d",
    ),
    "structures": (
        '{"1": {"f": {"f": "hi","F": 5} ,"\\n": 56.0}, "10": { }, "": "empty", "a": { },'
        ' "111": [ {"e": "yes","E": "no" } ], "A": { }}',
        "7b22223a22656d707479222c2231223a7b225c6e223a35362c2266223a7b2246223a352c2266223a226869"
        "227d7d2c223130223a7b7d2c22313131223a5b7b2245223a226e6f222c2265223a22796573227d5d2c2241"
        "223a7b7d2c2261223a7b7d7d",
    ),
    "unicode": (
        '{"Unnormalized Unicode":"A\\u030a"}',
        "7b22556e6e6f726d616c697a656420556e69636f6465223a2241cc8a227d",
    ),
    "weird": (
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\u000a": "Newline", "1": "One",'
        ' "\\u0080": "Control\\u007f", "\\ud83d\\ude02": "Smiley",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis",'
        ' "\\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}',
        "7b225c6e223a224e65776c696e65222c225c72223a2243617272696167652052657475726e222c2231223a"
        "224f6e65222c223c2f7363726970743e223a2242726f77736572204368616c6c656e6765222c22c280223a"
        "22436f6e74726f6c7f222c22c3b6223a224c6174696e20536d616c6c204c6574746572204f205769746820"
        "446961657265736973222c22e282ac223a224575726f205369676e222c22f09f9882223a22536d696c6579"
        "222c22efacb3223a22486562726577204c65747465722044616c6574205769746820446167657368227d",
    ),
}
RFC8785_VALUES_WITH_FLOATS = (
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
    ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
    ' "literals": [null, true, false]}'
)


def _integral(text: str) -> int:
    number = float(text)
    assert number.is_integer(), text
    return int(number)


@pytest.mark.parametrize("name", sorted(RFC8785_VECTORS))
def test_rfc8785_published_vectors(name: str) -> None:
    source, expected_hex = RFC8785_VECTORS[name]
    value = json.loads(source, parse_float=_integral)
    expected = bytes.fromhex(expected_hex)
    assert canonical_json(value) == expected
    if _is_simple(value):
        assert _fast_dumps(value).encode("utf-8") == expected


def test_vectors_exercise_both_paths() -> None:
    paths = {
        _is_simple(json.loads(src, parse_float=_integral)) for src, _ in RFC8785_VECTORS.values()
    }
    assert paths == {True, False}


def test_rfc8785_values_vector_is_refused_for_its_floats() -> None:
    value = json.loads(RFC8785_VALUES_WITH_FLOATS)
    rfc8785.dumps(value)  # the reference accepts it ...
    with pytest.raises(EncodingError, match="float"):
        canonical_json(value)  # ... CivicLedger does not: amounts are never fractional


# -- hypothesis: arbitrary JSON values -----------------------------------------------------------

_BOUNDARY_INTS = st.sampled_from(
    [0, -1, 2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**53 + 1, 2**63, -(2**64), 10**30]
)
_INTS = st.one_of(st.integers(), _BOUNDARY_INTS, st.integers(-(2**60), 2**60))
_TEXT = st.text()  # every Unicode scalar value: controls, U+2028, astral; never a lone surrogate
_ASCII_TEXT = st.text(st.characters(max_codepoint=0x7F))
_KEYS = st.one_of(_ASCII_TEXT, _TEXT, st.sampled_from(["\uffff", "\U00010000", "\ufb33", "é"]))
_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _TEXT)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_KEYS, children, max_size=5),
    max_leaves=25,
)
SIMPLE_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53 - 1), 2**53 - 1), _TEXT),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(_ASCII_TEXT, children, max_size=5)
    ),
    max_leaves=25,
)


@SETTINGS
@given(JSON_VALUES)
@example({"\uffff": 1, "\U00010000": 2})  # UTF-16 order puts the astral key first
@example({"a": '\u2028\u2029\x7f\x00\x1f\\"/'})
@example([2**53 - 1, -(2**53 - 1)])
@example([2**53])
@example({"é": 2**53})
@example([True, 1, False, 0])
def test_canonical_json_equals_rfc8785_or_both_refuse(value: Any) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(EncodingError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected
    if _is_simple(value):
        assert _fast_dumps(value).encode("utf-8") == expected


@SETTINGS
@given(SIMPLE_VALUES)
def test_fast_path_is_taken_and_correct_for_simple_values(value: Any) -> None:
    assert _is_simple(value)
    assert _fast_dumps(value).encode("utf-8") == rfc8785.dumps(value)


_SURROGATES = st.characters(categories=["Cs"])
_WITH_SURROGATE = st.tuples(_TEXT, _SURROGATES, _TEXT).map("".join)


@SETTINGS
@given(
    st.one_of(
        _WITH_SURROGATE,
        st.builds(lambda s: [s], _WITH_SURROGATE),
        st.builds(lambda s: {"k": s}, _WITH_SURROGATE),
        st.builds(lambda s: {s: 1}, _WITH_SURROGATE),
    )
)
def test_lone_surrogates_are_refused_like_rfc8785(value: Any) -> None:
    with pytest.raises((rfc8785.CanonicalizationError, UnicodeEncodeError)):
        rfc8785.dumps(value)
    with pytest.raises(EncodingError):
        canonical_json(value)


def _insert(items: list[Any], item: Any, at: int) -> list[Any]:
    return [*items[:at], item, *items[at:]]


_FLOATS = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 1.0, 2.0**53, float("nan")]))
WITH_FLOAT: st.SearchStrategy[Any] = st.deferred(
    lambda: st.one_of(
        _FLOATS,
        st.builds(_insert, st.lists(JSON_VALUES, max_size=3), WITH_FLOAT, st.integers(0, 3)),
        st.builds(
            lambda d, k, f: {**d, k: f},
            st.dictionaries(_KEYS, JSON_VALUES, max_size=3),
            _KEYS,
            WITH_FLOAT,
        ),
    )
)


@SETTINGS
@given(WITH_FLOAT)
@example({"é": [1.0]})  # a non-ASCII key sends the value down the rfc8785 path
@example({"a": -0.0})
def test_a_float_anywhere_is_refused(value: Any) -> None:
    with pytest.raises(EncodingError):
        canonical_json(value)


@SETTINGS
@given(JSON_VALUES)
def test_parse_json_round_trips_canonical_bytes(value: Any) -> None:
    try:
        data = canonical_json(value)
    except EncodingError:
        return
    parsed = parse_json(data)
    assert canonical_json(parsed) == data  # type-exact: ``true`` never comes back as 1


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"a": 1, "a": 2}', "duplicate JSON key 'a'"),
        (b'{"x": {"b": 1, "b": 1}}', "duplicate JSON key 'b'"),
        (b'[{"\\u0061": 1, "a": 2}]', "duplicate JSON key 'a'"),  # same key, escaped once
        (b"1.0", "floats are not allowed"),
        (b"[1e3]", "floats are not allowed"),
        (b'{"a": -0.0}', "floats are not allowed"),
        (b"[1E-2]", "floats are not allowed"),
        (b"NaN", "invalid JSON constant NaN"),
        (b"[Infinity]", "invalid JSON constant Infinity"),
        (b"-Infinity", "invalid JSON constant -Infinity"),
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b'{"a": 1} x', "not valid JSON"),
        (b"{'a': 1}", "not valid JSON"),
        (b'"\xff"', "not valid JSON"),
        (b'"\xc3"', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
    ids=lambda v: v[:24] if isinstance(v, bytes) else None,
)
def test_parse_json_refuses(data: bytes, match: str) -> None:
    with pytest.raises(EncodingError, match=match):
        parse_json(data)


@SETTINGS
@given(st.binary(max_size=100))
def test_b64url_round_trips_unpadded(data: bytes) -> None:
    text = b64url(data)
    assert "=" not in text
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert from_b64url(text) == data


@pytest.mark.parametrize(
    ("text", "size", "match"),
    [
        ("zz", None, "not hex"),
        ("abc", None, "not hex"),
        ("00" * 31, 32, "expected 32 bytes of hex, got 31"),
        ("00" * 33, 32, "expected 32 bytes of hex, got 33"),
    ],
)
def test_from_hex_refuses(text: str, size: int | None, match: str) -> None:
    with pytest.raises(EncodingError, match=match):
        from_hex(text, size=size)


def test_from_b64url_refuses_impossible_lengths() -> None:
    with pytest.raises(EncodingError, match="not base64url"):
        from_b64url("A")  # one character can never encode a byte
