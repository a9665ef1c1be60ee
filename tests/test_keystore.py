"""The keystore: file modes, atomic creation, encryption at rest and its failure modes."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import base58
import pytest

from civicledger.crypto.keys import PrivateKey
from civicledger.errors import KeystoreError
from civicledger.keystore import Keystore

SEED = bytes(range(32))
OTHER_SEED = bytes(range(100, 132))
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Run with umask 0 so only the modes the keystore asks for protect the files."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _key_file(store: Keystore, name: str) -> Path:
    return store.path / f"{name}.key.json"


def _rewrite(store: Keystore, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = _key_file(store, name)
    document = json.loads(path.read_bytes())
    change(document)
    path.write_text(json.dumps(document))  # Keeps the existing 0600 mode.


def _seed_encodings(seed: bytes) -> list[bytes]:
    return [
        seed,
        seed.hex().encode(),
        seed.hex().upper().encode(),
        base64.b64encode(seed),
        base64.urlsafe_b64encode(seed).rstrip(b"="),
        base58.b58encode(seed),
    ]


def test_files_are_0600_and_directory_0700(store: Keystore, permissive_umask: None):
    store.create("plain", seed=SEED)
    store.create("locked", seed=OTHER_SEED, passphrase=PASSPHRASE)

    assert _mode(store.path) == 0o700
    assert sorted(os.listdir(store.path)) == ["locked.key.json", "plain.key.json"]
    for name in ("plain", "locked"):
        assert _mode(_key_file(store, name)) == 0o600


def test_round_trip_without_passphrase(store: Keystore):
    public = store.create("alice", seed=SEED)

    assert public == PrivateKey.from_seed(SEED).public
    assert store.names() == ["alice"]
    assert not store.is_encrypted("alice")
    assert store.public("alice") == public
    loaded = store.load("alice")
    assert loaded.seed == SEED
    assert loaded.public == public


def test_round_trip_with_passphrase(store: Keystore):
    public = store.create("alice", seed=SEED, passphrase=PASSPHRASE)

    assert store.is_encrypted("alice")
    assert store.public("alice") == public
    assert store.load("alice", passphrase=PASSPHRASE).seed == SEED


def test_generated_key_round_trips(store: Keystore):
    public = store.create("fresh")
    assert store.load("fresh").public == public


def test_passphrase_is_nfc_normalised(store: Keystore):
    composed = unicodedata.normalize("NFC", "시민 원장 비밀")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    store.create("hangul", seed=SEED, passphrase=composed)

    assert store.load("hangul", passphrase=decomposed).seed == SEED


def test_seed_is_not_in_the_encrypted_file(store: Keystore):
    store.create("locked", seed=SEED, passphrase=PASSPHRASE)
    content = _key_file(store, "locked").read_bytes()

    for encoding in _seed_encodings(SEED):
        assert encoding not in content
    assert PASSPHRASE.encode() not in content


def test_plain_file_holds_the_seed_in_base64url(store: Keystore):
    store.create("plain", seed=SEED)
    document = json.loads(_key_file(store, "plain").read_bytes())

    assert document == {
        "version": 1,
        "name": "plain",
        "did": PrivateKey.from_seed(SEED).public.did,
        "seed": base64.urlsafe_b64encode(SEED).rstrip(b"=").decode(),
    }


def test_repr_hides_the_seed(store: Keystore):
    store.create("alice", seed=SEED)
    key = store.load("alice")
    for text in (repr(key), str(key), repr(store)):
        for encoding in _seed_encodings(SEED):
            assert encoding.decode("latin-1") not in text


@pytest.mark.parametrize(
    ("passphrase", "reason"),
    [
        pytest.param("wrong horse battery staple", "wrong_passphrase", id="wrong"),
        pytest.param(PASSPHRASE + " ", "wrong_passphrase", id="trailing-space"),
        pytest.param(None, "passphrase_required", id="missing"),
        pytest.param("", "bad_passphrase", id="empty"),
    ],
)
def test_load_encrypted_rejects(store: Keystore, passphrase: str | None, reason: str):
    store.create("locked", seed=SEED, passphrase=PASSPHRASE)
    with pytest.raises(KeystoreError) as raised:
        store.load("locked", passphrase=passphrase)
    assert raised.value.reason == reason


def test_passphrase_for_a_plain_key_is_refused(store: Keystore):
    store.create("plain", seed=SEED)
    with pytest.raises(KeystoreError) as raised:
        store.load("plain", passphrase=PASSPHRASE)
    assert raised.value.reason == "key_not_encrypted"


def test_create_refuses_an_empty_passphrase_and_writes_nothing(store: Keystore):
    with pytest.raises(KeystoreError) as raised:
        store.create("alice", passphrase="")
    assert raised.value.reason == "bad_passphrase"
    assert not store.path.exists()


def test_create_never_overwrites(store: Keystore):
    store.create("alice", seed=SEED)
    before = _key_file(store, "alice").read_bytes()

    with pytest.raises(KeystoreError) as raised:
        store.create("alice", seed=OTHER_SEED)
    assert raised.value.reason == "key_exists"
    assert _key_file(store, "alice").read_bytes() == before


def test_concurrent_creates_of_one_name_leave_exactly_one_key(store: Keystore):
    seeds = [bytes([index]) * 32 for index in range(8)]
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(len(seeds))

    def attempt(index: int) -> None:
        barrier.wait()
        try:
            store.create("contested", seed=seeds[index])
        except KeystoreError as e:
            outcomes[index] = e.reason
        else:
            outcomes[index] = "created"

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(len(seeds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [index for index, outcome in outcomes.items() if outcome == "created"]
    assert len(winners) == 1
    assert sorted(set(outcomes.values())) == ["created", "key_exists"]
    assert store.load("contested").seed == seeds[winners[0]]
    assert os.listdir(store.path) == ["contested.key.json"]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Alice",
        "-alice",
        ".alice",
        "_alice",
        "a/b",
        "../escape",
        "a b",
        "alice\n",
        "ä",
        "a" * 65,
        None,
    ],
)
def test_bad_names_are_refused(store: Keystore, name: str):
    for call in (
        lambda: store.create(name, seed=SEED),
        lambda: store.load(name),
        lambda: store.public(name),
        lambda: store.is_encrypted(name),
    ):
        with pytest.raises(KeystoreError) as raised:
            call()
        assert raised.value.reason == "bad_key_name"
    assert not store.path.exists()


@pytest.mark.parametrize("name", ["a", "0", "a" * 64, "node-1.agency_seoul", "9.9"])
def test_good_names_are_accepted(store: Keystore, name: str):
    store.create(name, seed=SEED)
    assert store.names() == [name]


def test_names_are_sorted_and_ignore_other_files(store: Keystore):
    for name in ("zeta", "alpha", "mid.1"):
        store.create(name)
    (store.path / "notes.txt").write_text("x")
    (store.path / "Upper.key.json").write_text("{}")
    (store.path / ".alpha.key.json.0123.tmp").write_text("{}")

    assert store.names() == ["alpha", "mid.1", "zeta"]


def test_names_of_a_missing_directory_is_empty(store: Keystore):
    assert store.names() == []


def test_missing_key(store: Keystore):
    store.create("alice")
    for call in (lambda: store.load("bob"), lambda: store.public("bob")):
        with pytest.raises(KeystoreError) as raised:
            call()
        assert raised.value.reason == "key_not_found"


@pytest.mark.parametrize("seed", [bytes(31), bytes(33), b""])
def test_create_refuses_a_bad_seed(store: Keystore, seed: bytes):
    with pytest.raises(KeystoreError) as raised:
        store.create("alice", seed=seed)
    assert raised.value.reason == "bad_seed"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o601, 0o610])
def test_key_file_open_to_group_or_others_is_refused(store: Keystore, mode: int):
    store.create("alice", seed=SEED)
    os.chmod(_key_file(store, "alice"), mode)
    for call in (lambda: store.load("alice"), lambda: store.public("alice")):
        with pytest.raises(KeystoreError) as raised:
            call()
        assert raised.value.reason == "insecure_permissions"
        assert f"{mode:04o}" in raised.value.message


@pytest.mark.parametrize("mode", [0o777, 0o720, 0o702])
def test_directory_writable_by_others_is_refused(store: Keystore, mode: int):
    store.create("alice", seed=SEED)
    os.chmod(store.path, mode)
    try:
        with pytest.raises(KeystoreError) as raised:
            store.load("alice")
        assert raised.value.reason == "insecure_permissions"
        with pytest.raises(KeystoreError):
            store.create("bob")
    finally:
        os.chmod(store.path, 0o700)


def test_symlinked_key_file_is_refused(store: Keystore, tmp_path: Path):
    store.create("alice", seed=SEED)
    target = tmp_path / "elsewhere.key.json"
    os.rename(_key_file(store, "alice"), target)
    os.symlink(target, _key_file(store, "alice"))

    with pytest.raises(KeystoreError) as raised:
        store.load("alice")
    assert raised.value.reason == "insecure_permissions"


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document[field] = value

    return change


def _set_encrypted(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        document["encrypted_seed"][field] = value

    return change


def _flip_ciphertext(document: dict[str, Any]) -> None:
    params = document["encrypted_seed"]
    raw = bytearray(base64.urlsafe_b64decode(params["ciphertext"] + "=="))
    raw[0] ^= 1
    params["ciphertext"] = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def _delete(field: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        del document[field]

    return change


_OTHER_DID = PrivateKey.from_seed(OTHER_SEED).public.did
_X25519_DID = "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW"
_SHORT_SEED = base64.urlsafe_b64encode(bytes(31)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(_set("version", 2), "corrupt_key_file", id="version"),
        pytest.param(_delete("version"), "corrupt_key_file", id="no-version"),
        pytest.param(_set("name", "bob"), "corrupt_key_file", id="other-name"),
        pytest.param(_set("did", _OTHER_DID), "corrupt_key_file", id="did-of-other-key"),
        pytest.param(_set("did", _X25519_DID), "corrupt_key_file", id="did-not-ed25519"),
        pytest.param(_delete("did"), "corrupt_key_file", id="no-did"),
        pytest.param(_set("seed", _SHORT_SEED), "corrupt_key_file", id="short-seed"),
        pytest.param(_set("seed", "not base64!"), "corrupt_key_file", id="seed-not-b64"),
        pytest.param(_set("seed", 7), "corrupt_key_file", id="seed-not-string"),
        pytest.param(_delete("seed"), "corrupt_key_file", id="no-seed"),
        pytest.param(_set("encrypted_seed", {}), "corrupt_key_file", id="both-seeds"),
    ],
)
def test_corrupt_plain_file_is_refused(
    store: Keystore, change: Callable[[dict[str, Any]], None], reason: str
):
    store.create("alice", seed=SEED)
    _rewrite(store, "alice", change)
    with pytest.raises(KeystoreError) as raised:
        store.load("alice")
    assert raised.value.reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(_flip_ciphertext, "wrong_passphrase", id="tampered-ciphertext"),
        pytest.param(_set("did", _OTHER_DID), "corrupt_key_file", id="did-of-other-key"),
        pytest.param(_set("encrypted_seed", "x"), "corrupt_key_file", id="params-not-object"),
        pytest.param(_set_encrypted("kdf", "scrypt"), "corrupt_key_file", id="other-kdf"),
        pytest.param(_set_encrypted("cipher", "aes"), "corrupt_key_file", id="other-cipher"),
        pytest.param(_set_encrypted("memlimit", 2**40), "corrupt_key_file", id="huge-memlimit"),
        pytest.param(_set_encrypted("opslimit", 10**6), "corrupt_key_file", id="huge-opslimit"),
        pytest.param(_set_encrypted("opslimit", 0), "corrupt_key_file", id="zero-opslimit"),
        pytest.param(_set_encrypted("opslimit", True), "corrupt_key_file", id="bool-opslimit"),
        pytest.param(_set_encrypted("salt", "AAAA"), "corrupt_key_file", id="short-salt"),
        pytest.param(_set_encrypted("nonce", "AAAA"), "corrupt_key_file", id="short-nonce"),
        pytest.param(_set_encrypted("ciphertext", "AAAA"), "corrupt_key_file", id="short-box"),
        pytest.param(_set_encrypted("nonce", None), "corrupt_key_file", id="no-nonce"),
    ],
)
def test_corrupt_encrypted_file_is_refused(
    store: Keystore, change: Callable[[dict[str, Any]], None], reason: str
):
    store.create("alice", seed=SEED, passphrase=PASSPHRASE)
    _rewrite(store, "alice", change)
    with pytest.raises(KeystoreError) as raised:
        store.load("alice", passphrase=PASSPHRASE)
    assert raised.value.reason == reason


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'{"version": 1.0, "name": "alice"}', id="float"),
        pytest.param(b'{"version": 1, "version": 1, "name": "alice"}', id="duplicate-key"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b" " * (70 * 1024), id="too-large"),
    ],
)
def test_unparseable_file_is_refused(store: Keystore, content: bytes):
    store.create("alice", seed=SEED)
    _key_file(store, "alice").write_bytes(content)
    for call in (lambda: store.load("alice"), lambda: store.public("alice")):
        with pytest.raises(KeystoreError) as raised:
            call()
        assert raised.value.reason == "corrupt_key_file"


def test_no_temporary_files_are_left_behind(store: Keystore):
    store.create("alice", seed=SEED, passphrase=PASSPHRASE)
    store.create("bob")
    with pytest.raises(KeystoreError):
        store.create("bob")
    assert sorted(os.listdir(store.path)) == ["alice.key.json", "bob.key.json"]
