"""A server-sent events decoder (the WHATWG event-stream format), fed bytes, giving events.

Only what the node sends is supported: UTF-8 lines ending in LF or CRLF, ``event``, ``id`` and
``data`` fields, ``:`` comments (keep-alive pings), ``retry`` ignored. Every event's data is one
strict JSON value (docs/api.md). A line or event larger than ``max_event_bytes`` is refused, so a
node cannot make the client buffer without bound. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from civicledger.client._http import bad_response
from civicledger.crypto.encoding import JsonValue, parse_json
from civicledger.errors import CivicError

DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024
"""A block event lists up to 100 transactions' summaries; this leaves ample room."""


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One server-sent event; its data is what the node said, unverified unless stated."""

    event: str
    """``block`` or ``event`` (docs/api.md); ``message`` if the node named none."""
    id: str | None
    """The ``id`` field (a block height for ``block`` events): send it back to resume."""
    data: JsonValue


class SseDecoder:
    """Accumulates chunks and returns each event once its terminating blank line arrives."""

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._buffer = b""
        self._event = ""
        self._id: str | None = None
        self._data: list[str] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[ServerEvent]:
        self._buffer += chunk
        events: list[ServerEvent] = []
        while True:
            line, sep, rest = self._buffer.partition(b"\n")
            if not sep:
                break
            self._buffer = rest
            event = self._line(line.removesuffix(b"\r"))
            if event is not None:
                events.append(event)
        if len(self._buffer) + self._size > self.max_event_bytes:
            raise bad_response(f"an event is larger than {self.max_event_bytes} bytes")
        return events

    def _line(self, raw: bytes) -> ServerEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise bad_response("the event stream is not UTF-8") from e
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        self._size += len(raw)
        if self._size > self.max_event_bytes:
            raise bad_response(f"an event is larger than {self.max_event_bytes} bytes")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\x00" not in value:
            self._id = value
        return None

    def _dispatch(self) -> ServerEvent | None:
        data, event = self._data, self._event or "message"
        self._data, self._event, self._size = [], "", 0
        if not data:
            return None
        try:
            value = parse_json("\n".join(data).encode("utf-8"))
        except CivicError as e:
            raise bad_response(f"{event} event data is not strict JSON: {e}") from e
        return ServerEvent(event, self._id, value)
