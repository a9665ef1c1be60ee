"""POST /api/v1/txs: NDJSON batches, one outcome per line, in order."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from api_helpers import Served, assert_problem, serve_city

from civicledger.api.settings import ApiSettings
from conftest import City


@pytest.fixture
def served(city: City) -> Iterator[Served]:
    with serve_city(city) as s:
        yield s


def test_every_line_gets_its_own_outcome_in_order(served: Served) -> None:
    city = served.city
    good = [city.tx(city.clerk2, "tally", "add", {"amount": n}, nonce=n) for n in range(1, 4)]
    unauthorized = city.tx(
        city.outsider, "governance", "grant_role", {"agency": "archive", "role": "x"}, nonce=1
    )
    lines = [
        good[0].envelope_bytes(),
        b"{broken json",
        good[1].envelope_bytes(),
        unauthorized.envelope_bytes(),
        good[2].envelope_bytes(),
        good[2].envelope_bytes(),  # the same transaction again
    ]
    response = served.http.post(
        "/api/v1/txs",
        content=b"\n".join(lines) + b"\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(6))
    assert [r["status"] for r in results] == ["ok", "rejected", "ok", "rejected", "ok", "rejected"]
    assert [r.get("reason") for r in results] == [
        None,
        "malformed",
        None,
        "unauthorized",
        None,
        "nonce_replayed",
    ]
    assert [results[i]["receipt"]["tx_id"] for i in (0, 2, 4)] == [t.tx_id_hex for t in good]
    assert served.node.chain.query("tally", "total", {}) == 6
    metrics = served.http.get("/metrics").text
    assert 'civicledger_transactions_rejected_total{reason="malformed"} 1.0' in metrics


def test_without_wait_the_batch_is_accepted_and_commits(served: Served) -> None:
    city = served.city
    txs = [city.tx(city.clerk2, "tally", "add", {"amount": 1}, nonce=n) for n in range(1, 51)]
    body = b"\n".join(tx.envelope_bytes() for tx in txs)
    response = served.http.post("/api/v1/txs", content=body, params={"wait": "false"})
    assert response.status_code == 202
    assert response.json() == {"accepted": 50}
    broken = served.http.post("/api/v1/txs", content=b"{broken", params={"wait": "false"})
    assert broken.status_code == 202  # refused later, by a worker; still counted
    deadline = time.monotonic() + 10
    while served.http.get(f"/api/v1/tx/{txs[-1].tx_id_hex}").status_code == 404:
        assert time.monotonic() < deadline, "the batch never committed"
        time.sleep(0.02)
    assert city.nonce(city.clerk2) == 50
    counted = 'civicledger_transactions_rejected_total{reason="malformed"} 1.0'
    while counted not in served.http.get("/metrics").text:
        assert time.monotonic() < deadline, "the refused line was never counted"
        time.sleep(0.02)


def test_empty_and_oversized_batches_are_refused(city: City) -> None:
    with serve_city(city, ApiSettings(max_batch_txs=3, max_batch_body_bytes=100_000)) as served:
        assert_problem(served.http.post("/api/v1/txs", content=b"\n\n"), 400, "bad_request")
        four = b"\n".join(
            city.tx(city.clerk2, "tally", "add", {"amount": 1}, nonce=n).envelope_bytes()
            for n in range(1, 5)
        )
        assert_problem(served.http.post("/api/v1/txs", content=four), 413, "payload_too_large")
        big = served.http.post("/api/v1/txs", content=b"x" * 100_001)
        assert_problem(big, 413, "payload_too_large")
        # The batch route's larger limit is its own: single submits keep 64 KiB.
        assert_problem(
            served.http.post("/api/v1/tx", content=b"x" * 70_000), 413, "payload_too_large"
        )
        assert city.nonce(city.clerk2) == 0
