"""Helpers for the client suites: a lying node over ``httpx.MockTransport``, and a real one.

``FakeNode`` answers the routes of docs/api.md from a real ``Chain`` (so every proof, header and
tree head in it is genuine) and lets a test rewrite any answer on its way out: it plays the
malicious server the client must not believe. It is not a mock of our core; the chain, the
proofs and the verifiers are the real ones.

Not a conftest.py (see tests/cli/cli_helpers.py): imported by its unique name.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from civicledger.api.app import create_app
from civicledger.api.events import stored_messages
from civicledger.api.server import BackgroundServer
from civicledger.api.settings import ApiSettings
from civicledger.client import CivicClient
from civicledger.crypto.encoding import parse_json
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, RejectReason, TxRejected
from civicledger.ledger.block import SignedTreeHead, TreeHead
from civicledger.ledger.receipt import log_leaf_bytes
from civicledger.ledger.tx import decode_tx
from civicledger.node.chain import Chain
from civicledger.node.embedded import EmbeddedNode
from conftest import City, Ledger

API = "/api/v1"
PROBLEM = "application/problem+json"
BASE_URL = "http://node.test"

Rewrite = Callable[[Any], Any]
"""Takes the JSON document a route would send and returns what to send instead."""

_STATUS = {
    "unauthorized": 403,
    "not_found": 404,
    "nonce_replayed": 409,
    "nonce_out_of_order": 409,
    "oversize": 413,
    "mempool_full": 503,
}


def problem(status: int, reason: str, detail: str) -> httpx.Response:
    doc = {
        "type": f"https://civicledger.org/problems/{reason}",
        "title": "Error",
        "status": status,
        "detail": detail,
        "reason": reason,
    }
    return httpx.Response(
        status, content=json.dumps(doc).encode(), headers={"content-type": PROBLEM}
    )


def resign_head(head: SignedTreeHead, key: PrivateKey, **changes: Any) -> dict[str, Any]:
    """``head`` with ``changes``, signed by ``key`` (as JSON): a head a liar could make."""
    fields = head.tree_head.model_dump() | changes
    return SignedTreeHead.sign(TreeHead(**fields), key).model_dump(mode="json")


class FakeNode:
    """The API of docs/api.md over a real chain; ``rewrite[route]`` makes it lie.

    Routes (keys of ``rewrite``): ``genesis``, ``tree_head``, ``consistency``, ``submit``,
    ``tx``, ``proof``, ``nonce``, ``blocks``, ``block``, ``query``, ``event_block``.
    ``pending`` makes ``POST /tx`` answer 202 (after committing) and ``GET /tx/{id}`` answer
    404 for that many polls.
    """

    def __init__(self, city: City, chain: Chain) -> None:
        self.city = city
        self.chain = chain
        self.ledger = Ledger(city, chain)
        self.genesis_bytes = city.genesis.canonical_bytes()
        self.rewrite: dict[str, Rewrite] = {}
        self.pending = 0
        self.hidden_polls = 0
        self.refusal: httpx.Response | None = None
        """What ``POST /tx`` answers instead of committing, if set."""
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, **options: Any) -> CivicClient:
        options.setdefault("poll_interval", 0.0)
        return CivicClient(BASE_URL, self.city.genesis, transport=self.transport(), **options)

    def switch(self, chain: Chain) -> None:
        """Serve another chain from now on (a rolled-back or forked copy)."""
        self.chain = chain
        self.ledger = Ledger(self.city, chain)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    # -- routing --------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if not path.startswith(API + "/"):
            return problem(404, "not_found", path)
        query = request.url.params
        try:
            return self._route(request.method, path[len(API) + 1 :].split("/"), query, request)
        except TxRejected as e:
            return problem(_STATUS.get(e.reason, 400), e.reason, e.message)
        except CivicError as e:
            return problem(404, "not_found", e.message)

    def _route(
        self, method: str, parts: list[str], query: httpx.QueryParams, request: httpx.Request
    ) -> httpx.Response:
        chain = self.chain
        match method, parts:
            case "GET", ["genesis"]:
                return self._send("genesis", parse_json(self.genesis_bytes))
            case "GET", ["tree-head"]:
                head = chain.tree_head(_opt_int(query, "height"))
                return self._send("tree_head", head.model_dump(mode="json"))
            case "GET", ["consistency"]:
                bundle = chain.consistency_proof(int(query["old"]), _opt_int(query, "new"))
                return self._send("consistency", bundle.model_dump(mode="json"))
            case "POST", ["tx"]:
                return self._submit(request.content)
            case "GET", ["tx", tx_id]:
                stored = chain.tx(bytes.fromhex(tx_id))
                if stored is None or self.hidden_polls > 0:
                    self.hidden_polls = max(0, self.hidden_polls - 1)
                    return problem(404, "not_found", f"no committed transaction {tx_id}")
                leaf = log_leaf_bytes(stored.envelope, stored.receipt_bytes)
                return self._send("tx", parse_json(leaf))
            case "GET", ["tx", tx_id, "proof"]:
                proof = chain.inclusion_proof(bytes.fromhex(tx_id), _opt_int(query, "height"))
                return self._send("proof", proof.model_dump(mode="json"))
            case "GET", ["nonce", did]:
                last = chain.last_nonce(did)
                doc = {"signer": did, "last_nonce": last, "next_nonce": last + 1}
                return self._send("nonce", doc)
            case "GET", ["blocks"]:
                return self._send("blocks", self._blocks(query))
            case "GET", ["blocks", number]:
                return self._send("block", self._block(int(number), query))
            case "GET", ["query", contract, name]:
                args = parse_json(query.get("args", "{}").encode())
                height, result = chain.query_at_head(contract, name, args)
                return self._send("query", {"height": height, "result": result})
            case "GET", ["events"]:
                return self._events(request.headers.get("last-event-id"))
        return problem(404, "not_found", "/".join(parts))

    def _send(self, route: str, doc: Any) -> httpx.Response:
        rewrite = self.rewrite.get(route)
        if rewrite is not None:
            doc = rewrite(copy.deepcopy(doc))
        if isinstance(doc, httpx.Response):
            return doc
        return httpx.Response(
            200, content=json.dumps(doc).encode(), headers={"content-type": "application/json"}
        )

    def _submit(self, raw: bytes) -> httpx.Response:
        if self.refusal is not None:
            return self.refusal
        tx = decode_tx(raw)
        if tx.body.chain_id != self.chain.chain_id:
            raise TxRejected(RejectReason.WRONG_CHAIN, "wrong chain")
        tx.verify_signature()
        block = self.ledger.block(tx)
        if block.dropped:
            raise block.dropped[0].error
        (included,) = block.included
        if self.pending > 0:
            self.hidden_polls = self.pending
            self.pending = 0
            return httpx.Response(202, json={"tx_id": tx.tx_id_hex, "status": "pending"})
        doc = {"tx_id": tx.tx_id_hex, "receipt": parse_json(included.receipt_bytes)}
        return self._send("submit", doc)

    def _blocks(self, query: httpx.QueryParams) -> dict[str, Any]:
        limit = int(query.get("limit", "20"))
        before = _opt_int(query, "before")
        top = self.chain.height if before is None else min(before - 1, self.chain.height)
        headers = [self.chain.block(h) for h in range(top, max(top - limit, -1), -1)]
        blocks = [h.model_dump(mode="json") for h in headers if h is not None]
        lowest = blocks[-1]["header"]["height"] if blocks else 0
        return {"blocks": blocks, "next_before": lowest if lowest > 0 else None}

    def _block(self, height: int, query: httpx.QueryParams) -> dict[str, Any]:
        header = self.chain.block(height)
        if header is None:
            raise CivicError(f"no block at height {height}")
        offset, limit = int(query.get("offset", "0")), int(query.get("limit", "100"))
        txs = self.chain.block_txs(height)[offset : offset + limit]
        return {
            "header": header.model_dump(mode="json"),
            "tree_head": self.chain.tree_head(height).model_dump(mode="json"),
            "txs": [parse_json(log_leaf_bytes(s.envelope, s.receipt_bytes)) for s in txs],
            "offset": offset,
            "limit": limit,
        }

    def _events(self, last_event_id: str | None) -> httpx.Response:
        """The node's own event messages for the stored blocks, then the end of the stream."""
        first = 1 if last_event_id is None else int(last_event_id) + 1
        lines = [": connected", "retry: 1000", ""]
        for message in stored_messages(self.chain, first, self.chain.height):
            data = message.data
            rewrite = self.rewrite.get("event_block")
            if message.event == "block" and rewrite is not None:
                data = json.dumps(rewrite(json.loads(data)))
            lines += [f"event: {message.event}", f"id: {message.height}", f"data: {data}", ""]
        body = ("\r\n".join(lines) + "\r\n").encode()
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def _opt_int(query: httpx.QueryParams, name: str) -> int | None:
    value = query.get(name)
    return None if value is None else int(value)


# -- a real node over real HTTP ---------------------------------------------------------------


@dataclass
class Served:
    city: City
    node: EmbeddedNode
    url: str

    def client(self, **options: Any) -> CivicClient:
        return CivicClient(self.url, self.city.genesis, **options)


class RecordingTransport(httpx.HTTPTransport):
    """Real HTTP, remembering each request's method, path and answer status."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.log.append((request.method, request.url.path, response.status_code))
        return response


@contextmanager
def serve_city(
    city: City, settings: ApiSettings | None = None, **node_options: Any
) -> Iterator[Served]:
    with (
        city.open_node(**node_options) as node,
        BackgroundServer(create_app(node, settings)) as server,
    ):
        yield Served(city, node, server.url)
