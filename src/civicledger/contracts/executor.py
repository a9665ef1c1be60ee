"""Executing a block's transactions deterministically against the state.

For each transaction, in order: nonce, expiry and policy checks (a transaction failing these is
*dropped*: not included, nothing written, its submitter told why); then the contract method runs
with writes buffered. A ``ContractError`` gives a *failed* receipt and discards the writes; the
nonce is consumed either way, so an included transaction can never run twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from civicledger.contracts.authority import Authority
from civicledger.contracts.base import Args, Contract, MethodSpec, QueryContext, TxContext
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.encoding import canonical_json
from civicledger.errors import CivicError, ContractError, RejectReason, TxRejected
from civicledger.ledger.receipt import Event, Receipt
from civicledger.ledger.state import BlockState, StateStore, TxState
from civicledger.ledger.tx import SignedTx

log = logging.getLogger(__name__)


def nonce_key(did: str) -> str:
    """Where the last used nonce of a signer is kept (a system key, outside every contract)."""
    return f"_sys/nonce/{did}"


@dataclass(frozen=True, slots=True)
class PreparedTx:
    """A transaction whose contract, method and arguments have been resolved and validated."""

    tx: SignedTx
    contract: Contract
    spec: MethodSpec
    args: Args


@dataclass(frozen=True, slots=True)
class Included:
    prepared: PreparedTx
    receipt: Receipt
    receipt_bytes: bytes


@dataclass(frozen=True, slots=True)
class Dropped:
    prepared: PreparedTx
    error: TxRejected


@dataclass(frozen=True)
class BlockExecution:
    included: list[Included]
    dropped: list[Dropped]
    state: BlockState


def validate_args(model: type[Args], args: dict[str, Any]) -> Args:
    """Validate JSON arguments strictly (JSON mode: arrays may fill tuples, nothing is coerced)."""
    try:
        return model.model_validate_json(json.dumps(args))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "args"
        raise TxRejected(RejectReason.INVALID_ARGS, f"args.{where}: {first['msg']}") from e


def _receipt(
    common: dict[str, Any],
    status: str,
    reason: str | None,
    message: str | None,
    events: list[Event],
    result: Any,
) -> tuple[Receipt, bytes]:
    """Receipt and its canonical bytes, built from a plain dict (the hot path skips pydantic).

    The dict has exactly ``Receipt``'s fields, so the bytes equal ``receipt.canonical_bytes()``;
    ``tests/contracts/test_framework.py`` checks that. Encoding the result or an event may raise
    EncodingError (a contract returned a float, say), which the caller turns into a failed receipt.
    """
    doc = {
        **common,
        "status": status,
        "reason": reason,
        "message": message,
        "events": [{"contract": e.contract, "name": e.name, "data": e.data} for e in events],
        "result": result,
    }
    raw = canonical_json(doc)
    receipt = Receipt.model_construct(**{**doc, "events": tuple(events)})
    return receipt, raw


class Executor:
    def __init__(self, registry: ContractRegistry) -> None:
        self.registry = registry

    def prepare(self, tx: SignedTx) -> PreparedTx:
        """Resolve the method and validate arguments; raises TxRejected. Needs no state."""
        contract, spec = self.registry.method(tx.body.contract, tx.body.method)
        if spec.kind != "transaction":
            raise TxRejected(
                RejectReason.UNKNOWN_METHOD,
                f"{tx.body.contract}.{tx.body.method} is a query, not a transaction",
            )
        return PreparedTx(tx, contract, spec, validate_args(spec.args_model, tx.body.args))

    def execute(
        self,
        store: StateStore,
        txs: Sequence[PreparedTx],
        *,
        height: int,
        time_ms: int,
        first_leaf_index: int,
    ) -> BlockExecution:
        block = BlockState(store)
        included: list[Included] = []
        dropped: list[Dropped] = []
        for prepared in txs:
            tx_state = block.begin_tx()
            try:
                self._admit(tx_state, prepared, time_ms)
            except TxRejected as e:
                dropped.append(Dropped(prepared, e))
                continue
            index = len(included)
            receipt, receipt_bytes = self._run(
                tx_state, prepared, height, time_ms, index, first_leaf_index + index
            )
            if receipt.ok:
                tx_state.commit()
            block.writes[nonce_key(prepared.tx.body.signer)] = canonical_json(
                prepared.tx.body.nonce
            )
            included.append(Included(prepared, receipt, receipt_bytes))
        return BlockExecution(included, dropped, block)

    @staticmethod
    def _admit(state: TxState, prepared: PreparedTx, time_ms: int) -> None:
        body = prepared.tx.body
        last = state.get(nonce_key(body.signer)) or 0
        if body.nonce <= last:
            raise TxRejected(
                RejectReason.NONCE_REPLAYED, f"nonce {body.nonce} already used (last {last})"
            )
        if body.nonce != last + 1:
            raise TxRejected(
                RejectReason.NONCE_OUT_OF_ORDER, f"nonce {body.nonce}; expected {last + 1}"
            )
        if body.expires_at < time_ms:
            raise TxRejected(
                RejectReason.EXPIRED, f"expired at {body.expires_at}; block time is {time_ms}"
            )
        policy = prepared.spec.policy
        if policy is None or not policy.allows(Authority(state), body.signer, prepared.args):
            needed = policy.description if policy else "nobody"
            raise TxRejected(
                RejectReason.UNAUTHORIZED,
                f"{body.signer} may not call {body.contract}.{body.method} (needs {needed})",
            )

    @staticmethod
    def _run(
        state: TxState,
        prepared: PreparedTx,
        height: int,
        time_ms: int,
        index: int,
        leaf_index: int,
    ) -> tuple[Receipt, bytes]:
        tx = prepared.tx
        ctx = TxContext(
            contract=tx.body.contract,
            height=height,
            time_ms=time_ms,
            signer=tx.body.signer,
            tx_id=tx.tx_id_hex,
            state=state,
            authority=Authority(state),
            chain_id=tx.body.chain_id,
        )
        common = {"tx_id": tx.tx_id_hex, "height": height, "index": index, "leaf_index": leaf_index}
        try:
            result = prepared.spec.fn(prepared.contract, ctx, prepared.args)
            return _receipt(common, "ok", None, None, ctx.events, result)
        except ContractError as e:
            return _receipt(common, "failed", e.reason, e.message, [], None)
        except CivicError as e:
            # For example a result or event that is not JSON: the contract's bug, deterministic.
            return _receipt(common, "failed", "contract_bug", e.message, [], None)
        except Exception as e:
            log.exception("contract %s.%s raised", tx.body.contract, tx.body.method)
            return _receipt(common, "failed", "contract_bug", type(e).__name__, [], None)

    def query(
        self,
        store: StateStore,
        contract_name: str,
        method: str,
        args: dict[str, Any],
        *,
        height: int,
        time_ms: int,
    ) -> Any:
        contract, spec = self.registry.method(contract_name, method)
        if spec.kind != "query":
            raise TxRejected(
                RejectReason.UNKNOWN_METHOD, f"{contract_name}.{method} is not a query"
            )
        validated = validate_args(spec.args_model, args)
        state = BlockState(store).begin_tx()
        ctx = QueryContext(contract_name, height, time_ms, state, Authority(state))
        return spec.fn(contract, ctx, validated)
