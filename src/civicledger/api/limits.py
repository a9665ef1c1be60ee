"""Request-body limits, as plain ASGI middleware so they act before any route reads a byte.

A declared ``Content-Length`` over the limit is refused at once (413). A body without one is
counted as it arrives and refused once it passes the limit. Each body chunk must arrive within
the read timeout (408), so a client that trickles its body cannot hold a request open forever;
once the body is complete, later ``receive`` calls (a server-sent-events stream waiting for the
client to disconnect) are passed through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from civicledger.api.problems import ApiError, problem_response


class BodyTooLargeError(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"request body is over {limit} bytes")


class BodyTooSlowError(ApiError):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, "request_timeout", f"request body stalled for {timeout_s:g} s")


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        read_timeout_s: float,
        path_limits: Mapping[str, int] | None = None,
    ) -> None:
        """``path_limits`` gives some exact paths (bulk uploads) a limit of their own."""
        self.app = app
        self.max_bytes = max_bytes
        self.read_timeout_s = read_timeout_s
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            error = BodyTooLargeError(limit)
            response = problem_response(error.status, error.reason, error.detail)
            await response(scope, receive, send)
            return
        await self.app(scope, self._limited(receive, limit), send)

    def _limited(self, receive: Receive, limit: int) -> Receive:
        received = 0
        complete = False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout_s)
            except TimeoutError:
                raise BodyTooSlowError(self.read_timeout_s) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return limited_receive


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
