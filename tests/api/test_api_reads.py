"""Ledger reads over real HTTP: blocks, tree heads, consistency proofs, queries, nonces, genesis."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api_helpers import Served, assert_problem, serve_city

from civicledger.crypto.encoding import canonical_json
from civicledger.ledger.block import SignedBlockHeader, SignedTreeHead
from civicledger.ledger.proofs import ConsistencyBundle, verify_consistency_bundle
from conftest import City, digest


@pytest.fixture
def served(city: City) -> Iterator[Served]:
    """A city with five blocks: one anchor each."""
    with serve_city(city) as s:
        for n in range(1, 6):
            tx = city.tx(
                city.clerk,
                "notary",
                "anchor",
                {"digest": digest(f"d{n}"), "label": f"d{n}"},
                nonce=n,
            )
            s.node.submit(tx)
        assert s.node.chain.height == 5
        yield s


def test_blocks_page_newest_first_and_each_header_verifies(served: Served) -> None:
    first = served.http.get("/api/v1/blocks", params={"limit": 2}).json()
    assert [b["header"]["height"] for b in first["blocks"]] == [5, 4]
    assert first["next_before"] == 4
    rest = served.http.get("/api/v1/blocks", params={"before": 4, "limit": 10}).json()
    assert [b["header"]["height"] for b in rest["blocks"]] == [3, 2, 1, 0]
    assert rest["next_before"] is None
    for raw in first["blocks"] + rest["blocks"]:
        SignedBlockHeader.model_validate_json(json.dumps(raw)).verify()


def test_a_block_has_its_tree_head_and_pages_of_its_transactions(served: Served) -> None:
    city = served.city
    txs = [city.tx(city.clerk2, "tally", "add", {"amount": n}, nonce=n) for n in range(1, 6)]
    futures = [served.node.submit_nowait(tx) for tx in txs]
    receipts = [f.result(10) for f in futures]
    height = receipts[0].height
    assert {r.height for r in receipts} == {height}  # one block
    page = served.http.get(f"/api/v1/blocks/{height}", params={"offset": 1, "limit": 2}).json()
    assert page["header"]["header"]["height"] == height
    assert page["header"]["header"]["tx_count"] == 5
    assert (page["offset"], page["limit"]) == (1, 2)
    assert [t["receipt"]["tx_id"] for t in page["txs"]] == [tx.tx_id_hex for tx in txs[1:3]]
    head = SignedTreeHead.model_validate_json(json.dumps(page["tree_head"]))
    head.verify(frozenset(city.genesis.producers))
    assert head.tree_head.height == height
    assert_problem(served.http.get("/api/v1/blocks/999"), 404, "not_found")
    assert_problem(served.http.get("/api/v1/blocks/-1"), 422, "validation")
    assert_problem(served.http.get("/api/v1/blocks", params={"limit": 0}), 422, "validation")


def test_tree_heads_and_a_consistency_proof_between_them_verify(served: Served) -> None:
    trusted = frozenset(served.city.genesis.producers)
    latest = SignedTreeHead.model_validate_json(served.http.get("/api/v1/tree-head").content)
    latest.verify(trusted)
    assert latest.tree_head.height == 5
    old = served.http.get("/api/v1/tree-head", params={"height": 2}).json()
    assert old["tree_head"]["tree_size"] == 2
    proof = served.http.get("/api/v1/consistency", params={"old": 2, "new": 5})
    bundle = ConsistencyBundle.model_validate_json(proof.content)
    verify_consistency_bundle(bundle, trusted)
    assert bundle.new_head == latest
    assert_problem(
        served.http.get("/api/v1/consistency", params={"old": 4, "new": 2}), 400, "bad_request"
    )
    assert_problem(served.http.get("/api/v1/consistency", params={"old": 9}), 404, "not_found")
    assert_problem(served.http.get("/api/v1/tree-head", params={"height": 9}), 404, "not_found")


def test_queries_answer_at_a_height_and_refuse_bad_arguments(served: Served) -> None:
    found = served.http.get(
        "/api/v1/query/notary/lookup", params={"args": json.dumps({"digest": digest("d3")})}
    ).json()
    assert found["height"] == 5
    assert found["result"]["label"] == "d3"
    agencies = served.http.get("/api/v1/query/governance/agencies").json()["result"]
    assert [a["id"] for a in agencies] == ["archive", "city-hall", "district-office"]
    bad_json = served.http.get("/api/v1/query/notary/lookup", params={"args": "{oops"})
    assert_problem(bad_json, 400, "invalid_query")
    not_object = served.http.get("/api/v1/query/notary/lookup", params={"args": "[1]"})
    assert_problem(not_object, 400, "invalid_query")
    bad_args = served.http.get("/api/v1/query/notary/lookup", params={"args": '{"digest": 1}'})
    assert_problem(bad_args, 400, "invalid_args")
    not_a_query = served.http.get("/api/v1/query/notary/anchor")
    assert_problem(not_a_query, 400, "unknown_method")


def test_nonce_and_genesis(served: Served) -> None:
    city = served.city
    did = city.clerk.public.did
    assert served.http.get(f"/api/v1/nonce/{did}").json() == {
        "signer": did,
        "last_nonce": 5,
        "next_nonce": 6,
    }
    assert_problem(served.http.get("/api/v1/nonce/did:key:zzz"), 400, "bad_encoding")
    genesis = served.http.get("/api/v1/genesis")
    assert genesis.content == city.genesis.canonical_bytes()
    assert canonical_json(genesis.json()) == city.genesis.canonical_bytes()


def test_the_openapi_document_describes_every_route(served: Served) -> None:
    spec = served.http.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/tx",
        "/api/v1/tx/{tx_id}",
        "/api/v1/tx/{tx_id}/proof",
        "/api/v1/blocks",
        "/api/v1/blocks/{height}",
        "/api/v1/tree-head",
        "/api/v1/consistency",
        "/api/v1/query/{contract}/{method}",
        "/api/v1/nonce/{did}",
        "/api/v1/genesis",
        "/api/v1/events",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    submit = paths["/api/v1/tx"]["post"]
    body_schema = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["required"] == ["body", "signature"]
    assert "application/problem+json" in submit["responses"]["409"]["content"]
    assert "202" in submit["responses"]
