"""GET /api/v1/events: live blocks and contract events, resumption, and slow subscribers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest
from api_helpers import SseReader, assert_problem, serve_city

from civicledger.api.events import Message, SubscriberOverflow, Subscription
from civicledger.api.settings import ApiSettings
from conftest import City, digest


def anchor(city: City, nonce: int, label: str) -> object:
    return city.tx(
        city.clerk, "notary", "anchor", {"digest": digest(label), "label": label}, nonce=nonce
    )


def test_a_committed_block_and_its_events_arrive_live(city: City) -> None:
    with serve_city(city) as served:
        reader = SseReader(served.url + "/api/v1/events")
        try:
            tx = city.tx(
                city.clerk, "notary", "anchor", {"digest": digest("a"), "label": "a"}, nonce=1
            )
            receipt = served.node.submit(tx)
            block = reader.until("block", lambda d: d["height"] == receipt.height)
            assert block.id == str(receipt.height)
            assert block.data["txs"] == [
                {
                    "tx_id": tx.tx_id_hex,
                    "signer": city.clerk.public.did,
                    "contract": "notary",
                    "method": "anchor",
                    "status": "ok",
                }
            ]
            assert block.data["tree_head"]["tree_head"]["tree_size"] == 1
            event = reader.next()
            assert event.event == "event"
            assert event.data["name"] == "anchored"
            assert event.data["tx_id"] == tx.tx_id_hex
        finally:
            reader.close()


def test_a_reconnecting_subscriber_first_gets_what_it_missed_then_live_blocks(
    city: City,
) -> None:
    with serve_city(city) as served:
        for n in range(1, 4):
            served.node.submit(city.tx(city.clerk2, "tally", "add", {"amount": n}, nonce=n))
        reader = SseReader(served.url + "/api/v1/events", {"Last-Event-ID": "1"})
        try:
            heights = [reader.until("block").data["height"] for _ in range(2)]
            assert heights == [2, 3]
            served.node.submit(city.tx(city.clerk2, "tally", "add", {"amount": 9}, nonce=4))
            assert reader.until("block").data["height"] == 4
        finally:
            reader.close()


def test_the_contract_filter_keeps_blocks_and_only_that_contracts_events(city: City) -> None:
    with serve_city(city) as served:
        reader = SseReader(served.url + "/api/v1/events?contract=tally")
        try:
            served.node.submit(
                city.tx(
                    city.clerk, "notary", "anchor", {"digest": digest("n"), "label": "n"}, nonce=1
                )
            )
            served.node.submit(city.tx(city.clerk2, "tally", "add", {"amount": 2}, nonce=1))
            seen = [reader.next() for _ in range(3)]
            assert [(m.event, m.data.get("contract")) for m in seen] == [
                ("block", None),
                ("block", None),
                ("event", "tally"),
            ]
        finally:
            reader.close()
        assert_problem(
            served.http.get("/api/v1/events", params={"contract": "Bad Name"}), 422, "validation"
        )


def test_a_subscriber_that_falls_behind_is_cut_off_not_waited_for() -> None:
    async def scenario() -> None:
        subscription = Subscription(None, limit=3)
        subscription.offer([Message("block", 1, "{}"), Message("block", 2, "{}")])
        assert [m.height for m in await subscription.next_batch()] == [1, 2]
        subscription.offer([Message("block", h, "{}") for h in range(3, 7)])
        with pytest.raises(SubscriberOverflow):
            await subscription.next_batch()

    asyncio.run(scenario())


def test_a_stream_reader_that_never_reads_is_cut_off_and_never_slows_the_node(
    city: City,
) -> None:
    with serve_city(city, ApiSettings(sse_queue_size=8)) as served:
        host, port = served.url.removeprefix("http://").split(":")
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # before connecting
        stuck.connect((host, int(port)))
        stuck.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            wait_for(lambda: served.subscribers == 1)
            futures = [
                served.node.submit_nowait(
                    city.tx(city.clerk2, "tally", "add", {"amount": 1}, nonce=n)
                )
                for n in range(1, 3001)
            ]
            receipts = [f.result(60) for f in futures]
            assert all(r.ok for r in receipts)
            # The reader never read a byte: its buffers filled, it fell behind, it was cut off.
            wait_for(lambda: served.subscribers == 0)
        finally:
            stuck.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
