"""``CivicClient``: talks to a node's HTTP API and trusts it for nothing it can check.

Invariants:

- Trust comes from the genesis the caller passes in (the city's published ``genesis.json``),
  never from the node: tree heads must be signed by its producers for its chain id, and a node
  serving any other genesis (compared in canonical form) is refused before anything else.
- Every tree head the client sees (in proofs, blocks, events or ``tree_head()``) goes through
  one ``TrustedLog`` under one lock, so the view only moves forward by consistency proofs.
- A receipt returned as verified was proven by an inclusion proof for exactly the transaction
  id asked for, under a tree head in that view.
- Reads the ledger cannot prove (contract queries, nonces) are returned as such and named so.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from civicledger.client._blocks import (
    verify_block_head,
    verify_block_txs,
    verify_header,
    verify_header_run,
)
from civicledger.client._finality import (
    Finality,
    check_quorum,
    default_quorum,
    verify_attestations,
)
from civicledger.client._http import DEFAULT_MAX_BODY_BYTES, Answer, Http, bad_response
from civicledger.client._results import BlockPage, ProvenTx, UnprovenResult, VerifiedBlock
from civicledger.client._sse import ServerEvent, SseDecoder
from civicledger.client._state import load_head, save_head
from civicledger.client._trust import TrustedLog
from civicledger.crypto.encoding import canonical_json
from civicledger.crypto.keys import PublicKey
from civicledger.errors import (
    CivicError,
    EncodingError,
    GenesisError,
    NodeError,
    ProofError,
    RejectReason,
    TxRejected,
)
from civicledger.ledger.block import BlockHeader, SignedBlockHeader, SignedTreeHead
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.proofs import (
    ConsistencyBundle,
    InclusionBundle,
    load_bundle,
    verify_inclusion_bundle,
)
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import MAX_TX_BYTES, NAME_PATTERN, SignedTx, tx_from_json

API = "/api/v1"
DEFAULT_TIMEOUT_S = 30.0
"""Per request; above the node's default wait for a block (10 s) so a POST is not cut short."""
DEFAULT_COMMIT_TIMEOUT_S = 60.0
"""How long ``submit`` polls for a transaction the node answered as pending."""
BLOCK_PAGE_LIMIT = 100

_TX_ID_RE = re.compile(r"[0-9a-f]{64}")
_NAME_RE = re.compile(NAME_PATTERN)

_M = TypeVar("_M", bound=BaseModel)


def _model(model: type[_M], value: Any, what: str) -> _M:
    """Validate a part of an answer (through canonical JSON, as strict models expect)."""
    try:
        return model.model_validate_json(canonical_json(value))
    except (ValidationError, CivicError) as e:
        raise bad_response(f"{what} is not a valid {model.__name__}: {e}") from e


def _int(doc: dict[str, Any], key: str, what: str) -> int:
    value = doc.get(key)
    if type(value) is not int or value < 0:
        raise bad_response(f"{what}: {key!r} must be a non-negative integer")
    return value


def check_tx_id(tx_id: str) -> str:
    """A transaction id is 64 lowercase hex digits (it goes into URL paths)."""
    if not isinstance(tx_id, str) or not _TX_ID_RE.fullmatch(tx_id):
        raise EncodingError(f"a transaction id is 64 lowercase hex digits, not {str(tx_id)[:80]!r}")
    return tx_id


class CivicClient:
    """A client of one node, anchored in the city's genesis. Thread-safe; use as a context manager.

    ``head_file``: where the newest verified tree head is kept between runs (read now, written
    whenever it moves). Without it, the first tree head seen is trusted on its signature alone.
    """

    def __init__(
        self,
        base_url: str,
        genesis: Genesis,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
        head_file: Path | None = None,
        commit_timeout: float = DEFAULT_COMMIT_TIMEOUT_S,
        poll_interval: float = 0.2,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.genesis = genesis
        self.commit_timeout = commit_timeout
        self.poll_interval = poll_interval
        self._producers = frozenset(genesis.producers)
        self._head_file = head_file
        stored = None if head_file is None else load_head(head_file, genesis)
        self._log = TrustedLog(genesis, stored)
        self._lock = threading.Lock()
        self._genesis_checked = False
        self._http = Http(
            base_url, timeout=timeout, transport=transport, max_body_bytes=max_body_bytes
        )

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def trusted_head(self) -> SignedTreeHead | None:
        """The newest tree head verified so far (None before the first)."""
        return self._log.head

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CivicClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the node's identity -------------------------------------------------------------------

    def check_genesis(self) -> None:
        """Raise GenesisError unless the node serves exactly our genesis (done before any call)."""
        if self._genesis_checked:
            return
        answer = self._http.call("GET", f"{API}/genesis")
        try:
            served = Genesis.from_json_bytes(answer.body)
        except GenesisError as e:
            raise GenesisError(f"the node's genesis is not valid: {e}") from e
        if served.chain_id != self.chain_id:
            raise GenesisError(f"the node runs chain {served.chain_id!r}, not {self.chain_id!r}")
        if served.canonical_bytes() != self.genesis.canonical_bytes():
            raise GenesisError(
                f"the node's genesis for {self.chain_id!r} differs from the published one"
            )
        self._genesis_checked = True

    def _call(self, method: str, path: str, **options: Any) -> Answer:
        self.check_genesis()
        return self._http.call(method, f"{API}{path}", **options)

    # -- tree heads and the view of the log -----------------------------------------------------

    def tree_head(self, height: int | None = None) -> SignedTreeHead:
        """The node's newest tree head (or the one at ``height``), verified against our view."""
        params = {} if height is None else {"height": _height(height)}
        answer = self._call("GET", "/tree-head", params=params)
        head = _model(SignedTreeHead, answer.json(), "tree head")
        if height is not None and head.tree_head.height != height:
            raise ProofError(f"asked for the tree head at {height}, got {head.tree_head.height}")
        self._observe(head, latest=height is None)
        return head

    def _observe(self, head: SignedTreeHead, *, latest: bool) -> None:
        """Accept ``head`` into the view, fetching a consistency proof if one is needed."""
        with self._lock:
            need = self._log.required_proof(head, latest=latest)
            proof = None if need is None else self._consistency(*need)
            if self._log.accept(head, proof, latest=latest) and self._head_file is not None:
                save_head(self._head_file, self.genesis, head)

    def _consistency(self, old: SignedTreeHead, new: SignedTreeHead) -> ConsistencyBundle:
        answer = self._call(
            "GET",
            "/consistency",
            params={"old": old.tree_head.height, "new": new.tree_head.height},
        )
        bundle = load_bundle(answer.body)
        if not isinstance(bundle, ConsistencyBundle):
            raise ProofError("the node sent an inclusion proof where a consistency proof was due")
        return bundle

    # -- proofs --------------------------------------------------------------------------------

    def prove(self, tx_id: str, *, height: int | None = None) -> ProvenTx:
        """Fetch and verify the inclusion proof of ``tx_id`` (at ``height``, default latest).

        Raises ProofError unless the proof holds under a tree head signed by a genesis
        producer, is for exactly ``tx_id``, and that tree head is consistent with our view.
        """
        check_tx_id(tx_id)
        params = {} if height is None else {"height": _height(height)}
        answer = self._call("GET", f"/tx/{tx_id}/proof", params=params)
        bundle = load_bundle(answer.body)
        if not isinstance(bundle, InclusionBundle):
            raise ProofError("the node sent a consistency proof where an inclusion proof was due")
        tx, receipt = verify_inclusion_bundle(bundle, self._producers)
        head = bundle.tree_head.tree_head
        if tx.tx_id_hex != tx_id:
            raise ProofError(f"asked for a proof of {tx_id}, got one of {tx.tx_id_hex}")
        if height is not None and head.height != height:
            raise ProofError(f"asked for a proof at height {height}, got one at {head.height}")
        self._observe(bundle.tree_head, latest=height is None)
        return ProvenTx(tx, receipt, bundle)

    def verified_receipt(self, tx_id: str) -> Receipt:
        """The receipt of ``tx_id``, proven to be in the log (see ``prove``)."""
        return self.prove(tx_id).receipt

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, tx: SignedTx, *, verify: bool = True) -> Receipt:
        """Send a signed transaction and return its receipt once its block is durable.

        Raises TxRejected with the node's reason if it was refused (nothing was written), and
        refuses locally, without sending, a transaction for another chain or over the size
        limit. If the node answers "pending", polls until the receipt appears or
        ``commit_timeout`` passes (NodeError ``timeout``: it may still be committed later).
        With ``verify`` (the default) the receipt is proven in the log and must equal the one
        the node answered with, else ProofError; a *failed* receipt is returned, not raised.
        """
        if tx.body.chain_id != self.chain_id:
            raise TxRejected(
                RejectReason.WRONG_CHAIN,
                f"transaction is for chain {tx.body.chain_id!r}, this node runs {self.chain_id!r}",
            )
        envelope = tx.envelope_bytes()
        if len(envelope) > MAX_TX_BYTES:
            raise TxRejected(
                RejectReason.OVERSIZE,
                f"transaction is {len(envelope)} bytes; the limit is {MAX_TX_BYTES}",
            )
        tx_id = tx.tx_id_hex
        answer = self._call("POST", "/tx", params={"wait": "true"}, content=envelope, ok=(200, 202))
        doc = answer.json_object()
        if doc.get("tx_id") != tx_id:
            raise bad_response(f"the node answered for transaction {str(doc.get('tx_id'))[:64]!r}")
        if answer.status == 202:
            receipt = self._wait_for(tx)
        else:
            receipt = _model(Receipt, doc.get("receipt"), "receipt")
        if receipt.tx_id != tx_id:
            raise bad_response(f"the node's receipt is for {receipt.tx_id}, not {tx_id}")
        if verify:
            proven = self.prove(tx_id)
            if proven.receipt.canonical_bytes() != receipt.canonical_bytes():
                raise ProofError(
                    f"the node's receipt for {tx_id} differs from the receipt in the log"
                )
            return proven.receipt
        return receipt

    def _wait_for(self, tx: SignedTx) -> Receipt:
        """Poll ``GET /tx/{id}`` until the transaction is committed."""
        tx_id = tx.tx_id_hex
        deadline = time.monotonic() + self.commit_timeout
        while True:
            try:
                answer = self._call("GET", f"/tx/{tx_id}")
            except NodeError as e:
                if e.reason != "not_found":
                    raise
            else:
                doc = answer.json_object()
                try:
                    committed = tx_from_json(doc.get("tx"))
                except CivicError as e:
                    raise bad_response(f"transaction {tx_id}: {e}") from e
                if committed.tx_id != tx.tx_id:
                    raise bad_response(f"asked for {tx_id}, got {committed.tx_id_hex}")
                return _model(Receipt, doc.get("receipt"), "receipt")
            if time.monotonic() >= deadline:
                raise NodeError(
                    f"no receipt for {tx_id} within {self.commit_timeout:g} s; "
                    "it may still be committed",
                    reason="timeout",
                )
            time.sleep(self.poll_interval)

    def next_nonce(self, did: str) -> int:
        """The next nonce of ``did`` according to the node (unproven; see docs/client.md)."""
        PublicKey.from_did(did)
        doc = self._call("GET", f"/nonce/{did}").json_object()
        last = _int(doc, "last_nonce", "nonce")
        following = _int(doc, "next_nonce", "nonce")
        if doc.get("signer") != did or following != last + 1:
            raise bad_response(f"the nonce answer for {did} is inconsistent")
        return following

    # -- blocks --------------------------------------------------------------------------------

    def block(self, height: int) -> VerifiedBlock:
        """Block ``height`` with all its transactions, fully checked (see ``VerifiedBlock``)."""
        _height(height)
        first: tuple[SignedBlockHeader, SignedTreeHead] | None = None
        items: list[Any] = []
        while True:
            doc = self._call(
                "GET",
                f"/blocks/{height}",
                params={"offset": len(items), "limit": BLOCK_PAGE_LIMIT},
            ).json_object()
            signed = _model(SignedBlockHeader, doc.get("header"), "block header")
            head = _model(SignedTreeHead, doc.get("tree_head"), "tree head")
            page = doc.get("txs")
            if not isinstance(page, list):
                raise bad_response(f"block {height}: 'txs' must be a list")
            if first is None:
                first = (signed, head)
                header = verify_header(signed, self.genesis)
                if header.height != height:
                    raise ProofError(f"asked for block {height}, got block {header.height}")
            elif (signed, head) != first:
                raise ProofError(f"block {height} changed between two pages")
            items.extend(page)
            if len(items) >= first[0].header.tx_count or not page:
                break
        signed, head = first
        verify_block_head(signed.header, head)
        txs = verify_block_txs(signed.header, items)
        self._observe(head, latest=False)
        return VerifiedBlock(signed, head, txs)

    def blocks(self, *, limit: int = 20, before: int | None = None) -> BlockPage:
        """Up to ``limit`` signed block headers below ``before`` (default: from the newest)."""
        params: dict[str, str | int] = {"limit": limit}
        if before is not None:
            params["before"] = _height(before)
        doc = self._call("GET", "/blocks", params=params).json_object()
        raw = doc.get("blocks")
        if not isinstance(raw, list) or len(raw) > limit:
            raise bad_response(f"'blocks' must be a list of at most {limit} headers")
        headers = tuple(_model(SignedBlockHeader, h, "block header") for h in raw)
        verify_header_run(headers, self.genesis)
        if before is not None and any(h.header.height >= before for h in headers):
            raise bad_response(f"asked for blocks below {before}")
        next_before = doc.get("next_before")
        if next_before is not None and (type(next_before) is not int or next_before < 0):
            raise bad_response("'next_before' must be a height or null")
        with self._lock:
            for signed in headers:
                self._log.check_known(signed.header.tree_head())
        return BlockPage(headers, next_before)

    # -- finality on a cluster -----------------------------------------------------------------

    def finality(self, height: int, *, quorum: int | None = None) -> Finality:
        """Whether block ``height`` is final, checked here: ``quorum`` (default: a majority of
        the genesis producers) distinct producers signed attestations of exactly the header
        ``block(height)`` verified. The node's own ``final`` flag is never read.

        Raises NodeError ``not_a_cluster`` if the node runs alone (embedded), and whatever
        ``block(height)`` raises (``not_found`` for a height the node does not have).
        """
        _height(height)
        wanted = self._quorum(quorum)
        header = self.block(height).header
        return self._finality(header, wanted)

    def wait_final(
        self, height: int, *, timeout: float = 10.0, quorum: int | None = None
    ) -> Finality:
        """Poll ``finality(height)`` every ``poll_interval`` seconds until it is final.

        The block is fetched and verified once (polled while the node answers ``not_found``),
        then only its attestations. Raises NodeError ``not_final`` if it is not final within
        ``timeout`` seconds (the message says how many producers had attested).
        """
        _height(height)
        wanted = self._quorum(quorum)
        deadline = time.monotonic() + timeout
        header: BlockHeader | None = None
        last: Finality | None = None
        while True:
            try:
                if header is None:
                    header = self.block(height).header
                last = self._finality(header, wanted)
            except NodeError as e:
                if e.reason != "not_found":
                    raise
            if last is not None and last.final:
                return last
            if time.monotonic() >= deadline:
                seen = "no block yet" if last is None else f"{len(last.attesters)} attested"
                raise NodeError(
                    f"block {height} is not final within {timeout:g} s ({seen}; {wanted} needed)",
                    reason="not_final",
                )
            time.sleep(self.poll_interval)

    def _quorum(self, quorum: int | None) -> int:
        if quorum is None:
            return default_quorum(self._producers)
        return check_quorum(quorum, self._producers)

    def _finality(self, header: BlockHeader, quorum: int) -> Finality:
        answer = self._call("GET", f"/blocks/{header.height}/attestations")
        return verify_attestations(header, answer.json(), self._producers, self.chain_id, quorum)

    # -- unproven reads ------------------------------------------------------------------------

    def query(
        self, contract: str, method: str, args: dict[str, Any] | None = None
    ) -> UnprovenResult:
        """A read-only contract query at the node's latest block. NOT verified (no state proofs)."""
        for name in (contract, method):
            if not _NAME_RE.fullmatch(name):
                raise EncodingError(f"{name!r} is not a contract or method name")
        params = {"args": canonical_json(args or {}).decode("utf-8")}
        doc = self._call("GET", f"/query/{contract}/{method}", params=params).json_object()
        if "result" not in doc:
            raise bad_response("a query answer must have a 'result'")
        return UnprovenResult(_int(doc, "height", "query"), doc["result"])

    def events(
        self,
        contract: str | None = None,
        *,
        last_event_id: str | None = None,
        verify_heads: bool = True,
    ) -> Generator[ServerEvent, None, None]:
        """The node's server-sent events, until the stream ends or the generator is closed.

        With ``verify_heads`` (the default) each ``block`` event's tree head is verified and
        taken into the view before the event is yielded (a bad one raises ProofError); the
        rest of the event data is the node's word. To resume after a disconnection, pass the
        last event's ``id`` as ``last_event_id``.
        """
        if contract is not None and not _NAME_RE.fullmatch(contract):
            raise EncodingError(f"{contract!r} is not a contract name")
        self.check_genesis()
        params = {} if contract is None else {"contract": contract}
        headers = {"accept": "text/event-stream", "cache-control": "no-cache"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        decoder = SseDecoder()
        for chunk in self._http.stream(f"{API}/events", params=params, headers=headers):
            for event in decoder.feed(chunk):
                if verify_heads and event.event == "block":
                    self._check_block_event(event)
                yield event

    def _check_block_event(self, event: ServerEvent) -> None:
        data = event.data
        if not isinstance(data, dict):
            raise bad_response("a block event's data must be an object")
        head = _model(SignedTreeHead, data.get("tree_head"), "block event tree head")
        if data.get("height") != head.tree_head.height:
            raise ProofError("a block event's tree head is not for its block")
        self._observe(head, latest=False)


def _height(value: int) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"a height is a non-negative integer, not {value!r}")
    return value
