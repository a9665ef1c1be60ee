"""The contract framework: declarations, policies, buffered writes, events, receipts and queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

from civicledger.contracts.base import (
    AGENCY_MEMBER,
    PUBLIC,
    Args,
    Contract,
    NoArgs,
    QueryContext,
    TxContext,
    has_role,
    query,
    transaction,
)
from civicledger.contracts.executor import nonce_key
from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.contracts.registry import ContractRegistry, default_registry
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import RejectReason, TxRejected
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import Chain
from conftest import City, Ledger, Tally, make_city


class Put(Args):
    key: str = Field(pattern=r"^[a-z0-9/]{1,20}$")
    value: int


class Key(Args):
    key: str


class Echo(Args):
    value: Any = None
    events: list[dict[str, Any]] = Field(default_factory=list)


class Probe(Contract):
    """Exercises every path through the executor."""

    name = "probe"

    @transaction(Put, policy=PUBLIC)
    def put(self, ctx: TxContext, args: Put) -> None:
        """Store a value."""
        ctx.put(args.key, args.value)
        ctx.emit("put", key=args.key)

    @transaction(Key, policy=PUBLIC)
    def delete(self, ctx: TxContext, args: Key) -> None:
        """Delete a value."""
        ctx.delete(args.key)

    @transaction(Put, policy=PUBLIC)
    def put_then_fail(self, ctx: TxContext, args: Put) -> None:
        ctx.put(args.key, args.value)
        ctx.emit("never seen")
        ctx.fail("changed_mind", f"refusing to keep {args.key}")

    @transaction(Put, policy=PUBLIC)
    def put_then_crash(self, ctx: TxContext, args: Put) -> None:
        ctx.put(args.key, args.value)
        raise ZeroDivisionError

    @transaction(Put, policy=PUBLIC)
    def put_then_return_float(self, ctx: TxContext, args: Put) -> float:
        ctx.put(args.key, args.value)
        return 0.5

    @transaction(Put, policy=PUBLIC)
    def put_then_emit_float(self, ctx: TxContext, args: Put) -> None:
        ctx.put(args.key, args.value)
        ctx.emit("measured", value=0.5)

    @transaction(Key, policy=PUBLIC)
    def scan(self, ctx: TxContext, args: Key) -> list[list[Any]]:
        """What ``ctx.scan`` sees under a prefix, mid-block."""
        return [[k, v] for k, v in ctx.scan(args.key)]

    @transaction(Echo, policy=PUBLIC)
    def echo(self, ctx: TxContext, args: Echo) -> Any:
        for event in args.events:
            ctx.emit("echo", **event)
        return args.value

    @transaction(NoArgs, policy=PUBLIC)
    def context(self, ctx: TxContext, args: NoArgs) -> dict[str, Any]:
        return {
            "height": ctx.height,
            "time_ms": ctx.time_ms,
            "signer": ctx.signer,
            "tx_id": ctx.tx_id,
            "tally": ctx.read("tally", "total"),
        }

    @transaction(NoArgs, policy=None)  # type: ignore[arg-type]  # what a forgotten policy looks like
    def unguarded(self, ctx: TxContext, args: NoArgs) -> None:
        ctx.put("unguarded", 1)

    @transaction(NoArgs, policy=has_role("auditor"))
    def audit(self, ctx: TxContext, args: NoArgs) -> None:
        ctx.put("audited", 1)

    @transaction(NoArgs, policy=AGENCY_MEMBER)
    def member(self, ctx: TxContext, args: NoArgs) -> None:
        ctx.put("member", 1)

    @query(Key)
    def get(self, ctx: QueryContext, args: Key) -> Any:
        """Read a value."""
        return ctx.get(args.key)

    def helper(self) -> int:
        """Not declared: not callable."""
        return 1


@pytest.fixture
def probe_city(tmp_path: Path) -> City:
    return make_city(
        tmp_path / "probe", ContractRegistry([Governance(), Notary(), Tally(), Probe()])
    )


@pytest.fixture
def probe(probe_city: City) -> Iterator[Ledger]:
    chain = probe_city.open_chain()
    yield Ledger(probe_city, chain)
    chain.close()


def test_declared_methods_are_collected_with_kind_args_policy_and_doc() -> None:
    methods = Probe.methods
    assert "helper" not in methods
    assert (methods["put"].kind, methods["put"].args_model, methods["put"].doc) == (
        "transaction",
        Put,
        "Store a value.",
    )
    assert methods["put"].policy is PUBLIC
    assert (methods["get"].kind, methods["get"].policy) == ("query", None)
    assert methods["unguarded"].policy is None
    assert methods["put_then_fail"].doc == ""


def test_registry_refuses_two_contracts_with_one_name() -> None:
    with pytest.raises(ValueError, match="two contracts named 'probe'"):
        ContractRegistry([Probe(), Probe()])
    assert default_registry().names() == ["governance", "notary"]


def test_writes_are_namespaced_by_contract(probe: Ledger, probe_city: City) -> None:
    assert probe.send(probe_city.outsider, "probe", "put", {"key": "a/b", "value": 7}).ok
    rows = probe_city.state_rows()
    assert rows["probe/a/b"] == b"7"
    assert probe.chain.query("probe", "get", {"key": "a/b"}) == 7


@pytest.mark.parametrize(
    ("method", "reason", "message"),
    [
        ("put_then_fail", "changed_mind", "refusing to keep x"),
        ("put_then_crash", "contract_bug", "ZeroDivisionError"),
        (
            "put_then_return_float",
            "contract_bug",
            "floats are not allowed in signed or stored data",
        ),
        ("put_then_emit_float", "contract_bug", "floats are not allowed in signed or stored data"),
    ],
)
def test_a_failing_transaction_leaves_only_its_nonce(
    probe: Ledger, probe_city: City, method: str, reason: str, message: str
) -> None:
    signer = probe_city.outsider
    before = probe_city.state_rows()
    receipt = probe.send(signer, "probe", method, {"key": "x", "value": 1})
    assert (receipt.status, receipt.reason, receipt.message) == ("failed", reason, message)
    assert (receipt.events, receipt.result) == ((), None)
    after = probe_city.state_rows()
    assert {k for k in after if before.get(k) != after[k]} == {nonce_key(signer.public.did)}
    assert set(before) <= set(after)


def test_a_failure_mid_block_is_invisible_to_its_neighbours(
    probe: Ledger, probe_city: City
) -> None:
    a, b = probe_city.outsider, probe_city.rogue
    block = probe.block(
        probe.tx(a, "probe", "put", {"key": "k/1", "value": 1}),
        probe.tx(b, "probe", "put_then_fail", {"key": "k/2", "value": 2}),
        probe.tx(a, "probe", "put", {"key": "k/3", "value": 3}),
        probe.tx(b, "probe", "scan", {"key": "k/"}),
    )
    assert [i.receipt.status for i in block.included] == ["ok", "failed", "ok", "ok"]
    assert block.included[3].receipt.result == [["k/1", 1], ["k/3", 3]]
    assert [i.receipt.index for i in block.included] == [0, 1, 2, 3]


def test_events_and_results_land_in_the_receipt(probe: Ledger, probe_city: City) -> None:
    receipt = probe.send(
        probe_city.outsider,
        "probe",
        "echo",
        {"value": {"n": [1, "two", None]}, "events": [{"a": 1}, {}]},
    )
    assert receipt.result == {"n": [1, "two", None]}
    assert [(e.contract, e.name, e.data) for e in receipt.events] == [
        ("probe", "echo", {"a": 1}),
        ("probe", "echo", {}),
    ]


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53 - 1), 2**53 - 1), st.text(max_size=10)),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=8,
)


# One chain serves every example: each adds a block, which is what the property is about.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=_JSON,
    events=st.lists(
        st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _JSON, max_size=2), max_size=2
    ),
)
def test_receipt_bytes_equal_the_model_encoding(
    probe: Ledger, probe_city: City, value: Any, events: list[dict[str, Any]]
) -> None:
    """The executor writes receipts from a dict, skipping pydantic; the bytes must be the same."""
    block = probe.block(
        probe.tx(probe_city.outsider, "probe", "echo", {"value": value, "events": events})
    )
    (included,) = block.included
    raw = included.receipt_bytes
    assert included.receipt.canonical_bytes() == raw
    parsed = Receipt.model_validate_json(raw)
    assert parsed.canonical_bytes() == raw
    assert parsed == included.receipt
    assert parsed.result == value
    assert [e.data for e in parsed.events] == events


def test_the_context_is_the_block_and_the_signer(probe: Ledger, probe_city: City) -> None:
    assert probe.send(probe_city.clerk, "tally", "add", {"amount": 5}).ok
    tx = probe.tx(probe_city.outsider, "probe", "context", {})
    block = probe.block(tx, time_ms=probe.chain.head.header.time_ms + 1234)
    header = block.header.header
    assert block.included[0].receipt.result == {
        "height": header.height,
        "time_ms": header.time_ms,
        "signer": probe_city.outsider.public.did,
        "tx_id": tx.tx_id.hex(),
        "tally": 5,
    }


def test_block_time_never_goes_backwards(probe: Ledger, probe_city: City) -> None:
    head = probe.chain.head.header.time_ms
    block = probe.block(
        probe.tx(probe_city.outsider, "probe", "context", {}), time_ms=head - 10_000
    )
    assert block.header.header.time_ms == head + 1
    assert block.included[0].receipt.result["time_ms"] == head + 1


def test_a_method_without_a_policy_is_callable_by_nobody(probe: Ledger, probe_city: City) -> None:
    for key in (probe_city.root, probe_city.clerk, probe_city.outsider):
        with pytest.raises(TxRejected, match="needs nobody") as caught:
            probe.send(key, "probe", "unguarded", {})
        assert caught.value.reject_reason is RejectReason.UNAUTHORIZED
    assert "probe/unguarded" not in probe_city.state_rows()


def test_role_and_membership_policies(probe: Ledger, probe_city: City) -> None:
    def refused(key: Any, method: str) -> bool:
        try:
            probe.send(key, "probe", method, {})
        except TxRejected as e:
            reason = e.reject_reason
        else:
            return False
        assert reason is RejectReason.UNAUTHORIZED
        return True

    assert refused(probe_city.clerk, "audit")
    assert refused(probe_city.root, "audit")  # root holds no agency role implicitly
    assert probe.send(
        probe_city.root,
        "governance",
        "grant_role",
        {"agency": "district-office", "role": "auditor"},
    ).ok
    assert not refused(probe_city.district, "audit")
    assert refused(probe_city.outsider, "member")
    assert not refused(probe_city.district, "member")
    assert probe.send(
        probe_city.root, "governance", "deactivate_agency", {"agency": "district-office"}
    ).ok
    assert refused(probe_city.district, "member")
    assert refused(probe_city.district, "audit")


@pytest.mark.parametrize(
    ("contract", "method", "args", "reason"),
    [
        ("probe", "put", {"key": "x", "value": 1}, RejectReason.UNKNOWN_METHOD),
        ("probe", "helper", {}, RejectReason.UNKNOWN_METHOD),
        ("probe", "get", {}, RejectReason.INVALID_ARGS),
        ("nope", "get", {"key": "x"}, RejectReason.UNKNOWN_CONTRACT),
    ],
)
def test_query_refusals(
    probe: Ledger, contract: str, method: str, args: dict[str, Any], reason: RejectReason
) -> None:
    with pytest.raises(TxRejected) as caught:
        probe.chain.query(contract, method, args)
    assert caught.value.reject_reason is reason


def test_queries_see_committed_state_only(probe: Ledger, probe_city: City) -> None:
    assert probe.chain.query("probe", "get", {"key": "q"}) is None
    assert probe.send(probe_city.outsider, "probe", "put", {"key": "q", "value": 1}).ok
    assert probe.chain.query("probe", "get", {"key": "q"}) == 1
    assert probe.send(probe_city.outsider, "probe", "delete", {"key": "q"}).ok
    assert probe.chain.query("probe", "get", {"key": "q"}) is None
    assert "probe/q" not in probe_city.state_rows()


def test_prepare_needs_no_state_and_validates_strictly(probe_city: City) -> None:
    chain = Chain(probe_city.data_dir, probe_city.registry)
    try:
        tx = probe_city.tx(probe_city.outsider, "probe", "put", {"key": "x", "value": "1"}, nonce=9)
        with pytest.raises(TxRejected, match=r"args\.value") as caught:
            chain.prepare(tx)
        assert caught.value.reject_reason is RejectReason.INVALID_ARGS
        good = probe_city.tx(probe_city.outsider, "probe", "put", {"key": "x", "value": 1}, nonce=9)
        assert chain.prepare(good).args == Put(key="x", value=1)
    finally:
        chain.close()


def test_receipt_encoding_is_canonical() -> None:
    receipt = Receipt(
        tx_id="ab" * 32, height=1, index=0, leaf_index=0, status="ok", result={"b": 1, "a": [True]}
    )
    assert receipt.canonical_bytes() == canonical_json(receipt.model_dump(mode="json"))
    assert receipt.canonical_bytes().startswith(b'{"events":[],"height":1')
