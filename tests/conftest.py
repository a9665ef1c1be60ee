"""Shared fixtures: a small city (genesis, keys, ledger) in ``tmp_path``; helpers to sign its txs.

The city ``testville`` has a root authority, one producing node and three agencies:

    city-hall        keys: clerk, clerk2   roles: notary
    archive          keys: archivist       roles: notary
    district-office  keys: district        roles: (none)

``outsider`` belongs to no agency and ``rogue`` is a key nobody trusts (not root, not a producer).
Keys are derived from fixed labels, so every run sees the same ones.

Besides the built-in contracts the test registry runs ``tally``: a public counter whose ``add``
takes an integer (and a long free-text note), so strict argument validation, the size limit and
a signer-agnostic "is this nonce still free?" probe can be exercised without granting any role.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from civicledger.city import CityDir
from civicledger.contracts.base import (
    PUBLIC,
    Args,
    Contract,
    QueryContext,
    TxContext,
    query,
    transaction,
)
from civicledger.contracts.governance import Governance
from civicledger.contracts.notary import Notary
from civicledger.contracts.registry import ContractRegistry
from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.demo import create_demo_city, run_scenario
from civicledger.demo_currency import DemoCurrency, run_currency
from civicledger.demo_identity import DemoIdentity, run_identity
from civicledger.demo_voting import DemoVoting, run_voting
from civicledger.errors import TxRejected
from civicledger.ledger.genesis import Genesis, GenesisAgency
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx, sign_tx
from civicledger.node.chain import DB_NAME, Chain, CommittedBlock
from civicledger.node.embedded import EmbeddedNode

CHAIN_ID = "testville"
GENESIS_TIME_MS = 1_700_000_000_000
"""November 2023: far enough in the past that the embedded node's wall-clock blocks come later."""
FAR_FUTURE_MS = 2**53 - 1
"""The largest ``expires_at`` a transaction may carry."""


def city_key(label: str) -> PrivateKey:
    """A deterministic key for ``label``."""
    return PrivateKey.from_seed(sha256(b"civicledger-tests/" + label.encode()))


def digest(label: str) -> str:
    """A document digest (hex) for ``label``: what notary.anchor takes."""
    return sha256(label.encode()).hex()


class Amount(Args):
    amount: int = Field(ge=1, le=1_000_000)
    note: str = Field(default="", max_length=100_000)
    """Free text with no tight bound of its own, so only the ledger's size limit applies."""


class Tally(Contract):
    """A public counter, for tests that need a transaction any key may send."""

    name = "tally"

    @transaction(Amount, policy=PUBLIC)
    def add(self, ctx: TxContext, args: Amount) -> int:
        """Add ``amount`` to the total; return the new total."""
        total = (ctx.get("total") or 0) + args.amount
        ctx.put("total", total)
        ctx.emit("added", amount=args.amount, total=total)
        return int(total)

    @query()
    def total(self, ctx: QueryContext, args: Args) -> Any:
        """The running total."""
        return ctx.get("total") or 0


def city_registry() -> ContractRegistry:
    """The built-in contracts plus ``tally``."""
    return ContractRegistry([Governance(), Notary(), Tally()])


@dataclass
class City:
    """A city on disk plus its keys; helpers never bypass the public API except to inspect."""

    data_dir: Path
    genesis: Genesis
    registry: ContractRegistry
    root: PrivateKey
    producer: PrivateKey
    clerk: PrivateKey
    clerk2: PrivateKey
    archivist: PrivateKey
    district: PrivateKey
    outsider: PrivateKey
    rogue: PrivateKey

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    def tx(
        self,
        signer: PrivateKey,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        nonce: int,
        expires_at: int = FAR_FUTURE_MS,
        chain_id: str | None = None,
    ) -> SignedTx:
        return sign_tx(
            signer,
            chain_id=chain_id or self.chain_id,
            nonce=nonce,
            contract=contract,
            method=method,
            args=args,
            expires_at=expires_at,
        )

    def open_chain(self) -> Chain:
        return Chain(self.data_dir, self.registry)

    def open_node(self, **options: Any) -> EmbeddedNode:
        options.setdefault("block_interval", 0.002)
        options.setdefault("verify_workers", 1)
        return EmbeddedNode(self.data_dir, self.producer, registry=self.registry, **options)

    # -- inspection, straight from the database file (independent of the node under test) -----

    def _read(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)

    def nonce(self, signer: PrivateKey) -> int:
        """The signer's last committed nonce (0 if none) as stored in state."""
        with closing(self._read()) as conn:
            row = conn.execute(
                "SELECT value FROM state WHERE key = ?", (f"_sys/nonce/{signer.public.did}",)
            ).fetchone()
        return 0 if row is None else int(bytes(row[0]))

    def state_rows(self) -> dict[str, bytes]:
        with closing(self._read()) as conn:
            return {k: bytes(v) for k, v in conn.execute("SELECT key, value FROM state")}

    def snapshot(self) -> dict[str, Any]:
        """Everything a rejected transaction must leave untouched."""
        with closing(self._read()) as conn:
            height, head_hash = conn.execute(
                "SELECT height, hash FROM blocks ORDER BY height DESC LIMIT 1"
            ).fetchone()
            log_size = conn.execute("SELECT value FROM log_meta WHERE key = 'size'").fetchone()
            state = conn.execute("SELECT key, value FROM state ORDER BY key").fetchall()
            return {
                "height": height,
                "head_hash": bytes(head_hash),
                "blocks": conn.execute("SELECT count(*) FROM blocks").fetchone()[0],
                "txs": conn.execute("SELECT count(*) FROM txs").fetchone()[0],
                "log_size": 0 if log_size is None else log_size[0],
                "log_nodes": conn.execute("SELECT count(*) FROM log_nodes").fetchone()[0],
                "state_hash": sha256(canonical_json([[k, bytes(v).hex()] for k, v in state])),
            }


class Ledger:
    """Drives a ``Chain`` block by block, without threads, numbering each signer's nonces.

    Block times are the head's time plus one second unless given, so runs are reproducible.
    After a block, the nonce counters of signers whose transactions were dropped are re-read
    from the chain, as a client would after a refusal.
    """

    def __init__(self, city: City, chain: Chain) -> None:
        self.city = city
        self.chain = chain
        self._next: dict[str, int] = {}

    def tx(
        self, key: PrivateKey, contract: str, method: str, args: dict[str, Any], **options: Any
    ) -> SignedTx:
        did = key.public.did
        nonce = self._next.get(did, self.chain.last_nonce(did) + 1)
        self._next[did] = nonce + 1
        return self.city.tx(key, contract, method, args, nonce=nonce, **options)

    def block(self, *txs: SignedTx, time_ms: int | None = None) -> CommittedBlock:
        when = self.chain.head.header.time_ms + 1000 if time_ms is None else time_ms
        block = self.chain.produce_block(
            [self.chain.prepare(tx) for tx in txs], when, self.city.producer
        )
        assert block is not None
        for dropped in block.dropped:
            self._next.pop(dropped.prepared.tx.body.signer, None)
        return block

    def send(
        self,
        key: PrivateKey,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        time_ms: int | None = None,
    ) -> Receipt:
        """One transaction in a block of its own (at ``time_ms``, default the head's time plus
        one second); raises the TxRejected if it was dropped."""
        try:
            block = self.block(self.tx(key, contract, method, args), time_ms=time_ms)
        except TxRejected:
            self._next.pop(key.public.did, None)
            raise
        if block.dropped:
            raise block.dropped[0].error
        (included,) = block.included
        return included.receipt


def ok(receipt: Receipt) -> Any:
    """The result of a receipt that must be ok."""
    assert receipt.status == "ok", (receipt.reason, receipt.message)
    return receipt.result


def refused(receipt: Receipt, reason: str) -> None:
    """A receipt that must have failed with ``reason``."""
    assert (receipt.status, receipt.reason) == ("failed", reason), receipt.message


def make_city(data_dir: Path, registry: ContractRegistry | None = None) -> City:
    """Write the genesis block of ``testville`` into ``data_dir`` and return its handle."""
    keys = {
        label: city_key(label)
        for label in (
            "root",
            "producer",
            "clerk",
            "clerk2",
            "archivist",
            "district",
            "outsider",
            "rogue",
        )
    }
    genesis = Genesis(
        chain_id=CHAIN_ID,
        city="Testville",
        time_ms=GENESIS_TIME_MS,
        root_authorities=(keys["root"].public.did,),
        producers=(keys["producer"].public.did,),
        agencies=(
            GenesisAgency(
                id="city-hall",
                name="City Hall",
                keys=(keys["clerk"].public.did, keys["clerk2"].public.did),
                roles=("notary",),
            ),
            GenesisAgency(
                id="archive",
                name="City Archive",
                keys=(keys["archivist"].public.did,),
                roles=("notary",),
            ),
            GenesisAgency(
                id="district-office", name="District Office", keys=(keys["district"].public.did,)
            ),
        ),
    )
    registry = registry or city_registry()
    Chain.create(data_dir, genesis, keys["producer"], registry).close()
    return City(data_dir=data_dir, genesis=genesis, registry=registry, **keys)


@pytest.fixture
def city(tmp_path: Path) -> City:
    return make_city(tmp_path / "city")


@pytest.fixture
def city_factory() -> Callable[[Path], City]:
    """For tests that need several cities, or one per hypothesis example."""
    return make_city


@pytest.fixture
def node(city: City) -> Iterator[EmbeddedNode]:
    with city.open_node() as running:
        yield running


@pytest.fixture
def chain(city: City) -> Iterator[Chain]:
    opened = city.open_chain()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def ledger(city: City, chain: Chain) -> Ledger:
    return Ledger(city, chain)


@dataclass(frozen=True)
class DemoCityTemplate:
    """The demo city after its scenario, identity, polls and help-coin parts, built once per run.

    Building it takes ~15 s (the polls wait for their opening and closing block times), so the
    suites of the later demo parts copy it instead of each building their own. Never write to
    ``root``: ``fresh`` gives a test its own copy.
    """

    root: Path
    identity: DemoIdentity
    voting: DemoVoting
    currency: DemoCurrency

    def fresh(self, dest: Path) -> CityDir:
        shutil.copytree(self.root, dest)
        return CityDir(dest)


@pytest.fixture(scope="session")
def demo_city_template(tmp_path_factory: pytest.TempPathFactory) -> DemoCityTemplate:
    layout = create_demo_city(tmp_path_factory.mktemp("demo-template") / "seoul")
    run_scenario(layout)
    identity = run_identity(layout)
    voting = run_voting(layout)
    currency = run_currency(layout)
    return DemoCityTemplate(layout.root, identity, voting, currency)
