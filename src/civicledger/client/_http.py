"""HTTP plumbing for the client: bounded reads, strict JSON, problem+json mapped to our errors.

Everything a node sends is hostile until checked. Bodies are read up to a size limit (after
content decoding, so a compressed bomb is bounded too), JSON is parsed strictly (no floats, no
duplicate keys), and an error answer becomes one of our exceptions through ``problem_error``,
the one place that maps a status and a ``reason`` to the exception tree, keeping the node's
message (cut to a readable length).

Reason codes the client itself gives to ``NodeError``: ``unreachable`` (no connection),
``timeout``, ``bad_response`` (a body that is too large, not JSON, or not the documented shape);
an error answer keeps the node's own code (``not_found``, ``node_unavailable``, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from civicledger.crypto.encoding import JsonValue, parse_json
from civicledger.errors import CivicError, NodeError, RejectReason, TxRejected

MAX_DETAIL_CHARS = 500
"""A node's error message is kept up to this length; the rest is cut."""

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest response body read (a block page of 100 transactions of 32 KiB fits three times)."""

_REASON_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

NODE_REASONS = frozenset(
    {
        "bad_encoding",
        "bad_proof",
        "bad_request",
        "internal_error",
        "invalid_query",
        "ledger_error",
        "method_not_allowed",
        "node_diverged",
        "node_error",
        "node_unavailable",
        "not_a_cluster",
        "not_found",
        "not_in_tree",
        "payload_too_large",
        "request_timeout",
        "validation",
    }
)
"""The non-transaction reason codes a node sends (docs/api.md, plus ``bad_encoding``,
``ledger_error``, ``method_not_allowed`` and ``node_error`` from ``civicledger.api.problems``,
and ``not_a_cluster`` and ``node_diverged`` from the cluster routes, docs/cluster.md);
each becomes a ``NodeError`` with that code."""

_TX_REASONS = frozenset(r.value for r in RejectReason)


def bad_response(message: str) -> NodeError:
    """The node answered something that is not the documented shape."""
    return NodeError(message, reason="bad_response")


def _clean(text: str) -> str:
    """A node's text, safe to show on one terminal line: no control characters, bounded."""
    text = _CONTROL_RE.sub(" ", text).strip()
    if len(text) > MAX_DETAIL_CHARS:
        return text[:MAX_DETAIL_CHARS] + "..."
    return text


def problem_error(
    status: int, content_type: str, body: bytes, retry_after: str | None = None
) -> CivicError:
    """The exception an error answer stands for (the caller raises it).

    A ``reason`` that is a ``RejectReason`` gives ``TxRejected`` with that reason; a documented
    node reason gives ``NodeError`` with that code; anything else (an unknown or malformed
    reason, a body that is not problem+json, an HTML page from a proxy) gives ``NodeError`` with
    the generic code and the status and what the node said in the message, so an unknown code
    can never be mistaken for a known one.
    """
    doc: Any = None
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/problem+json", "application/json"):
        try:
            doc = parse_json(body)
        except CivicError:
            doc = None
    if not isinstance(doc, dict):
        return NodeError(f"HTTP {status} from the node, without problem details")
    reason = doc.get("reason")
    detail = doc.get("detail")
    title = doc.get("title")
    message = _clean(detail if isinstance(detail, str) else title if isinstance(title, str) else "")
    message = message or f"HTTP {status}"
    if retry_after is not None and retry_after.strip().isdigit():
        message += f" (retry after {int(retry_after)} s)"
    if not isinstance(reason, str) or not _REASON_RE.fullmatch(reason):
        return NodeError(f"HTTP {status}: {message}")
    if reason in _TX_REASONS:
        return TxRejected(RejectReason(reason), message)
    if reason in NODE_REASONS:
        return NodeError(message, reason=reason)
    return NodeError(f"HTTP {status} ({reason}): {message}")


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer: its status and its body, read in full (within the limit)."""

    status: int
    body: bytes
    path: str

    def json(self) -> JsonValue:
        try:
            return parse_json(self.body)
        except CivicError as e:
            raise bad_response(f"{self.path}: the answer is not strict JSON: {e}") from e

    def json_object(self) -> dict[str, Any]:
        doc = self.json()
        if not isinstance(doc, dict):
            raise bad_response(f"{self.path}: expected a JSON object")
        return doc


class Http:
    """One httpx client with the node's base URL; every call returns an Answer or raises ours."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        transport: httpx.BaseTransport | None,
        max_body_bytes: int,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"accept": "application/json"},
        )

    def close(self) -> None:
        self._client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Answer:
        """Send one request; an answer whose status is not in ``ok`` raises ``problem_error``."""
        headers = {"content-type": "application/json"} if content is not None else None
        try:
            with self._client.stream(
                method, path, params=params, content=content, headers=headers
            ) as response:
                body = self._read(response, path)
                if response.status_code not in ok:
                    raise problem_error(
                        response.status_code,
                        response.headers.get("content-type", ""),
                        body,
                        response.headers.get("retry-after"),
                    )
                return Answer(response.status_code, body, path)
        except httpx.TimeoutException as e:
            raise NodeError(
                f"{method} {path}: the node did not answer in time", reason="timeout"
            ) from e
        except httpx.HTTPError as e:
            raise NodeError(f"{method} {path}: {e}", reason="unreachable") from e

    def stream(
        self, path: str, *, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> Iterator[bytes]:
        """The body of a long-lived answer (server-sent events), chunk by chunk."""
        try:
            with self._client.stream("GET", path, params=params, headers=headers) as response:
                if response.status_code != 200:
                    body = self._read(response, path)
                    raise problem_error(
                        response.status_code,
                        response.headers.get("content-type", ""),
                        body,
                        response.headers.get("retry-after"),
                    )
                media = response.headers.get("content-type", "").split(";", 1)[0].strip()
                if media != "text/event-stream":
                    raise bad_response(f"{path}: expected text/event-stream, got {media!r}")
                yield from response.iter_bytes()
        except httpx.TimeoutException as e:
            raise NodeError(f"GET {path}: no data from the node in time", reason="timeout") from e
        except httpx.HTTPError as e:
            raise NodeError(f"GET {path}: {e}", reason="unreachable") from e

    def _read(self, response: httpx.Response, path: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise bad_response(f"{path}: answer is larger than {self.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
