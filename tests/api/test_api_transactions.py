"""POST /api/v1/tx and transaction reads over real HTTP: receipts, proofs, every refusal."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from api_helpers import PROBLEM, Served, assert_problem, serve_city

from civicledger.api.settings import ApiSettings
from civicledger.crypto.encoding import canonical_json
from civicledger.ledger.proofs import load_bundle, verify_inclusion_bundle
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import MAX_TX_BYTES, SignedTx
from conftest import CHAIN_ID, City, digest

SUBMIT = "/api/v1/tx"


@pytest.fixture
def served(city: City) -> Iterator[Served]:
    with serve_city(city) as s:
        yield s


def anchor(city: City, nonce: int, label: str = "doc") -> SignedTx:
    return city.tx(
        city.clerk, "notary", "anchor", {"digest": digest(label), "label": label}, nonce=nonce
    )


def submit(served: Served, tx: SignedTx, **params: str) -> httpx.Response:
    return served.http.post(SUBMIT, content=tx.envelope_bytes(), params=params)


def test_submit_returns_the_durable_receipt_which_reads_and_proves_the_same(
    served: Served,
) -> None:
    city = served.city
    tx = anchor(city, 1, "<script>alert(1)</script>")
    response = submit(served, tx)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["tx_id"] == tx.tx_id_hex
    receipt = Receipt.model_validate_json(canonical_json(body["receipt"]))
    assert receipt.ok
    assert receipt.events[0].name == "anchored"
    assert city.nonce(city.clerk) == 1  # durable before the answer

    record = served.http.get(f"/api/v1/tx/{tx.tx_id_hex}")
    assert record.status_code == 200
    assert record.json() == {"receipt": body["receipt"], "tx": tx.to_json()}

    proof = served.http.get(f"/api/v1/tx/{tx.tx_id_hex}/proof")
    assert proof.status_code == 200
    bundle = load_bundle(proof.content)
    proven_tx, proven_receipt = verify_inclusion_bundle(  # type: ignore[arg-type]
        bundle, frozenset(city.genesis.producers)
    )
    assert proven_tx.tx_id == tx.tx_id
    assert proven_receipt == receipt


def test_a_failed_receipt_is_recorded_and_answered_with_200(served: Served) -> None:
    city = served.city
    assert submit(served, anchor(city, 1, "budget")).status_code == 200
    again = submit(served, anchor(city, 2, "budget"))
    assert again.status_code == 200
    receipt = again.json()["receipt"]
    assert receipt["status"] == "failed"
    assert receipt["reason"] == "already_anchored"
    assert city.nonce(city.clerk) == 2


@pytest.mark.parametrize(
    ("make", "status", "reason"),
    [
        pytest.param(lambda c: b"{not json", 400, "malformed", id="not-json"),
        pytest.param(
            lambda c: b'{"body": {}, "signature": "' + b"A" * 86 + b'"}',
            400,
            "malformed",
            id="empty-body",
        ),
        pytest.param(
            lambda c: c.tx(c.clerk, "notary", "anchor", {"digest": "zz"}, nonce=1),
            400,
            "invalid_args",
            id="invalid-args",
        ),
        pytest.param(
            lambda c: c.tx(c.clerk, "nope", "anchor", {}, nonce=1),
            400,
            "unknown_contract",
            id="unknown-contract",
        ),
        pytest.param(
            lambda c: c.tx(c.clerk, "notary", "forge", {}, nonce=1),
            400,
            "unknown_method",
            id="unknown-method",
        ),
        pytest.param(
            lambda c: c.tx(
                c.clerk, "notary", "anchor", {"digest": digest("x")}, nonce=1, chain_id="elsewhere"
            ),
            400,
            "wrong_chain",
            id="wrong-chain",
        ),
        pytest.param(
            lambda c: c.tx(c.clerk, "tally", "add", {"amount": 1}, nonce=1, expires_at=1),
            400,
            "expired",
            id="expired",
        ),
        pytest.param(
            lambda c: c.tx(c.clerk, "tally", "add", {"amount": 1}, nonce=5),
            409,
            "nonce_out_of_order",
            id="nonce-gap",
        ),
        pytest.param(
            lambda c: c.tx(
                c.outsider, "governance", "grant_role", {"agency": "archive", "role": "x"}, nonce=1
            ),
            403,
            "unauthorized",
            id="unauthorized",
        ),
        pytest.param(
            lambda c: c.tx(
                c.clerk, "tally", "add", {"amount": 1, "note": "n" * MAX_TX_BYTES}, nonce=1
            ),
            413,
            "oversize",
            id="oversize-tx",
        ),
    ],
)
def test_refused_transactions_are_problems_with_their_reason_and_write_nothing(
    served: Served, make: object, status: int, reason: str
) -> None:
    city = served.city
    before = city.snapshot()
    made = make(city)  # type: ignore[operator]
    raw = made.envelope_bytes() if isinstance(made, SignedTx) else made
    response = served.http.post(SUBMIT, content=raw)
    problem = assert_problem(response, status, reason)
    if reason == "unauthorized":
        assert problem["title"] == "Transaction rejected"
    assert city.snapshot() == before


def test_a_bad_signature_is_refused(served: Served) -> None:
    city = served.city
    doc = anchor(city, 1).to_json()
    doc["body"]["args"]["label"] = "altered after signing"
    response = served.http.post(SUBMIT, content=canonical_json(doc))
    assert_problem(response, 400, "bad_signature")


def test_a_replayed_transaction_is_refused_and_counted_in_metrics(served: Served) -> None:
    city = served.city
    tx = anchor(city, 1)
    assert submit(served, tx).status_code == 200
    assert_problem(submit(served, tx), 409, "nonce_replayed")
    metrics = served.http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'civicledger_transactions_rejected_total{reason="nonce_replayed"} 1.0' in text
    assert 'civicledger_transactions_committed_total{status="ok"} 1.0' in text
    assert f"civicledger_block_height {served.node.chain.height}.0" in text
    assert "civicledger_mempool_size 0.0" in text
    rate = next(
        line for line in text.splitlines() if line.startswith("civicledger_transactions_per_second")
    )
    assert float(rate.split()[1]) > 0


def test_without_wait_the_answer_is_202_and_the_transaction_commits(served: Served) -> None:
    tx = anchor(served.city, 1)
    response = submit(served, tx, wait="false")
    assert response.status_code == 202
    assert response.json() == {"tx_id": tx.tx_id_hex, "status": "pending"}
    deadline = time.monotonic() + 10
    while (got := served.http.get(f"/api/v1/tx/{tx.tx_id_hex}")).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert got.json()["receipt"]["status"] == "ok"


def test_a_block_slower_than_the_wait_limit_gives_202_pending(city: City) -> None:
    with serve_city(city, ApiSettings(wait_timeout_s=0.05), block_interval=1.0) as served:
        tx = anchor(city, 1)
        response = submit(served, tx)
        assert response.status_code == 202
        assert response.json()["status"] == "pending"
        served.node.submit(anchor(city, 2, "second"))  # the block with both is now durable
        assert served.http.get(f"/api/v1/tx/{tx.tx_id_hex}").status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(served: Served) -> None:
    before = served.city.snapshot()
    response = served.http.post(SUBMIT, content=b"x" * (64 * 1024 + 1))
    assert_problem(response, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(100):
            yield b"y" * 1024

    chunked = served.http.post(SUBMIT, content=chunks())
    assert_problem(chunked, 413, "payload_too_large")
    assert served.city.snapshot() == before


def test_a_stalled_body_times_out_without_stalling_anyone_else(city: City) -> None:
    with serve_city(city, ApiSettings(body_read_timeout_s=0.5)) as served:
        host, port = served.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as slow:
            slow.sendall(
                b"POST /api/v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 500\r\n\r\n{"body":'
            )
            # While that client stalls, the node keeps serving and committing.
            assert served.http.get("/healthz").json()["status"] == "ok"
            assert submit(served, anchor(city, 1)).status_code == 200
            slow.settimeout(5)
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = slow.recv(4096)
                assert chunk, "connection closed without an answer"
                answer += chunk
        head = answer.split(b"\r\n")[0]
        assert b" 408 " in head, answer
        assert PROBLEM.encode() in answer


def test_reads_of_unknown_things_are_404_problems(served: Served) -> None:
    missing = "ab" * 32
    assert_problem(served.http.get(f"/api/v1/tx/{missing}"), 404, "not_found")
    assert_problem(served.http.get(f"/api/v1/tx/{missing}/proof"), 404, "not_found")
    assert_problem(served.http.get("/api/v1/nowhere"), 404, "not_found")
    assert_problem(served.http.get("/api/v1/tx/not-hex"), 422, "validation")


def test_an_inclusion_proof_at_an_older_height_verifies_against_that_tree_head(
    served: Served,
) -> None:
    city = served.city
    first = anchor(city, 1, "first")
    height = submit(served, first).json()["receipt"]["height"]
    submit(served, anchor(city, 2, "second"))
    old = served.http.get(f"/api/v1/tx/{first.tx_id_hex}/proof", params={"height": height})
    bundle = load_bundle(old.content)
    assert bundle.tree_head.tree_head.height == height  # type: ignore[union-attr]
    verify_inclusion_bundle(bundle, frozenset(city.genesis.producers))  # type: ignore[arg-type]
    before = served.http.get(f"/api/v1/tx/{first.tx_id_hex}/proof", params={"height": height - 1})
    assert_problem(before, 400, "not_in_tree")


def test_the_chain_id_of_the_served_city_is_the_one_in_health(served: Served) -> None:
    health = served.http.get("/healthz").json()
    assert health == {"status": "ok", "chain_id": CHAIN_ID, "height": 0, "mempool": 0}
