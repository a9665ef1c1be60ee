"""Ed25519 keys, did:key and domain-separated signing messages."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import base58
import pytest
from hypothesis import given
from hypothesis import strategies as st

from civicledger.crypto.keys import PrivateKey, PublicKey, signing_message, verify_batch
from civicledger.errors import EncodingError, SignatureError

# RFC 8032 §7.1, TEST 1-3 (https://www.rfc-editor.org/rfc/rfc8032#section-7.1):
# (SECRET KEY = seed, PUBLIC KEY, MESSAGE, SIGNATURE), all hex, copied from the RFC.
RFC8032_VECTORS = [
    pytest.param(
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        id="TEST 1",
    ),
    pytest.param(
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        id="TEST 2",
    ),
    pytest.param(
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        id="TEST 3",
    ),
]

# W3C CCG did:key test vectors, test-vectors/ed25519-x25519.json in
# https://github.com/w3c-ccg/did-method-key: (seed hex, did, verificationKeyPair.publicKeyBase58).
DID_KEY_VECTORS = [
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
        "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000001",
        "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
        "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000002",
        "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
        "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000003",
        "did:key:z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
        "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000004",
        "did:key:z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
        "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
    ),
]

# The X25519 key-agreement did:key from the same W3C CCG vector file (multicodec 0xec).
X25519_DID = "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW"

# Order of the Ed25519 base point (RFC 8032 §5.1), to build a malleated signature.
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493

SEED = bytes(range(32))
KEY = PrivateKey.from_seed(SEED)
OTHER_KEY = PrivateKey.from_seed(bytes(range(1, 33)))
CHAIN = "seoul-civic-1"


def _did_for(multicodec_and_key: bytes) -> str:
    return "did:key:z" + base58.b58encode(multicodec_and_key).decode("ascii")


@pytest.mark.parametrize(
    ("seed_hex", "public_hex", "message_hex", "signature_hex"), RFC8032_VECTORS
)
def test_rfc8032_vectors(seed_hex: str, public_hex: str, message_hex: str, signature_hex: str):
    key = PrivateKey.from_seed(bytes.fromhex(seed_hex))
    message = bytes.fromhex(message_hex)
    signature = bytes.fromhex(signature_hex)

    assert key.public.raw.hex() == public_hex
    assert key.sign(message) == signature
    PublicKey(bytes.fromhex(public_hex)).verify(message, signature)


@pytest.mark.parametrize(("seed_hex", "did", "public_base58"), DID_KEY_VECTORS)
def test_did_key_vectors(seed_hex: str, did: str, public_base58: str):
    key = PrivateKey.from_seed(bytes.fromhex(seed_hex))

    assert key.public.raw == base58.b58decode(public_base58)
    assert key.public.did == did
    assert PublicKey.from_did(did) == key.public


@given(st.binary(min_size=32, max_size=32))
def test_did_round_trips_for_every_key(raw: bytes):
    did = PublicKey(raw).did
    assert did.startswith("did:key:z6Mk")
    assert PublicKey.from_did(did) == PublicKey(raw)


@given(st.binary(max_size=512))
def test_sign_verify_round_trip(message: bytes):
    signature = KEY.sign(message)
    assert len(signature) == 64
    KEY.public.verify(message, signature)


def _malleated(signature: bytes) -> bytes:
    """The same signature with S replaced by S + L: valid maths, non-canonical encoding."""
    s = int.from_bytes(signature[32:], "little") + GROUP_ORDER
    assert s < 2**256
    return signature[:32] + s.to_bytes(32, "little")


_MESSAGE = signing_message(CHAIN, "tx", b'{"nonce":1}')
_SIGNATURE = KEY.sign(_MESSAGE)


@pytest.mark.parametrize(
    ("public", "message", "signature"),
    [
        pytest.param(KEY.public, _MESSAGE, bytes([_SIGNATURE[0] ^ 1]) + _SIGNATURE[1:], id="R-bit"),
        pytest.param(
            KEY.public, _MESSAGE, _SIGNATURE[:63] + bytes([_SIGNATURE[63] ^ 1]), id="S-bit"
        ),
        pytest.param(KEY.public, _MESSAGE, _SIGNATURE[:63], id="truncated"),
        pytest.param(KEY.public, _MESSAGE, _SIGNATURE + b"\x00", id="extended"),
        pytest.param(KEY.public, _MESSAGE, b"", id="empty"),
        pytest.param(KEY.public, _MESSAGE, bytes(64), id="zeros"),
        pytest.param(KEY.public, _MESSAGE, _malleated(_SIGNATURE), id="S-plus-L"),
        pytest.param(OTHER_KEY.public, _MESSAGE, _SIGNATURE, id="other-key"),
        pytest.param(PublicKey(bytes(32)), _MESSAGE, _SIGNATURE, id="small-order-key"),
        pytest.param(KEY.public, _MESSAGE + b" ", _SIGNATURE, id="message-extended"),
        pytest.param(
            KEY.public,
            signing_message("busan-civic-1", "tx", b'{"nonce":1}'),
            _SIGNATURE,
            id="wrong-chain-id",
        ),
        pytest.param(
            KEY.public,
            signing_message(CHAIN, "block", b'{"nonce":1}'),
            _SIGNATURE,
            id="wrong-purpose",
        ),
        pytest.param(KEY.public, b'{"nonce":1}', _SIGNATURE, id="no-domain-separation"),
    ],
)
def test_verify_rejects(public: PublicKey, message: bytes, signature: bytes):
    with pytest.raises(SignatureError) as raised:
        public.verify(message, signature)
    assert raised.value.reason == "bad_signature"


def test_verify_accepts_the_untampered_signature():
    assert KEY.public.verify(_MESSAGE, _SIGNATURE) is None


@pytest.mark.parametrize(
    "did",
    [
        pytest.param(X25519_DID, id="x25519-multicodec"),
        pytest.param(_did_for(b"\xe7\x01" + b"\x02" + bytes(32)), id="secp256k1-multicodec"),
        pytest.param(_did_for(b"\x80\x24" + b"\x02" + bytes(32)), id="p256-multicodec"),
        pytest.param(_did_for(b"\xed" + bytes(32)), id="multicodec-not-varint"),
        pytest.param(_did_for(b"\xed\x01" + bytes(31)), id="key-too-short"),
        pytest.param(_did_for(b"\xed\x01" + bytes(33)), id="key-too-long"),
        pytest.param(_did_for(b"\x00\xed\x01" + bytes(32)), id="leading-zero-byte"),
        pytest.param(DID_KEY_VECTORS[0][1][:-1], id="truncated"),
        pytest.param(DID_KEY_VECTORS[0][1][:-1] + "0", id="bad-base58-zero"),
        pytest.param(DID_KEY_VECTORS[0][1][:-1] + "O", id="bad-base58-O"),
        pytest.param(DID_KEY_VECTORS[0][1][:-1] + "l", id="bad-base58-l"),
        pytest.param(DID_KEY_VECTORS[0][1] + "\n", id="trailing-newline"),
        pytest.param(DID_KEY_VECTORS[0][1] + " ", id="trailing-space"),
        pytest.param(" " + DID_KEY_VECTORS[0][1], id="leading-space"),
        pytest.param(DID_KEY_VECTORS[0][1] + "#" + DID_KEY_VECTORS[0][1][8:], id="did-url"),
        pytest.param(DID_KEY_VECTORS[0][1].replace("did:key:", "did:web:"), id="did-web"),
        pytest.param(DID_KEY_VECTORS[0][1].replace("did:key:", "DID:KEY:"), id="upper-case"),
        pytest.param(DID_KEY_VECTORS[0][1].replace("did:key:", "did:key:1.0:"), id="versioned"),
        pytest.param(DID_KEY_VECTORS[0][1].replace("did:key:", ""), id="no-prefix"),
        pytest.param(
            "did:key:m" + base64.b64encode(b"\xed\x01" + bytes(32)).decode().rstrip("="),
            id="multibase-base64",
        ),
        pytest.param("did:key:z", id="empty-key"),
        pytest.param("did:key:z" + "2" * 5000, id="huge"),
        pytest.param("", id="empty"),
        pytest.param(b"did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp", id="bytes"),
        pytest.param(None, id="none"),
    ],
)
def test_from_did_rejects(did: str):
    with pytest.raises(EncodingError) as raised:
        PublicKey.from_did(did)
    assert raised.value.reason == "bad_encoding"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(bytes(31), id="31-bytes"),
        pytest.param(bytes(33), id="33-bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(bytearray(32), id="bytearray"),
        pytest.param("a" * 32, id="str"),
    ],
)
def test_public_key_rejects_bad_raw(raw: bytes):
    with pytest.raises(EncodingError):
        PublicKey(raw)


def test_public_key_is_frozen_and_hashable():
    same = PublicKey(KEY.public.raw)
    assert same == KEY.public
    assert hash(same) == hash(KEY.public)
    assert same != OTHER_KEY.public
    assert repr(same) == f"PublicKey({KEY.public.did!r})"
    with pytest.raises(AttributeError):
        same.raw = bytes(32)  # type: ignore[misc]


@pytest.mark.parametrize(
    "seed",
    [
        pytest.param(bytes(31), id="31-bytes"),
        pytest.param(bytes(33), id="33-bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(bytes(64), id="64-byte-secret-key"),
        pytest.param("0" * 32, id="str"),
    ],
)
def test_from_seed_rejects_bad_seed(seed: bytes):
    with pytest.raises(EncodingError):
        PrivateKey.from_seed(seed)


def test_private_key_keeps_its_seed():
    assert KEY.seed == SEED
    assert PrivateKey.from_seed(KEY.seed).public == KEY.public


def test_generate_gives_distinct_working_keys():
    first, second = PrivateKey.generate(), PrivateKey.generate()
    assert first.seed != second.seed
    assert len(first.seed) == 32
    first.public.verify(b"m", first.sign(b"m"))


def test_private_key_repr_hides_the_seed():
    shown = [repr(KEY), str(KEY), f"{KEY}", repr([KEY])]
    encodings = [
        SEED.hex(),
        SEED.hex().upper(),
        repr(SEED),
        base64.b64encode(SEED).decode(),
        base64.urlsafe_b64encode(SEED).decode().rstrip("="),
        base58.b58encode(SEED).decode(),
    ]
    for text in shown:
        assert KEY.public.did in text
        for encoding in encodings:
            assert encoding not in text


def test_signing_message_layout():
    assert signing_message("chain-1", "tx", b"\x00payload") == (
        b"CivicLedger/v1\x00tx\x00chain-1\x00\x00payload"
    )


@pytest.mark.parametrize(
    ("chain_id", "purpose"),
    [
        pytest.param("", "tx", id="empty-chain"),
        pytest.param("chain", "", id="empty-purpose"),
        pytest.param("chain\x00tx", "tx", id="nul-in-chain"),
        pytest.param("chain", "tx\x00", id="nul-in-purpose"),
        pytest.param("서울", "tx", id="non-ascii-chain"),
        pytest.param("chain", "tx\u00e9", id="non-ascii-purpose"),
        pytest.param(b"chain", "tx", id="bytes-chain"),
        pytest.param("chain", None, id="none-purpose"),
    ],
)
def test_signing_message_rejects_bad_labels(chain_id: str, purpose: str):
    with pytest.raises(EncodingError):
        signing_message(chain_id, purpose, b"payload")


_LABELS = st.text(
    alphabet=st.characters(min_codepoint=1, max_codepoint=127), min_size=1, max_size=12
)


@given(_LABELS, _LABELS, st.binary(max_size=16), _LABELS, _LABELS, st.binary(max_size=16))
def test_signing_message_is_injective(
    chain_a: str, purpose_a: str, payload_a: bytes, chain_b: str, purpose_b: str, payload_b: bytes
):
    same_input = (chain_a, purpose_a, payload_a) == (chain_b, purpose_b, payload_b)
    same_output = signing_message(chain_a, purpose_a, payload_a) == signing_message(
        chain_b, purpose_b, payload_b
    )
    assert same_input == same_output


def _batch(count: int) -> list[tuple[bytes, bytes, bytes]]:
    items = []
    for index in range(count):
        message = signing_message(CHAIN, "tx", index.to_bytes(4, "big"))
        items.append((KEY.public.raw, message, KEY.sign(message)))
    return items


def test_verify_batch_reports_exactly_the_failures():
    items = _batch(8)
    public, message, signature = items[1]
    items[1] = (public, message, signature[:63] + bytes([signature[63] ^ 0x80]))
    items[3] = (OTHER_KEY.public.raw, items[3][1], items[3][2])
    items[4] = (items[4][0], items[4][1], items[4][2][:40])
    items[5] = (bytes(31), items[5][1], items[5][2])
    items[6] = (items[6][0], items[6][1] + b"!", items[6][2])

    assert verify_batch(items) == [1, 3, 4, 5, 6]


def test_verify_batch_of_valid_items_and_of_nothing():
    assert verify_batch(_batch(5)) == []
    assert verify_batch([]) == []


def test_verify_batch_in_threads_matches_serial():
    items = _batch(40)
    items[17] = (items[17][0], items[17][1], bytes(64))
    chunks = [items[start : start + 10] for start in range(0, 40, 10)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(verify_batch, chunks))
    assert results == [[], [7], [], []]
    assert verify_batch(items) == [17]
