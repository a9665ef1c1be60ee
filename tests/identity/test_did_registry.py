"""The DID registry contract: did:civic documents, rotation, history, controllers, deactivation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import RejectReason, TxRejected
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import Chain
from civicledger.services.identity.did_registry import DidRegistry, multibase_key
from conftest import City, Ledger, city_key, make_city

HALL = "did:civic:city-hall"
ARCHIVE = "did:civic:archive"


@pytest.fixture
def city(tmp_path: Path) -> City:
    registry = ContractRegistry([Governance(), Notary(), DidRegistry()])
    return make_city(tmp_path / "city", registry)


def _k(label: str) -> PrivateKey:
    return city_key("did/" + label)


def _mb(label: str) -> str:
    return _k(label).public.did[len("did:key:") :]


def _send(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> Receipt:
    return ledger.send(key, "did_registry", method, args)


def _refused(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> RejectReason:
    with pytest.raises(TxRejected) as caught:
        _send(ledger, key, method, args)
    return caught.value.reject_reason


def _failed(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> str | None:
    receipt = _send(ledger, key, method, args)
    assert not receipt.ok
    return receipt.reason


def _create_hall(ledger: Ledger, city: City, *labels: str) -> Receipt:
    keys = [_k(label).public.did for label in labels or ("a", "b")]
    receipt = _send(ledger, city.clerk, "create", {"agency": "city-hall", "keys": keys})
    assert receipt.ok, receipt.message
    return receipt


def _methods(resolution: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (m["id"], m["publicKeyMultibase"]) for m in resolution["didDocument"]["verificationMethod"]
    ]


def test_agency_creates_its_own_document(city: City, ledger: Ledger, chain: Chain) -> None:
    receipt = _create_hall(ledger, city)
    assert receipt.result == {"did": HALL, "version": 1}
    assert [(e.name, e.data) for e in receipt.events] == [
        ("did_created", {"did": HALL, "version": 1})
    ]
    time_ms = chain.head.header.time_ms
    resolution = chain.query("did_registry", "resolve", {"did": HALL})
    assert resolution["didDocument"] == {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": HALL,
        "controller": [HALL],
        "verificationMethod": [
            {
                "id": f"{HALL}#key-1",
                "type": "Multikey",
                "controller": HALL,
                "publicKeyMultibase": _mb("a"),
            },
            {
                "id": f"{HALL}#key-2",
                "type": "Multikey",
                "controller": HALL,
                "publicKeyMultibase": _mb("b"),
            },
        ],
        "assertionMethod": [f"{HALL}#key-1", f"{HALL}#key-2"],
        "authentication": [f"{HALL}#key-1", f"{HALL}#key-2"],
    }
    meta = resolution["didDocumentMetadata"]
    assert meta["versionId"] == "1"
    assert meta["deactivated"] is False
    assert meta["revokedMethods"] == []
    assert meta["createdMs"] == meta["updatedMs"] == time_ms
    assert meta["created"] == "2023-11-14T22:13:21Z"  # genesis time + 1 s, from block time
    assert chain.query("did_registry", "dids", {}) == [
        {"id": HALL, "version": 1, "deactivated": False}
    ]


def test_who_may_create(city: City, ledger: Ledger, chain: Chain) -> None:
    args = {"agency": "city-hall", "keys": [_k("a").public.did]}
    assert _refused(ledger, city.archivist, "create", args) == RejectReason.UNAUTHORIZED
    assert _refused(ledger, city.outsider, "create", args) == RejectReason.UNAUTHORIZED
    assert _refused(ledger, city.rogue, "create", args) == RejectReason.UNAUTHORIZED
    assert chain.query("did_registry", "resolve", {"did": HALL}) is None
    # Root may create any agency's document, also in multibase form.
    archive = {"agency": "archive", "keys": [_mb("c")]}
    assert _send(ledger, city.root, "create", archive).ok
    assert _failed(ledger, city.archivist, "create", archive) == "did_exists"
    ghost = {"agency": "ghost-agency", "keys": [_mb("d")]}
    assert _failed(ledger, city.root, "create", ghost) == "unknown_agency"
    assert chain.query("did_registry", "resolve", {"did": "did:civic:ghost-agency"}) is None


def test_document_of_a_deactivated_agency_cannot_be_created(city: City, ledger: Ledger) -> None:
    assert ledger.send(city.root, "governance", "deactivate_agency", {"agency": "archive"}).ok
    args = {"agency": "archive", "keys": [_mb("c")]}
    assert _failed(ledger, city.root, "create", args) == "agency_inactive"


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ({"agency": "city-hall", "keys": []}, "keys"),
        ({"agency": "city-hall", "keys": ["did:key:zNotAKey"]}, "keys"),
        ({"agency": "city-hall", "keys": ["z6Mk"]}, "keys"),
        ({"agency": "city-hall", "keys": ["did:web:example.org"]}, "keys"),
        ({"agency": "City-Hall", "keys": ["KEY_A"]}, "agency"),
        ({"agency": "city-hall", "keys": ["KEY_A", "KEY_A_MB"]}, "keys"),
        ({"agency": "city-hall", "keys": ["KEY_A"], "controllers": ["did:key:x"]}, "controllers"),
        ({"agency": "city-hall", "keys": ["KEY_A"], "controllers": []}, "controllers"),
        ({"agency": "city-hall", "keys": ["KEY_A"], "extra": 1}, "extra"),
    ],
)
def test_malformed_create_is_rejected(
    city: City, ledger: Ledger, args: dict[str, Any], where: str
) -> None:
    subst = {"KEY_A": _k("a").public.did, "KEY_A_MB": _mb("a")}
    args = {**args, "keys": [subst.get(k, k) for k in args["keys"]]}
    with pytest.raises(TxRejected, match=f"args.{where}") as caught:
        _send(ledger, city.clerk, "create", args)
    assert caught.value.reject_reason == RejectReason.INVALID_ARGS


@pytest.mark.parametrize(
    "did",
    [
        "did:civic:",
        "did:civic:City-Hall",
        "did:key:z6Mk",
        "city-hall",
        "did:civic:a",
        "DID:civic:x1",
    ],
)
def test_malformed_did_in_a_query(chain: Chain, did: str) -> None:
    with pytest.raises(TxRejected) as caught:
        chain.query("did_registry", "resolve", {"did": did})
    assert caught.value.reject_reason == RejectReason.INVALID_ARGS


def test_rotation_keeps_history(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)
    t1 = chain.head.header.time_ms
    block = ledger.block(
        ledger.tx(
            city.clerk2,
            "did_registry",
            "rotate_key",
            {"agency": "city-hall", "method": "#key-1", "key": _k("c").public.did},
        ),
        time_ms=t1 + 60_000,
    )
    (included,) = block.included
    assert included.receipt.ok
    assert included.receipt.result == {"did": HALL, "version": 2, "method": "#key-3"}
    t2 = t1 + 60_000

    now = chain.query("did_registry", "resolve", {"did": HALL})
    assert _methods(now) == [(f"{HALL}#key-2", _mb("b")), (f"{HALL}#key-3", _mb("c"))]
    assert now["didDocumentMetadata"]["versionId"] == "2"
    assert now["didDocumentMetadata"]["updatedMs"] == t2

    def at(time_ms: int) -> Any:
        return chain.query("did_registry", "resolve_at", {"did": HALL, "time_ms": time_ms})

    assert at(t1 - 1) is None
    assert _methods(at(t1)) == [(f"{HALL}#key-1", _mb("a")), (f"{HALL}#key-2", _mb("b"))]
    assert at(t2 - 1)["didDocumentMetadata"]["versionId"] == "1"
    assert at(t2) == now
    assert at(t2 + 10**9) == now
    assert chain.query(
        "did_registry", "verification_method", {"did": HALL, "method": "#key-1"}
    ) == {
        "id": f"{HALL}#key-1",
        "type": "Multikey",
        "controller": HALL,
        "publicKeyMultibase": _mb("a"),
        "purposes": ["assertionMethod", "authentication"],
        "validFromMs": t1,
        "validUntilMs": t2,
        "revoked": False,
    }


def test_many_versions_resolve_at_each_time(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city, "k0")
    times = [chain.head.header.time_ms]
    for n in range(1, 9):
        key = _k(f"k{n}").public.did
        args = {"agency": "city-hall", "method": f"#key-{n}", "key": key}
        assert _send(ledger, city.clerk, "rotate_key", args).ok
        times.append(chain.head.header.time_ms)
    for n, time_ms in enumerate(times):
        for probe in (time_ms, time_ms + 999):
            doc = chain.query("did_registry", "resolve_at", {"did": HALL, "time_ms": probe})
            assert _methods(doc) == [(f"{HALL}#key-{n + 1}", _mb(f"k{n}"))]
            assert doc["didDocumentMetadata"]["versionId"] == str(n + 1)


def test_revoked_key_is_gone_from_the_past_too(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)
    t1 = chain.head.header.time_ms
    receipt = _send(
        ledger,
        city.clerk,
        "remove_key",
        {"agency": "city-hall", "method": "#key-1", "revoked": True},
    )
    assert receipt.ok
    assert receipt.events[0].data == {
        "did": HALL,
        "version": 2,
        "method": "#key-1",
        "revoked": True,
    }
    past = chain.query("did_registry", "resolve_at", {"did": HALL, "time_ms": t1})
    assert _methods(past) == [(f"{HALL}#key-2", _mb("b"))]
    assert past["didDocument"]["assertionMethod"] == [f"{HALL}#key-2"]
    assert past["didDocumentMetadata"]["revokedMethods"] == [f"{HALL}#key-1"]


def test_key_updates_refused_with_reasons(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)
    hall = {"agency": "city-hall"}
    assert _failed(ledger, city.clerk, "remove_key", {**hall, "method": "#key-9"}) == (
        "unknown_method"
    )
    assert _send(ledger, city.clerk, "remove_key", {**hall, "method": "#key-1"}).ok
    assert _failed(ledger, city.clerk, "remove_key", {**hall, "method": "#key-1"}) == (
        "key_not_active"
    )
    assert _failed(ledger, city.clerk, "remove_key", {**hall, "method": "#key-2"}) == "last_key"
    # A key once in the document never comes back, so a fragment names one key for good.
    assert _failed(ledger, city.clerk, "add_key", {**hall, "key": _mb("a")}) == "key_reused"
    assert _failed(ledger, city.clerk, "add_key", {**hall, "key": _mb("b")}) == "key_reused"
    added = _send(ledger, city.clerk, "add_key", {**hall, "key": _mb("c")})
    assert added.result == {"did": HALL, "version": 3, "method": "#key-3"}
    doc = chain.query("did_registry", "resolve", {"did": HALL})
    assert doc["didDocumentMetadata"]["versionId"] == "3"
    with pytest.raises(TxRejected, match=r"args\.method"):
        _send(ledger, city.clerk, "remove_key", {**hall, "method": "key-2"})


def test_purposes_are_respected(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)
    args = {"agency": "city-hall", "key": _mb("c"), "purposes": ["authentication"]}
    assert _send(ledger, city.clerk, "add_key", args).ok
    doc = chain.query("did_registry", "resolve", {"did": HALL})["didDocument"]
    assert f"{HALL}#key-3" in doc["authentication"]
    assert f"{HALL}#key-3" not in doc["assertionMethod"]


def test_only_controllers_update(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)
    add = {"agency": "city-hall", "key": _mb("c")}
    assert _failed(ledger, city.archivist, "add_key", add) == "not_controller"
    assert _failed(ledger, city.district, "deactivate", {"agency": "city-hall"}) == (
        "not_controller"
    )
    assert _refused(ledger, city.outsider, "add_key", add) == RejectReason.UNAUTHORIZED
    assert _refused(ledger, city.rogue, "deactivate", {"agency": "city-hall"}) == (
        RejectReason.UNAUTHORIZED
    )
    assert (
        chain.query("did_registry", "resolve", {"did": HALL})["didDocumentMetadata"]["versionId"]
        == "1"
    )

    both = {"agency": "city-hall", "controllers": [HALL, ARCHIVE]}
    assert _send(ledger, city.clerk, "set_controllers", both).ok
    assert _send(ledger, city.archivist, "add_key", add).ok
    only_archive = {"agency": "city-hall", "controllers": [ARCHIVE]}
    assert _send(ledger, city.archivist, "set_controllers", only_archive).ok
    add_d = {"agency": "city-hall", "key": _mb("d")}
    assert _failed(ledger, city.clerk, "add_key", add_d) == "not_controller"
    assert _send(ledger, city.root, "add_key", add_d).ok
    doc = chain.query("did_registry", "resolve", {"did": HALL})["didDocument"]
    assert doc["controller"] == [ARCHIVE]
    assert len(doc["verificationMethod"]) == 4
    ghost = {"agency": "city-hall", "controllers": ["did:civic:ghost-agency"]}
    assert _failed(ledger, city.root, "set_controllers", ghost) == "unknown_controller"


def test_a_removed_agency_key_loses_control(city: City, ledger: Ledger) -> None:
    _create_hall(ledger, city)
    args = {"agency": "city-hall", "key": city.clerk2.public.did}
    assert ledger.send(city.clerk, "governance", "remove_key", args).ok
    add = {"agency": "city-hall", "key": _mb("c")}
    assert _refused(ledger, city.clerk2, "add_key", add) == RejectReason.UNAUTHORIZED


def test_deactivation_is_final(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)
    t1 = chain.head.header.time_ms
    receipt = _send(ledger, city.clerk, "deactivate", {"agency": "city-hall"})
    assert receipt.ok
    t2 = chain.head.header.time_ms
    now = chain.query("did_registry", "resolve", {"did": HALL})
    assert now["didDocumentMetadata"]["deactivated"] is True
    assert now["didDocument"]["verificationMethod"] == []
    assert now["didDocument"]["assertionMethod"] == []
    assert chain.query("did_registry", "resolve_at", {"did": HALL, "time_ms": t2}) == now
    before = chain.query("did_registry", "resolve_at", {"did": HALL, "time_ms": t1})
    assert before["didDocumentMetadata"]["deactivated"] is False
    assert len(before["didDocument"]["verificationMethod"]) == 2
    hall: dict[str, Any] = {"agency": "city-hall"}
    updates: list[tuple[str, dict[str, Any]]] = [
        ("add_key", {**hall, "key": _mb("c")}),
        ("remove_key", {**hall, "method": "#key-1"}),
        ("rotate_key", {**hall, "method": "#key-1", "key": _mb("c")}),
        ("set_controllers", {**hall, "controllers": [HALL]}),
        ("deactivate", hall),
    ]
    for method, args in updates:
        assert _failed(ledger, city.root, method, args) == "did_deactivated"
    assert _failed(ledger, city.root, "create", {**hall, "keys": [_mb("c")]}) == "did_exists"
    assert chain.query("did_registry", "dids", {}) == [
        {"id": HALL, "version": 2, "deactivated": True}
    ]


def test_deactivation_can_revoke_every_key(city: City, ledger: Ledger, chain: Chain) -> None:
    _create_hall(ledger, city)
    t1 = chain.head.header.time_ms
    assert _send(ledger, city.root, "deactivate", {"agency": "city-hall", "revoke_keys": True}).ok
    before = chain.query("did_registry", "resolve_at", {"did": HALL, "time_ms": t1})
    assert before["didDocument"]["verificationMethod"] == []
    assert before["didDocumentMetadata"]["revokedMethods"] == [f"{HALL}#key-1", f"{HALL}#key-2"]


def test_state_holds_block_time_and_no_wall_clock(city: City, ledger: Ledger) -> None:
    """Every timestamp written is a block's time; replaying the same blocks gives same bytes."""
    args = {"agency": "city-hall", "keys": [_mb("a")]}
    block = ledger.block(
        ledger.tx(city.clerk, "did_registry", "create", args), time_ms=1_800_000_000_000
    )
    assert block.included[0].receipt.ok
    rows = {k: v for k, v in city.state_rows().items() if k.startswith("did_registry/")}
    assert set(rows) == {"did_registry/doc/city-hall", "did_registry/ver/city-hall/00000001"}
    assert b'"time_ms":1800000000000' in rows["did_registry/ver/city-hall/00000001"]
    assert b'"created_ms":1800000000000' in rows["did_registry/doc/city-hall"]
    assert multibase_key(_k("a").public.did).encode() in rows["did_registry/doc/city-hall"]
