"""DID resolution off the ledger: did:key locally, did:civic through contract queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from civicledger.client import UnprovenResult
from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, RejectReason, SignatureError, TxRejected
from civicledger.node.chain import Chain
from civicledger.services.identity.did_registry import DidRegistry
from civicledger.services.identity.resolver import DidResolutionError, Resolver
from conftest import City, Ledger, city_key, make_city

HALL = "did:civic:city-hall"


@pytest.fixture
def city(tmp_path: Path) -> City:
    registry = ContractRegistry([Governance(), Notary(), DidRegistry()])
    return make_city(tmp_path / "city", registry)


@pytest.fixture
def resolver(chain: Chain) -> Resolver:
    return Resolver(chain.query)


def _k(label: str) -> PrivateKey:
    return city_key("did/" + label)


def _code(resolver: Resolver, method_id: str, at: int | None = None, **kw: Any) -> str:
    with pytest.raises(DidResolutionError) as caught:
        resolver.verification_key(method_id, at, **kw)
    assert caught.value.reason == "did_resolution"
    return caught.value.code


def _create_hall(ledger: Ledger, city: City) -> int:
    args = {"agency": "city-hall", "keys": [_k("a").public.did, _k("b").public.did]}
    assert ledger.send(city.clerk, "did_registry", "create", args).ok
    return ledger.chain.head.header.time_ms


def _send(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> int:
    receipt = ledger.send(key, "did_registry", method, args)
    assert receipt.ok, receipt.message
    return ledger.chain.head.header.time_ms


def test_did_key_resolves_locally_without_a_ledger() -> None:
    def no_ledger(contract: str, method: str, args: dict[str, Any]) -> Any:
        raise AssertionError("did:key must not touch the ledger")

    citizen = _k("citizen")
    did = citizen.public.did
    multibase = did[len("did:key:") :]
    resolver = Resolver(no_ledger)
    doc = resolver.resolve(did)["didDocument"]
    assert doc["id"] == did
    assert doc["verificationMethod"] == [
        {
            "id": f"{did}#{multibase}",
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": multibase,
        }
    ]
    assert doc["assertionMethod"] == doc["authentication"] == [f"{did}#{multibase}"]
    key = resolver.verification_key(f"{did}#{multibase}", 123)
    assert key == citizen.public
    key.verify(b"hello", citizen.sign(b"hello"))
    with pytest.raises(SignatureError):
        key.verify(b"hello", _k("other").sign(b"hello"))
    assert _code(resolver, f"{did}#key-1") == "unknown_method"
    other = _k("other").public.did[len("did:key:") :]
    assert _code(resolver, f"{did}#{other}") == "unknown_method"


@pytest.mark.parametrize(
    ("method_id", "code"),
    [
        ("did:key:z6MkNotAKey#z6MkNotAKey", "malformed"),
        ("did:key:" + "1" * 50 + "#x", "malformed"),
        ("did:web:example.org#key-1", "unsupported_method"),
        ("did:civic:City-Hall#key-1", "malformed"),
        ("did:civic:#key-1", "malformed"),
        ("did:civic:city-hall", "malformed"),
        ("did:civic:city-hall#", "malformed"),
        ("did:civic:city-hall#key-1#key-2", "malformed"),
        ("did:civic:city-hall#key 1", "malformed"),
        ("https://city-hall#key-1", "unsupported_method"),
    ],
)
def test_malformed_ids(resolver: Resolver, method_id: str, code: str) -> None:
    assert _code(resolver, method_id) == code


def test_bad_times_refused(resolver: Resolver) -> None:
    for bad in (-1, 2**53):
        with pytest.raises(DidResolutionError, match="out of range"):
            resolver.resolve(HALL, bad)


def test_did_civic_rotation_by_time(city: City, ledger: Ledger, resolver: Resolver) -> None:
    assert _code(resolver, f"{HALL}#key-1") == "not_found"
    t1 = _create_hall(ledger, city)
    assert _code(resolver, f"{HALL}#key-1", t1 - 1) == "not_found"
    assert resolver.verification_key(f"{HALL}#key-1") == _k("a").public
    t2 = _send(
        ledger,
        city.clerk,
        "rotate_key",
        {"agency": "city-hall", "method": "#key-1", "key": _k("c").public.did},
    )
    # A credential signed before the rotation still verifies with the key valid then.
    assert resolver.verification_key(f"{HALL}#key-1", t1) == _k("a").public
    assert resolver.verification_key(f"{HALL}#key-1", t2 - 1) == _k("a").public
    assert _code(resolver, f"{HALL}#key-1", t2) == "not_valid_at_time"
    assert _code(resolver, f"{HALL}#key-1") == "not_valid_at_time"
    assert _code(resolver, f"{HALL}#key-3", t1) == "not_valid_at_time"
    assert resolver.verification_key(f"{HALL}#key-3", t2) == _k("c").public
    assert resolver.verification_key(f"{HALL}#key-3") == _k("c").public
    assert _code(resolver, f"{HALL}#key-7") == "unknown_method"
    assert _code(resolver, f"{HALL}#z6Mkabc") == "unknown_method"
    assert _code(resolver, "did:civic:nowhere#key-1") == "not_found"


def test_revoked_key_refused_at_every_time(city: City, ledger: Ledger, resolver: Resolver) -> None:
    t1 = _create_hall(ledger, city)
    args = {"agency": "city-hall", "method": "#key-1", "revoked": True}
    _send(ledger, city.clerk, "remove_key", args)
    assert _code(resolver, f"{HALL}#key-1", t1) == "revoked"
    assert _code(resolver, f"{HALL}#key-1") == "revoked"
    assert resolver.verification_key(f"{HALL}#key-2", t1) == _k("b").public


def test_deactivated_did(city: City, ledger: Ledger, resolver: Resolver) -> None:
    t1 = _create_hall(ledger, city)
    t2 = _send(ledger, city.clerk, "deactivate", {"agency": "city-hall"})
    assert _code(resolver, f"{HALL}#key-1") == "deactivated"
    assert _code(resolver, f"{HALL}#key-2", t2) == "deactivated"
    assert _code(resolver, f"{HALL}#key-2", t2 + 10_000) == "deactivated"
    assert resolver.verification_key(f"{HALL}#key-2", t1) == _k("b").public
    assert resolver.resolve(HALL)["didDocumentMetadata"]["deactivated"] is True


def test_purpose(city: City, ledger: Ledger, resolver: Resolver) -> None:
    _create_hall(ledger, city)
    args = {"agency": "city-hall", "key": _k("c").public.did, "purposes": ["authentication"]}
    _send(ledger, city.clerk, "add_key", args)
    assert _code(resolver, f"{HALL}#key-3") == "wrong_purpose"
    key = resolver.verification_key(f"{HALL}#key-3", purpose="authentication")
    assert key == _k("c").public


def test_client_style_answers_are_unwrapped(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)

    def over_http(contract: str, method: str, args: dict[str, Any]) -> UnprovenResult:
        height, result = chain.query_at_head(contract, method, args)
        return UnprovenResult(height, result)

    assert Resolver(over_http).verification_key(f"{HALL}#key-2") == _k("b").public


def _fixed(answer: Any) -> Resolver:
    def query(contract: str, method: str, args: dict[str, Any]) -> Any:
        return answer

    return Resolver(query)


def test_answers_that_are_not_documents_are_refused(chain: Chain) -> None:
    good_doc: dict[str, Any] = {"id": HALL, "verificationMethod": []}
    answers: list[Any] = [
        [],
        "document",
        {"didDocument": good_doc},
        {"didDocument": {**good_doc, "id": "did:civic:archive"}, "didDocumentMetadata": {}},
        {"didDocument": {"id": HALL}, "didDocumentMetadata": {}},
        {"didDocument": good_doc, "didDocumentMetadata": {"revokedMethods": f"{HALL}#key-10"}},
        {"didDocument": good_doc, "didDocumentMetadata": {"deactivated": "no"}},
    ]
    for answer in answers:
        with pytest.raises(DidResolutionError) as caught:
            _fixed(answer).resolve(HALL)
        assert caught.value.code == "bad_answer"
    bad_key = {
        "didDocument": {
            **good_doc,
            "verificationMethod": [{"id": f"{HALL}#key-1", "publicKeyMultibase": "zzz"}],
            "assertionMethod": [f"{HALL}#key-1"],
        },
        "didDocumentMetadata": {},
    }
    assert _code(_fixed(bad_key), f"{HALL}#key-1") == "bad_answer"


def test_query_failures_are_wrapped() -> None:
    def broken(contract: str, method: str, args: dict[str, Any]) -> Any:
        raise TxRejected(RejectReason.UNKNOWN_CONTRACT, "no contract named 'did_registry'")

    with pytest.raises(DidResolutionError, match="unknown_contract") as caught:
        Resolver(broken).resolve(HALL)
    assert caught.value.code == "query_failed"
    assert isinstance(caught.value.__cause__, CivicError)
