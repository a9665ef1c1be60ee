"""Bitstring Status List: bit order, encoding, bounded decoding, allocation, status checks."""

from __future__ import annotations

import gzip
import zlib
from random import Random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from civicledger.crypto.encoding import b64url, canonical_json, from_b64url, sha256
from civicledger.services.identity.status_list import (
    MIN_BITS,
    IndexAllocator,
    StatusEntry,
    StatusError,
    StatusList,
    check_status,
    list_credential_digest,
    status_list_credential,
)

# W3C Bitstring Status List v1.0, Examples 3 and 5 (and VC 2.0 examples): an empty list of the
# minimum size. Example 4's credential uses index 94567 of it.
SPEC_ENCODED_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"
SPEC_ENTRY = {
    "id": "https://example.com/credentials/status/3#94567",
    "type": "BitstringStatusListEntry",
    "statusPurpose": "revocation",
    "statusListIndex": "94567",
    "statusListCredential": "https://example.com/credentials/status/3",
}
LIST_URL = "https://city.example/status/revocation-1"
ISSUER = "did:web:city.example"


def _encode_bytes(data: bytes) -> str:
    return "u" + b64url(gzip.compress(data, mtime=0))


def _credential(status_list: StatusList, url: str = LIST_URL, **extra: Any) -> dict[str, Any]:
    return status_list_credential(status_list, credential_id=url, issuer=ISSUER, **extra)


# -- the spec's vectors ------------------------------------------------------------------------


def test_spec_example_decodes_to_an_empty_minimum_list() -> None:
    decoded = StatusList.decode(SPEC_ENCODED_LIST, "revocation")
    assert decoded.size == MIN_BITS == 131_072
    assert decoded.to_bytes() == bytes(MIN_BITS // 8)
    assert decoded.set_indices() == []
    assert decoded == StatusList("revocation")


def test_spec_example_entry_round_trips_and_is_not_revoked() -> None:
    entry = StatusEntry.from_json(SPEC_ENTRY)
    assert (entry.index, entry.purpose) == (94567, "revocation")
    assert entry.to_json() == SPEC_ENTRY
    document = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "https://example.com/credentials/status/3",
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": "did:example:12345",
        "validFrom": "2021-04-05T14:27:40Z",
        "credentialSubject": {
            "id": "https://example.com/status/3#list",
            "type": "BitstringStatusList",
            "statusPurpose": "revocation",
            "encodedList": SPEC_ENCODED_LIST,
        },
    }
    status = check_status(entry, document, list_credential_digest(document))
    assert (status.revoked, status.suspended) == (False, False)


# -- bits --------------------------------------------------------------------------------------


def test_index_zero_is_the_leftmost_bit_of_the_first_byte() -> None:
    status_list = StatusList("revocation")
    status_list.set(0)
    status_list.set(9)
    status_list.set(MIN_BITS - 1)
    data = status_list.to_bytes()
    assert data[:2] == bytes([0b1000_0000, 0b0100_0000])
    assert data[-1] == 0b0000_0001
    assert status_list.set_indices() == [0, 9, MIN_BITS - 1]
    decoded = StatusList.decode(_encode_bytes(data), "revocation")
    assert [decoded.get(i) for i in (0, 1, 8, 9, MIN_BITS - 1)] == [True, False, False, True, True]


def test_set_clear_get() -> None:
    status_list = StatusList("suspension", MIN_BITS * 2)
    assert status_list.size == MIN_BITS * 2
    assert not status_list.get(200_000)
    status_list.set(200_000)
    assert status_list.get(200_000)
    assert not status_list.get(200_001)
    status_list.clear(200_000)
    assert not status_list.get(200_000)
    status_list.set(5, True)
    status_list.set(5, False)
    assert status_list.set_indices() == []


@pytest.mark.parametrize("index", [-1, MIN_BITS, MIN_BITS + 7, 2**40])
def test_index_out_of_range(index: int) -> None:
    with pytest.raises(StatusError) as caught:
        StatusList("revocation").get(index)
    assert caught.value.reason == "status_index_out_of_range"


@pytest.mark.parametrize(
    ("purpose", "size", "reason"),
    [
        ("revocation", MIN_BITS - 8, "status_list_too_small"),
        ("revocation", MIN_BITS + 1, "malformed_status_list"),
        ("refresh", MIN_BITS, "malformed_status_list"),
    ],
)
def test_bad_lists_cannot_be_made(purpose: Any, size: int, reason: str) -> None:
    with pytest.raises(StatusError) as caught:
        StatusList(purpose, size)
    assert caught.value.reason == reason


# -- encoding ----------------------------------------------------------------------------------


def test_encoding_is_multibase_gzip_and_deterministic() -> None:
    status_list = StatusList("revocation")
    status_list.set(94567)
    encoded = status_list.encode()
    assert encoded.startswith("uH4sI")  # "u" + base64url of the GZIP magic 1f 8b 08
    assert "=" not in encoded
    assert encoded == status_list.encode()
    assert gzip.decompress(from_b64url(encoded[1:])) == status_list.to_bytes()
    assert StatusList.decode(encoded, "revocation").set_indices() == [94567]
    assert StatusList.decode(_encode_bytes(status_list.to_bytes()), "revocation") == status_list


@settings(max_examples=40, deadline=None)
@given(
    indices=st.sets(st.integers(min_value=0, max_value=MIN_BITS * 2 - 1), max_size=300),
    purpose=st.sampled_from(["revocation", "suspension"]),
)
def test_round_trip_keeps_exactly_the_set_bits(indices: set[int], purpose: Any) -> None:
    status_list = StatusList(purpose, MIN_BITS * 2)
    for index in indices:
        status_list.set(index)
    decoded = StatusList.decode(status_list.encode(), purpose)
    assert decoded == status_list
    assert decoded.set_indices() == sorted(indices)
    assert all(decoded.get(i) for i in indices)


def test_decompression_bomb_is_refused_without_inflating_it() -> None:
    bomb = _encode_bytes(bytes(64 * 1024 * 1024))  # 64 MiB of zeros, ~90 KB on the wire
    assert len(bomb) < 200_000
    with pytest.raises(StatusError) as caught:
        StatusList.decode(bomb, "revocation")
    assert caught.value.reason == "status_list_too_large"
    # One byte over a tighter cap is already too much; exactly the cap is fine.
    exact = _encode_bytes(bytes(MIN_BITS // 8 * 2))
    assert StatusList.decode(exact, "revocation", max_bits=MIN_BITS * 2).size == MIN_BITS * 2
    with pytest.raises(StatusError) as caught:
        StatusList.decode(exact, "revocation", max_bits=MIN_BITS)
    assert caught.value.reason == "status_list_too_large"


def test_oversized_encoded_text_is_refused_before_decoding() -> None:
    with pytest.raises(StatusError) as caught:
        StatusList.decode("u" + "A" * 40_000, "revocation", max_bits=MIN_BITS)
    assert caught.value.reason == "status_list_too_large"


def _two_members() -> str:
    data = gzip.compress(bytes(MIN_BITS // 8), mtime=0)
    return "u" + b64url(data + data)


def _raw_deflate() -> str:
    return "u" + b64url(zlib.compress(bytes(MIN_BITS // 8)))


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        (SPEC_ENCODED_LIST[1:], "malformed_status_list"),  # no multibase prefix
        ("z" + SPEC_ENCODED_LIST[1:], "malformed_status_list"),  # base58btc prefix
        (SPEC_ENCODED_LIST + "=", "malformed_status_list"),  # padding
        (SPEC_ENCODED_LIST.replace("-", "+"), "malformed_status_list"),  # base64, not url
        (SPEC_ENCODED_LIST[:-6], "malformed_status_list"),  # truncated stream
        (_two_members(), "malformed_status_list"),  # trailing data
        (_raw_deflate(), "malformed_status_list"),  # zlib, not GZIP
        ("u", "malformed_status_list"),
        (_encode_bytes(bytes(MIN_BITS // 8 - 1)), "status_list_too_small"),
        (_encode_bytes(b""), "status_list_too_small"),
    ],
)
def test_bad_encoded_lists(encoded: str, reason: str) -> None:
    with pytest.raises(StatusError) as caught:
        StatusList.decode(encoded, "revocation")
    assert caught.value.reason == reason


# -- allocation --------------------------------------------------------------------------------


def test_allocation_is_random_without_reuse_and_reproducible_with_a_seed() -> None:
    first = IndexAllocator(MIN_BITS, rng=Random(7))
    picks = [first.allocate() for _ in range(1000)]
    assert len(set(picks)) == 1000
    assert all(0 <= i < MIN_BITS for i in picks)
    assert picks != sorted(picks)
    again = IndexAllocator(MIN_BITS, rng=Random(7))
    assert [again.allocate() for _ in range(1000)] == picks
    assert first.free == MIN_BITS - 1000
    assert IndexAllocator(MIN_BITS).allocate() in range(MIN_BITS)  # the CSPRNG default


def test_allocation_fills_a_list_exactly_then_refuses() -> None:
    taken = set(range(0, MIN_BITS, 2)) | {1, 3}
    allocator = IndexAllocator(MIN_BITS, used=taken, rng=Random(1))
    fresh = [allocator.allocate() for _ in range(MIN_BITS - len(taken))]
    assert sorted(fresh) == sorted(set(range(MIN_BITS)) - taken)
    assert allocator.free == 0
    with pytest.raises(StatusError) as caught:
        allocator.allocate()
    assert caught.value.reason == "status_list_full"


def test_reserving_twice_or_outside_is_refused() -> None:
    allocator = IndexAllocator(MIN_BITS, used=[5])
    with pytest.raises(StatusError) as caught:
        allocator.reserve(5)
    assert caught.value.reason == "status_index_in_use"
    with pytest.raises(StatusError) as caught:
        allocator.reserve(MIN_BITS)
    assert caught.value.reason == "status_index_out_of_range"
    assert allocator.used == frozenset({5})


# -- entries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"type": "StatusList2021Entry"},
        {"statusPurpose": "refresh"},
        {"statusListIndex": 94567},
        {"statusListIndex": "094567"},
        {"statusListIndex": "-1"},
        {"statusListIndex": "0x10"},
        {"statusListIndex": " 1"},
        {"statusListCredential": "not a url"},
        {"statusListCredential": None},
        {"statusSize": 2},
        {"id": 7},
    ],
)
def test_malformed_entries_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(StatusError) as caught:
        StatusEntry.from_json({**SPEC_ENTRY, **change})
    assert caught.value.reason == "malformed_status_entry"


def test_entry_for_index() -> None:
    entry = StatusEntry.for_index(LIST_URL, 42, "suspension")
    assert entry.to_json() == {
        "id": f"{LIST_URL}#42",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "suspension",
        "statusListIndex": "42",
        "statusListCredential": LIST_URL,
    }
    assert StatusEntry.from_json(entry.to_json()) == entry


# -- list credentials and check_status ---------------------------------------------------------


def test_list_credential_shape_signing_and_digest() -> None:
    status_list = StatusList("suspension")

    def sign(document: dict[str, Any]) -> dict[str, Any]:
        return {**document, "proof": {"type": "DataIntegrityProof", "proofValue": "zTest"}}

    unsigned = _credential(status_list, valid_from="2026-01-01T00:00:00Z")
    assert unsigned == {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": LIST_URL,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": ISSUER,
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {
            "id": f"{LIST_URL}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "suspension",
            "encodedList": status_list.encode(),
        },
    }
    signed = _credential(status_list, valid_from="2026-01-01T00:00:00Z", sign=sign)
    assert signed["proof"]["proofValue"] == "zTest"
    assert list_credential_digest(signed) == sha256(canonical_json(signed)).hex()
    assert list_credential_digest(signed) != list_credential_digest(unsigned)


def test_check_status_revoked_and_suspended() -> None:
    revocations = StatusList("revocation")
    suspensions = StatusList("suspension")
    revocations.set(10)
    suspensions.set(11)
    revoked_list = _credential(revocations)
    suspended_url = LIST_URL.replace("revocation", "suspension")
    suspended_list = _credential(suspensions, suspended_url)
    revoked_digest = list_credential_digest(revoked_list)
    suspended_digest = list_credential_digest(suspended_list)

    hit = check_status(StatusEntry(LIST_URL, 10, "revocation"), revoked_list, revoked_digest)
    assert (hit.revoked, hit.suspended, hit.list_digest) == (True, False, revoked_digest)
    miss = check_status(StatusEntry(LIST_URL, 11, "revocation"), revoked_list, revoked_digest)
    assert (miss.revoked, miss.suspended) == (False, False)
    held = check_status(
        StatusEntry(suspended_url, 11, "suspension"), suspended_list, suspended_digest
    )
    assert (held.revoked, held.suspended) == (False, True)


def test_check_status_detects_a_stale_list() -> None:
    status_list = StatusList("revocation")
    stale = _credential(status_list)
    status_list.set(77)
    current = _credential(status_list)
    anchored = list_credential_digest(current)
    entry = StatusEntry(LIST_URL, 77, "revocation")
    assert check_status(entry, current, anchored).revoked
    # A cache (or an attacker) serving the old list cannot hide the revocation.
    with pytest.raises(StatusError) as caught:
        check_status(entry, stale, anchored)
    assert caught.value.reason == "status_list_mismatch"


def _forge_bits(document: dict[str, Any]) -> dict[str, Any]:
    subject = {**document["credentialSubject"], "encodedList": SPEC_ENCODED_LIST}
    return {**document, "credentialSubject": subject}


def _forge_proof(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "proof": {"type": "DataIntegrityProof", "proofValue": "zForged"}}


@pytest.mark.parametrize("forge", [_forge_bits, _forge_proof])
def test_check_status_detects_a_forged_list(forge: Any) -> None:
    status_list = StatusList("revocation")
    status_list.set(77)
    genuine = _credential(status_list)
    anchored = list_credential_digest(genuine)
    with pytest.raises(StatusError) as caught:
        check_status(StatusEntry(LIST_URL, 77, "revocation"), forge(genuine), anchored)
    assert caught.value.reason == "status_list_mismatch"


def test_check_status_refuses_the_wrong_list_purpose_or_index() -> None:
    suspensions = _credential(StatusList("suspension"))
    digest = list_credential_digest(suspensions)
    cases = [
        (StatusEntry(LIST_URL + "-other", 1, "suspension"), "status_list_mismatch"),
        (StatusEntry(LIST_URL, 1, "revocation"), "status_purpose_mismatch"),
        (StatusEntry(LIST_URL, MIN_BITS, "suspension"), "status_index_out_of_range"),
    ]
    for entry, reason in cases:
        with pytest.raises(StatusError) as caught:
            check_status(entry, suspensions, digest)
        assert caught.value.reason == reason, entry


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"id": LIST_URL, "type": ["VerifiableCredential"], "credentialSubject": {}},
        {"id": LIST_URL, "type": ["BitstringStatusListCredential"], "credentialSubject": {}},
        {
            "id": LIST_URL,
            "type": ["BitstringStatusListCredential"],
            "credentialSubject": {"type": "BitstringStatusList", "statusPurpose": "revocation"},
        },
        {
            "id": LIST_URL,
            "type": ["BitstringStatusListCredential"],
            "credentialSubject": {
                "type": "BitstringStatusList",
                "statusPurpose": "revocation",
                "encodedList": "uAAAA",
            },
        },
    ],
)
def test_check_status_refuses_malformed_list_credentials(document: Any) -> None:
    # Anchored as is, so only the shape can be wrong.
    with pytest.raises(StatusError) as caught:
        check_status(
            StatusEntry(LIST_URL, 1, "revocation"), document, list_credential_digest(document)
        )
    assert caught.value.reason == "malformed_status_list"
