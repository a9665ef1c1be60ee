"""The governance contract: who may do what, as every later service will ask it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from civicledger.contracts.authority import Authority
from civicledger.contracts.executor import nonce_key
from civicledger.contracts.governance import genesis_writes
from civicledger.crypto.encoding import load_trusted_json
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import GenesisError, RejectReason, TxRejected
from civicledger.ledger.genesis import Genesis
from civicledger.node.chain import Chain
from conftest import City, Ledger, digest


def _anchor(ledger: Ledger, key: PrivateKey, doc: str) -> Any:
    return ledger.send(key, "notary", "anchor", {"digest": digest(doc)})


def _refused(ledger: Ledger, key: PrivateKey, method: str, args: dict[str, Any]) -> RejectReason:
    contract = "notary" if method == "anchor" else "governance"
    with pytest.raises(TxRejected) as caught:
        ledger.send(key, contract, method, args)
    return caught.value.reject_reason


def test_genesis_sets_root_agencies_keys_and_roles(city: City, chain: Chain) -> None:
    assert chain.query("governance", "signer", {"did": city.root.public.did}) == {
        "did": city.root.public.did,
        "root": True,
        "agency": None,
        "roles": [],
    }
    assert chain.query("governance", "signer", {"did": city.clerk2.public.did}) == {
        "did": city.clerk2.public.did,
        "root": False,
        "agency": "city-hall",
        "roles": ["notary"],
    }
    assert chain.query("governance", "holders", {"role": "notary"}) == ["archive", "city-hall"]
    hall = chain.query("governance", "agency", {"agency": "city-hall"})
    assert hall["keys"] == sorted([city.clerk.public.did, city.clerk2.public.did])
    assert (hall["active"], hall["registered_at"]) == (True, 0)


def test_genesis_writes_are_deterministic_and_roles_deduplicated(city: City) -> None:
    doc = city.genesis.model_dump(mode="json")
    doc["agencies"][0]["roles"] = ["notary", "auditor", "notary"]
    genesis = Genesis.from_json_bytes(json.dumps(doc).encode())
    writes = genesis_writes(genesis)
    record = load_trusted_json(writes["governance/agency/city-hall"] or b"")
    assert record["roles"] == ["auditor", "notary"]
    assert writes["governance/role/auditor/city-hall"] == b"true"
    assert writes == genesis_writes(Genesis.from_json_bytes(json.dumps(doc).encode()))


def test_genesis_cannot_hand_out_the_root_role(city: City) -> None:
    doc = city.genesis.model_dump(mode="json")
    doc["agencies"][0]["roles"] = ["root"]
    with pytest.raises(GenesisError, match="invalid role name 'root'"):
        Genesis.from_json_bytes(json.dumps(doc).encode())


def test_register_grant_anchor_revoke(city: City, ledger: Ledger) -> None:
    parks = city.outsider
    receipt = ledger.send(
        city.root,
        "governance",
        "register_agency",
        {"id": "parks", "name": "Parks Department", "keys": [parks.public.did]},
    )
    assert receipt.ok
    assert [(e.name, e.data) for e in receipt.events] == [
        ("agency_registered", {"agency": "parks", "name": "Parks Department", "keys": 1})
    ]
    assert _refused(ledger, parks, "anchor", {"digest": digest("a")}) is RejectReason.UNAUTHORIZED

    assert ledger.send(
        city.root, "governance", "grant_role", {"agency": "parks", "role": "notary"}
    ).ok
    anchored = _anchor(ledger, parks, "a")
    assert anchored.ok
    assert anchored.result["agency"] == "parks"

    assert ledger.send(
        city.root, "governance", "revoke_role", {"agency": "parks", "role": "notary"}
    ).ok
    assert _refused(ledger, parks, "anchor", {"digest": digest("b")}) is RejectReason.UNAUTHORIZED
    assert ledger.chain.query("governance", "holders", {"role": "notary"}) == [
        "archive",
        "city-hall",
    ]


def test_an_agency_rotates_its_own_keys(city: City, ledger: Ledger) -> None:
    new_key = city.outsider
    args = {"agency": "city-hall", "key": new_key.public.did}
    assert ledger.send(city.clerk, "governance", "add_key", args).ok
    assert _anchor(ledger, new_key, "by the new key").ok
    retire = {"agency": "city-hall", "key": city.clerk2.public.did}
    assert ledger.send(new_key, "governance", "remove_key", retire).ok
    assert _refused(ledger, city.clerk2, "anchor", {"digest": digest("x")}) is (
        RejectReason.UNAUTHORIZED
    )
    hall = ledger.chain.query("governance", "agency", {"agency": "city-hall"})
    assert hall["keys"] == sorted([city.clerk.public.did, new_key.public.did])


def test_deactivation_takes_effect_from_the_next_transaction_in_the_same_block(
    city: City, ledger: Ledger
) -> None:
    deactivate = ledger.tx(city.root, "governance", "deactivate_agency", {"agency": "archive"})
    anchor = ledger.tx(city.archivist, "notary", "anchor", {"digest": digest("late")})
    block = ledger.block(deactivate, anchor)
    assert [i.prepared.tx.tx_id for i in block.included] == [deactivate.tx_id]
    assert [d.error.reject_reason for d in block.dropped] == [RejectReason.UNAUTHORIZED]
    record = ledger.chain.query("governance", "agency", {"agency": "archive"})
    assert (record["active"], record["deactivated_at"]) == (False, block.header.header.height)
    assert (
        ledger.chain.query("governance", "signer", {"did": city.archivist.public.did})["agency"]
        is None
    )
    # Its own keys can no longer manage it; root still can revoke, but not grant or add keys.
    own = {"agency": "archive", "key": city.outsider.public.did}
    assert _refused(ledger, city.archivist, "add_key", own) is RejectReason.UNAUTHORIZED
    assert ledger.send(city.root, "governance", "add_key", own).reason == "agency_inactive"
    assert ledger.send(
        city.root, "governance", "revoke_role", {"agency": "archive", "role": "notary"}
    ).ok


FAILURES = [
    (
        "register_agency",
        {"id": "parks", "name": "P", "keys": ["K:outsider", "K:outsider"]},
        "duplicate_key",
    ),
    ("register_agency", {"id": "parks", "name": "P", "keys": ["K:district"]}, "key_in_use"),
    ("add_key", {"agency": "archive", "key": "K:clerk"}, "key_in_use"),
    ("remove_key", {"agency": "archive", "key": "K:clerk"}, "unknown_key"),
    ("revoke_role", {"agency": "district-office", "role": "notary"}, "role_not_held"),
    ("revoke_role", {"agency": "nowhere", "role": "notary"}, "unknown_agency"),
    ("deactivate_agency", {"agency": "nowhere"}, "unknown_agency"),
]


def _resolve(city: City, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("K:"):
        return getattr(city, value[2:]).public.did
    if isinstance(value, list):
        return [_resolve(city, v) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "args", "reason"), FAILURES, ids=[f[2] + ":" + f[0] for f in FAILURES]
)
def test_refusals_inside_the_contract(
    city: City, ledger: Ledger, method: str, args: dict[str, Any], reason: str
) -> None:
    args = {k: _resolve(city, v) for k, v in args.items()}
    before = city.state_rows()
    receipt = ledger.send(city.root, "governance", method, args)
    assert (receipt.status, receipt.reason) == ("failed", reason)
    after = city.state_rows()
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {nonce_key(city.root.public.did)}


def test_a_deactivated_agency_stays_registered(city: City, ledger: Ledger) -> None:
    assert ledger.send(city.root, "governance", "deactivate_agency", {"agency": "archive"}).ok
    again = {"id": "archive", "name": "Archive II", "keys": [city.outsider.public.did]}
    assert ledger.send(city.root, "governance", "register_agency", again).reason == "agency_exists"
    assert (
        ledger.send(city.root, "governance", "deactivate_agency", {"agency": "archive"}).reason
        == "agency_inactive"
    )


def test_agencies_paginate_through_every_agency(city: City, ledger: Ledger) -> None:
    for n in range(5):
        key = PrivateKey.from_seed(bytes([n + 1]) * 32)
        args = {"id": f"office-{n}", "name": f"Office {n}", "keys": [key.public.did]}
        assert ledger.send(city.root, "governance", "register_agency", args).ok
    expected = sorted(
        ["archive", "city-hall", "district-office"] + [f"office-{n}" for n in range(5)]
    )
    seen: list[str] = []
    after = ""
    while True:
        page = ledger.chain.query("governance", "agencies", {"after": after, "limit": 3})
        assert len(page) <= 3
        if not page:
            break
        seen.extend(a["id"] for a in page)
        after = page[-1]["id"]
    assert seen == expected


def test_role_holders_paginate_through_every_holder(city: City, ledger: Ledger) -> None:
    for n in range(5):
        key = PrivateKey.from_seed(bytes([n + 1]) * 32)
        args = {"id": f"office-{n}", "name": f"Office {n}", "keys": [key.public.did]}
        assert ledger.send(city.root, "governance", "register_agency", args).ok
        grant = {"agency": f"office-{n}", "role": "notary"}
        assert ledger.send(city.root, "governance", "grant_role", grant).ok
    expected = sorted(["archive", "city-hall"] + [f"office-{n}" for n in range(5)])
    seen: list[str] = []
    after = ""
    while page := ledger.chain.query(
        "governance", "holders", {"role": "notary", "after": after, "limit": 2}
    ):
        assert len(page) <= 2
        seen.extend(page)
        after = page[-1]
    assert seen == expected


@pytest.mark.parametrize(
    ("method", "args", "reason"),
    [
        ("agencies", {"limit": 0}, RejectReason.INVALID_ARGS),
        ("agencies", {"limit": True}, RejectReason.INVALID_ARGS),
        ("agency", {"agency": "archive", "x": 1}, RejectReason.INVALID_ARGS),
        ("grant_role", {"agency": "archive", "role": "x"}, RejectReason.UNKNOWN_METHOD),
        ("no_such_query", {}, RejectReason.UNKNOWN_METHOD),
    ],
)
def test_query_refusals(
    chain: Chain, method: str, args: dict[str, Any], reason: RejectReason
) -> None:
    with pytest.raises(TxRejected) as caught:
        chain.query("governance", method, args)
    assert caught.value.reject_reason is reason


def test_authority_fails_closed_on_odd_state() -> None:
    """Anything but the exact values governance writes grants nothing."""
    state = {
        "governance/root/did:a": 1,  # truthy, but not ``true``
        "governance/key/did:b": "ghost",  # member of an agency with no active flag
        "governance/key/did:c": ["city-hall"],  # not a string
        "governance/active/city-hall": True,
        "governance/role/notary/city-hall": "yes",
    }
    authority = Authority(type("S", (), {"get": staticmethod(state.get)})())
    assert not authority.is_root("did:a")
    assert authority.agency_of("did:b") is None
    assert authority.agency_of("did:c") is None
    assert not authority.agency_has_role("city-hall", "notary")
    assert not authority.has_role("did:a", "root")
