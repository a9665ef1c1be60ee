"""The client's own finality check: attestations it counts, and every one it must not.

``verify_attestations`` is the pure check ``CivicClient.finality`` runs on a node's
``GET /blocks/{h}/attestations`` answer; here it gets hand-built answers for a city with three
producers (so the default quorum is 2), signed with real deterministic keys. The node's
``final``, ``agrees`` and ``quorum`` fields are set to lie in every case: the verdict must come
from the signatures alone. The client methods are then run against ``FakeNode`` (a real chain,
one producer) with an attestations route added, and against a real embedded node over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from client_helpers import BASE_URL, FakeNode, serve_city

from civicledger.client import CivicClient, Finality, verify_attestations
from civicledger.client._finality import default_quorum
from civicledger.crypto.encoding import b64url, sha256
from civicledger.crypto.keys import PrivateKey, signing_message
from civicledger.errors import NodeError
from civicledger.ledger.block import BlockHeader, SignedBlockHeader
from civicledger.node.chain import Chain
from civicledger.node.cluster.attest import ATTEST_PURPOSE, Attestation, SignedAttestation
from conftest import CHAIN_ID, City, Ledger, city_key

NODES = ("node-a", "node-b", "node-c")
KEYS = {label: city_key(label) for label in NODES}
PRODUCERS = tuple(KEYS[n].public.did for n in NODES)
ROGUE = city_key("rogue")


def _hex(label: str) -> str:
    return sha256(label.encode()).hex()


HEADER = BlockHeader(
    chain_id=CHAIN_ID,
    height=7,
    prev_hash=_hex("prev"),
    time_ms=1_700_000_000_700,
    tx_count=1,
    tx_root=_hex("txs"),
    receipts_root=_hex("receipts"),
    state_hash=_hex("state"),
    log_size=9,
    log_root=_hex("log"),
    producer=PRODUCERS[0],
)
HEADER_HASH = HEADER.hash().hex()
OTHER_HEADER = HEADER.model_copy(update={"state_hash": _hex("other state")})


def attestation(
    key: PrivateKey,
    header: BlockHeader = HEADER,
    *,
    chain_id: str = CHAIN_ID,
    signer: PrivateKey | None = None,
    **listed: Any,
) -> dict[str, Any]:
    """``key``'s attestation of ``header`` for ``chain_id`` as the route lists it, signed by
    ``signer`` (default ``key``); ``listed`` overrides fields of the listing after signing."""
    att = Attestation(
        chain_id=chain_id,
        height=header.height,
        header_hash=header.hash().hex(),
        state_hash=header.state_hash,
        log_root=header.log_root,
        node=key.public.did,
    )
    message = signing_message(chain_id, ATTEST_PURPOSE, att.canonical_bytes())
    item = {
        "node": att.node,
        "header_hash": att.header_hash,
        "state_hash": att.state_hash,
        "log_root": att.log_root,
        "signature": b64url((signer or key).sign(message)),
        "agrees": True,
    }
    return item | listed


def answer(*items: Any, final: bool = True, quorum: int = 1) -> dict[str, Any]:
    """The route's answer around ``items``, claiming ``final`` and ``quorum`` (lies by default)."""
    return {
        "height": HEADER.height,
        "header_hash": HEADER_HASH,
        "quorum": quorum,
        "final": final,
        "attestations": list(items),
    }


def check(*items: Any, quorum: int = 2) -> Finality:
    return verify_attestations(HEADER, answer(*items), PRODUCERS, CHAIN_ID, quorum)


A, B, C = (KEYS[n] for n in NODES)


def test_default_quorum_is_a_majority_of_the_producers() -> None:
    assert [default_quorum(["p"] * n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def test_a_quorum_of_valid_attestations_is_final() -> None:
    result = check(attestation(A), attestation(B))
    assert result == Finality(7, HEADER_HASH, 2, (A.public.did, B.public.did), True)
    everyone = check(attestation(A), attestation(B), attestation(C), quorum=3)
    assert (everyone.final, set(everyone.attesters)) == (True, set(PRODUCERS))


def test_what_cluster_nodes_sign_is_accepted() -> None:
    """Signed by the nodes' own code (``SignedAttestation.of``), listed as the route lists it."""
    items = []
    for key in (A, C):
        signed = SignedAttestation.of(SignedBlockHeader.sign(HEADER, key), key)
        items.append(
            {
                "node": signed.attestation.node,
                "header_hash": signed.attestation.header_hash,
                "state_hash": signed.attestation.state_hash,
                "log_root": signed.attestation.log_root,
                "signature": signed.signature,
                "agrees": True,
            }
        )
    assert check(*items).attesters == (A.public.did, C.public.did)
    assert check(*items).final


BAD: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "forged signature (another key signed for B)": (
        lambda: attestation(B, signer=ROGUE),
        "bad_signature",
    ),
    "signature of another producer (C signed, listed as B)": (
        lambda: attestation(B, signer=C),
        "bad_signature",
    ),
    "signature not base64url": (lambda: attestation(B, signature="!!!"), "bad_signature"),
    "by a key that is not a producer": (lambda: attestation(ROGUE), "not_a_producer"),
    "of another header (listed as such)": (
        lambda: attestation(B, OTHER_HEADER),
        "header_mismatch",
    ),
    "of another header, listed with ours": (
        lambda: attestation(B, OTHER_HEADER, header_hash=HEADER_HASH, state_hash=HEADER.state_hash),
        "bad_signature",
    ),
    "wrong state hash": (lambda: attestation(B, state_hash=_hex("x")), "state_mismatch"),
    "wrong log root": (lambda: attestation(B, log_root=_hex("x")), "log_root_mismatch"),
    "signed for another chain": (lambda: attestation(B, chain_id="otherville"), "bad_signature"),
    "signed for another height": (
        lambda: attestation(B, HEADER.model_copy(update={"height": 8}), header_hash=HEADER_HASH),
        "bad_signature",
    ),
    "no signature": (
        lambda: {k: v for k, v in attestation(B).items() if k != "signature"},
        "malformed",
    ),
    "node not a string": (lambda: attestation(B, node=7), "malformed"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_attestation_is_not_counted_and_breaks_the_quorum(case: str) -> None:
    make, reason = BAD[case]
    bad = make()
    result = check(attestation(A), bad)
    assert result.attesters == (A.public.did,)
    assert result.final is False
    claimed = bad["node"] if isinstance(bad.get("node"), str) else ""
    assert result.ignored == ((claimed, reason),)
    # The same answer with a third, valid attestation is final again: only the bad one is dropped.
    assert check(attestation(A), bad, attestation(C)).final


def test_a_node_is_counted_once() -> None:
    result = check(attestation(A), attestation(A), attestation(A))
    assert (result.attesters, result.final) == ((A.public.did,), False)
    assert result.ignored == ((A.public.did, "duplicate"), (A.public.did, "duplicate"))


def test_the_servers_final_flag_quorum_and_agrees_are_not_believed() -> None:
    lie = answer(
        attestation(A),
        attestation(B, signer=ROGUE, agrees=True),
        attestation(ROGUE),
        final=True,
        quorum=1,
    )
    result = verify_attestations(HEADER, lie, PRODUCERS, CHAIN_ID, 2)
    assert (result.final, result.quorum, result.attesters) == (False, 2, (A.public.did,))
    empty = verify_attestations(HEADER, answer(final=True, quorum=0), PRODUCERS, CHAIN_ID, 2)
    assert (empty.final, empty.attesters) == (False, ())
    # ``agrees: false`` on a valid attestation changes nothing either.
    honest = check(attestation(A, agrees=False), attestation(B, agrees=False))
    assert honest.final


def test_junk_entries_are_ignored_and_a_wrong_shape_is_a_bad_response() -> None:
    result = check("x", None, [1], attestation(A), attestation(B))
    assert result.final
    assert [reason for _, reason in result.ignored] == ["malformed"] * 3
    for doc in ({"attestations": {}}, [attestation(A)], {"final": True}):
        with pytest.raises(NodeError) as caught:
            verify_attestations(HEADER, doc, PRODUCERS, CHAIN_ID, 2)
        assert caught.value.reason == "bad_response"


def test_the_quorum_can_be_set_within_bounds() -> None:
    assert check(attestation(B), quorum=1).final
    assert not check(attestation(A), attestation(B), quorum=3).final
    for bad in (0, 4, -1):
        with pytest.raises(ValueError, match="quorum"):
            check(attestation(A), quorum=bad)


# -- the client methods --------------------------------------------------------------------------


class Attesting:
    """``FakeNode`` plus ``GET /blocks/{h}/attestations``, answered by ``route(height)``."""

    def __init__(self, fake: FakeNode, route: Callable[[int], httpx.Response]) -> None:
        self.fake = fake
        self.route = route
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/")
        if parts[-1] == "attestations":
            self.calls += 1
            return self.route(int(parts[-2]))
        return self.fake.handle(request)

    def client(self, **options: Any) -> CivicClient:
        options.setdefault("poll_interval", 0.0)
        transport = httpx.MockTransport(self.handle)
        return CivicClient(BASE_URL, self.fake.city.genesis, transport=transport, **options)


def _listed(chain: Chain, height: int, key: PrivateKey) -> dict[str, Any]:
    signed_header = chain.block(height)
    assert signed_header is not None
    signed = SignedAttestation.of(signed_header, key)
    return {
        "node": signed.attestation.node,
        "header_hash": signed.attestation.header_hash,
        "state_hash": signed.attestation.state_hash,
        "log_root": signed.attestation.log_root,
        "signature": signed.signature,
        "agrees": True,
    }


def _json(doc: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=doc)


@pytest.fixture
def one_block(city: City, chain: Chain) -> FakeNode:
    ledger = Ledger(city, chain)
    block = ledger.block(ledger.tx(city.outsider, "tally", "add", {"amount": 3}))
    assert not block.dropped
    return FakeNode(city, chain)


def test_finality_counts_the_producers_attestation_of_the_verified_header(
    city: City, chain: Chain, one_block: FakeNode
) -> None:
    node = Attesting(
        one_block, lambda h: _json({"attestations": [_listed(chain, h, city.producer)]})
    )
    with node.client() as client:
        result = client.finality(1)
        header = chain.block(1)
        assert header is not None
        assert result == Finality(
            1, header.header.hash().hex(), 1, (city.producer.public.did,), True
        )
        assert client.wait_final(1, timeout=1.0) == result


def test_finality_ignores_a_node_that_claims_final_without_attestations(
    city: City, chain: Chain, one_block: FakeNode
) -> None:
    rogue = _listed(chain, 1, city.rogue)
    node = Attesting(
        one_block,
        lambda h: _json({"height": h, "quorum": 1, "final": True, "attestations": [rogue]}),
    )
    with node.client() as client:
        result = client.finality(1)
        assert (result.final, result.attesters) == (False, ())
        assert result.ignored == ((city.rogue.public.did, "not_a_producer"),)
        with pytest.raises(NodeError) as caught:
            client.wait_final(1, timeout=0.05)
        assert caught.value.reason == "not_final"
        assert node.calls >= 2


def test_finality_checks_against_the_block_the_client_verified(
    city: City, chain: Chain, one_block: FakeNode
) -> None:
    """A genuine producer attestation of block 0, served for block 1, does not count."""
    node = Attesting(
        one_block, lambda h: _json({"attestations": [_listed(chain, 0, city.producer)]})
    )
    with node.client() as client:
        result = client.finality(1)
        assert not result.final
        assert result.ignored == ((city.producer.public.did, "header_mismatch"),)


def test_wait_final_polls_until_the_attestation_appears(
    city: City, chain: Chain, one_block: FakeNode
) -> None:
    seen = {"polls": 0}

    def route(height: int) -> httpx.Response:
        seen["polls"] += 1
        items = [_listed(chain, height, city.producer)] if seen["polls"] >= 3 else []
        return _json({"final": True, "attestations": items})

    node = Attesting(one_block, route)
    with node.client() as client:
        result = client.wait_final(1, timeout=5.0)
        assert result.final
        assert seen["polls"] == 3
        blocks = [p for p in one_block.paths() if p == "/api/v1/blocks/1"]
        assert len(blocks) == 1, "the block is fetched and verified once"


def test_finality_refuses_a_bad_quorum_before_asking(one_block: FakeNode) -> None:
    node = Attesting(one_block, lambda h: _json({"attestations": []}))
    with node.client() as client:
        for bad in (0, 2):
            with pytest.raises(ValueError, match="quorum"):
                client.finality(1, quorum=bad)
    assert node.calls == 0
    assert one_block.requests == []


def test_an_embedded_node_is_not_a_cluster(city: City) -> None:
    with serve_city(city) as served, served.client() as client:
        with pytest.raises(NodeError) as caught:
            client.finality(0)
        assert caught.value.reason == "not_a_cluster"
        with pytest.raises(NodeError) as waited:
            client.wait_final(0, timeout=1.0)
        assert waited.value.reason == "not_a_cluster"
