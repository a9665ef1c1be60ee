"""Decoding what a node sends: problem+json to our exceptions, and server-sent events."""

from __future__ import annotations

import json

import pytest

from civicledger.client._http import MAX_DETAIL_CHARS, NODE_REASONS, problem_error
from civicledger.client._sse import ServerEvent, SseDecoder
from civicledger.errors import NodeError, RejectReason, TxRejected

PROBLEM = "application/problem+json"


def _problem(status: int, reason: object, detail: object = "what happened") -> bytes:
    return json.dumps(
        {"type": "x", "title": "Error", "status": status, "detail": detail, "reason": reason}
    ).encode()


@pytest.mark.parametrize("reason", list(RejectReason))
def test_every_rejection_reason_becomes_tx_rejected_with_that_reason(
    reason: RejectReason,
) -> None:
    error = problem_error(409, PROBLEM, _problem(409, reason.value, "nonce 7 already used"))
    assert isinstance(error, TxRejected)
    assert error.reject_reason is reason
    assert error.reason == reason.value
    assert error.message == "nonce 7 already used"


@pytest.mark.parametrize("reason", sorted(NODE_REASONS))
def test_every_node_reason_becomes_a_node_error_with_that_code(reason: str) -> None:
    error = problem_error(404, PROBLEM, _problem(404, reason))
    assert type(error) is NodeError
    assert (error.reason, error.message) == (reason, "what happened")


BAD_PROBLEMS: dict[str, tuple[str, bytes]] = {
    "unknown reason": (PROBLEM, _problem(400, "frobnicated")),
    "reason with a newline": (PROBLEM, _problem(409, "nonce_replayed\n")),
    "reason in capitals": (PROBLEM, _problem(409, "NONCE_REPLAYED")),
    "reason not a string": (PROBLEM, _problem(409, 7)),
    "no reason": (PROBLEM, json.dumps({"detail": "x"}).encode()),
    "not JSON": (PROBLEM, b"<html>502 Bad Gateway</html>"),
    "HTML": ("text/html", b"<html>502 Bad Gateway</html>"),
    "a JSON list": (PROBLEM, b"[1, 2]"),
    "a float inside": (PROBLEM, b'{"reason": "nonce_replayed", "status": 409.0}'),
    "duplicate keys": (PROBLEM, b'{"reason": "unauthorized", "reason": "nonce_replayed"}'),
}


@pytest.mark.parametrize("case", list(BAD_PROBLEMS))
def test_anything_else_is_a_generic_node_error_never_a_rejection(case: str) -> None:
    content_type, body = BAD_PROBLEMS[case]
    error = problem_error(409, content_type, body)
    assert type(error) is NodeError
    assert error.reason == "node_error"
    assert "409" in error.message


def test_an_unknown_reason_is_kept_in_the_message() -> None:
    error = problem_error(418, PROBLEM, _problem(418, "teapot", "short and stout"))
    assert error.message == "HTTP 418 (teapot): short and stout"


def test_the_nodes_message_is_kept_on_one_bounded_line() -> None:
    detail = "line one\nline two\x1b[31m" + "x" * 2000
    error = problem_error(400, PROBLEM, _problem(400, "bad_request", detail))
    assert error.message.startswith("line one line two [31mxxx")
    assert "\n" not in error.message
    assert "\x1b" not in error.message
    assert len(error.message) == MAX_DETAIL_CHARS + 3


def test_retry_after_is_kept_in_the_message() -> None:
    error = problem_error(503, PROBLEM, _problem(503, "node_unavailable", "busy"), "2")
    assert error.message == "busy (retry after 2 s)"
    ignored = problem_error(503, PROBLEM, _problem(503, "node_unavailable", "busy"), "soon")
    assert ignored.message == "busy"


# -- server-sent events -------------------------------------------------------------------------


def _feed_all(decoder: SseDecoder, chunks: list[bytes]) -> list[ServerEvent]:
    return [event for chunk in chunks for event in decoder.feed(chunk)]


def test_events_are_decoded_whatever_the_chunking() -> None:
    stream = (
        b": connected\r\nretry: 1000\r\n\r\n"
        b'event: block\r\nid: 7\r\ndata: {"height": 7}\r\n\r\n'
        b": ping\n\n"
        b'event: event\ndata: {"a":\ndata: 1}\n\n'
        b'data: "no name"\n\n'
    )
    expected = [
        ServerEvent("block", "7", {"height": 7}),
        ServerEvent("event", "7", {"a": 1}),  # the id carries over, as the spec says
        ServerEvent("message", "7", "no name"),
    ]
    assert _feed_all(SseDecoder(), [stream]) == expected
    assert _feed_all(SseDecoder(), [stream[i : i + 1] for i in range(len(stream))]) == expected


def test_an_event_without_its_blank_line_is_not_dispatched() -> None:
    assert SseDecoder().feed(b'event: block\ndata: {"height": 1}\n') == []


@pytest.mark.parametrize(
    "stream",
    [
        b"data: {not json}\n\n",
        b"data: 1.5\n\n",
        b"data: \xff\n\n",
    ],
)
def test_event_data_that_is_not_strict_json_is_a_bad_response(stream: bytes) -> None:
    with pytest.raises(NodeError) as raised:
        SseDecoder().feed(stream)
    assert raised.value.reason == "bad_response"


def test_an_event_larger_than_the_limit_is_refused_before_it_is_complete() -> None:
    decoder = SseDecoder(max_event_bytes=1000)
    with pytest.raises(NodeError, match="larger than 1000"):
        decoder.feed(b"data: " + b"x" * 2000)  # no line end: never buffered without bound
    decoder = SseDecoder(max_event_bytes=1000)
    with pytest.raises(NodeError, match="larger than 1000"):
        decoder.feed((b"data: " + b"x" * 100 + b"\n") * 20)  # many lines, one event
