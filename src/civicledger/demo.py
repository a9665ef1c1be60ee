"""City directories and the demo city: plain functions that return data, for the CLI and the portal.

A city directory holds everything one node of a city needs::

    <city>/
      genesis.json    the chain's genesis, RFC 8785 JSON (shareable: it is the trust anchor)
      keys/           a Keystore: ``root`` (root authority), ``node`` (block producer),
                      and one key per agency, named by the agency's id
      data/           the node's ledger (``ledger.sqlite``) and its ``node.lock``

The demo city (``demo-seoul``) is made by ``create_demo_city`` and exercised by ``run_scenario``:
the root authority registers two district offices and grants roles, city hall anchors a batch
of public documents, one transaction fails inside its contract (a second anchor of the same
document) and one is rejected before execution (a district granting itself a role). ``prove``
then fetches an inclusion and a consistency proof and checks both offline against the genesis
producers, as a citizen holding only ``genesis.json`` would.

Nothing here prints: the CLI renders these results, and a web portal can render the same ones.
The city-directory helpers are not demo-specific; they live here until a ``civicledger.city``
module exists.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.crypto.keys import PrivateKey
from civicledger.errors import CivicError, GenesisError, KeystoreError, ProofError, TxRejected
from civicledger.keystore import Keystore, KeystoreReason
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.proofs import (
    ConsistencyBundle,
    InclusionBundle,
    load_bundle,
    verify_consistency_bundle,
    verify_inclusion_bundle,
)
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx, sign_tx
from civicledger.node.chain import Chain
from civicledger.node.embedded import EmbeddedNode
from civicledger.node.verify import Progress, VerifyReport, verify_chain

__all__ = [
    "DEFAULT_EXPIRY_S",
    "DEMO_CHAIN_ID",
    "DEMO_CITY",
    "NODE_KEY",
    "ROOT_KEY",
    "AgencySpec",
    "CityDir",
    "DemoProofs",
    "DemoRun",
    "DemoSummary",
    "Outcome",
    "Signer",
    "Step",
    "consistency_base",
    "create_city",
    "create_demo_city",
    "document_digest",
    "load_key",
    "proof_target",
    "prove",
    "run_demo",
    "run_scenario",
    "summarize",
]

ROOT_KEY = "root"
"""Keystore name of the city's root authority key."""
NODE_KEY = "node"
"""Keystore name of this node's block-producer key."""
_RESERVED_KEY_NAMES = frozenset({ROOT_KEY, NODE_KEY})

DEMO_CITY = "서울특별시 Seoul (demo)"
DEMO_CHAIN_ID = "demo-seoul"
DEFAULT_EXPIRY_S = 300

# -- city directories ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AgencySpec:
    """An agency to put in genesis; its key is created under its id in the keystore."""

    id: str
    name: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class CityDir:
    """The layout of a city directory; construction touches nothing on disk."""

    root: Path

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    @property
    def keys_path(self) -> Path:
        return self.root / "keys"

    @property
    def data_path(self) -> Path:
        return self.root / "data"

    @property
    def keystore(self) -> Keystore:
        return Keystore(self.keys_path)

    def exists(self) -> bool:
        """Whether any part of a city is here (so creating one would overwrite something)."""
        return any(p.exists() for p in (self.genesis_path, self.keys_path, self.data_path))

    def require(self) -> CityDir:
        """Raise ``CivicError`` (reason ``no_city``) unless a city was initialised here."""
        if not self.genesis_path.is_file():
            raise CivicError(
                f"no city at {self.root} (no genesis.json); create one with `civic init` "
                "or point --dir / CIVIC_DIR at one",
                reason="no_city",
            )
        if not self.data_path.is_dir():
            raise CivicError(f"city {self.root} has no data directory", reason="no_city")
        return self

    def genesis(self) -> Genesis:
        return Genesis.load(self.require().genesis_path)


def load_key(keystore: Keystore, name: str, passphrase: str | None) -> PrivateKey:
    """Load ``name``, using ``passphrase`` only if that key is encrypted.

    One passphrase can then be given for a set of keys of which only some are encrypted.
    """
    if keystore.is_encrypted(name):
        if passphrase is None:
            raise KeystoreError(
                f"key {name!r} is encrypted; give its passphrase (--passphrase-env VAR)",
                reason=KeystoreReason.PASSPHRASE_REQUIRED.value,
            )
        return keystore.load(name, passphrase=passphrase)
    return keystore.load(name)


def create_city(
    root: Path,
    *,
    city: str,
    chain_id: str,
    agencies: Sequence[AgencySpec],
    passphrase: str | None = None,
    time_ms: int | None = None,
) -> CityDir:
    """Create keys, genesis and the ledger (block 0) of a new city in ``root``.

    Refuses a directory that already holds any part of a city. Everything is validated before
    the first file is written; if a later step fails, what this call created is removed again.
    """
    layout = CityDir(Path(root))
    if layout.exists():
        raise CivicError(
            f"a city already exists at {layout.root}; refusing to overwrite it",
            reason="city_exists",
        )
    for agency in agencies:
        if agency.id in _RESERVED_KEY_NAMES:
            raise CivicError(
                f"agency id {agency.id!r} is reserved for a key name", reason="bad_agency"
            )
    root_key, node_key = PrivateKey.generate(), PrivateKey.generate()
    agency_keys = {agency.id: PrivateKey.generate() for agency in agencies}
    genesis = _genesis(
        chain_id=chain_id,
        city=city,
        time_ms=int(time.time() * 1000) if time_ms is None else time_ms,
        root_authorities=[root_key.public.did],
        producers=[node_key.public.did],
        agencies=[
            {
                "id": agency.id,
                "name": agency.name,
                "keys": [agency_keys[agency.id].public.did],
                "roles": list(agency.roles),
            }
            for agency in agencies
        ],
    )
    created_root = not layout.root.exists()
    try:
        keystore = layout.keystore
        for name, key in [(ROOT_KEY, root_key), (NODE_KEY, node_key), *agency_keys.items()]:
            keystore.create(name, passphrase=passphrase, seed=key.seed)
        layout.genesis_path.write_bytes(genesis.canonical_bytes() + b"\n")
        Chain.create(layout.data_path, genesis, node_key).close()
    except BaseException:
        _remove_city(layout, created_root)
        raise
    return layout


def _genesis(**fields: Any) -> Genesis:
    """A validated Genesis; invalid fields raise ``GenesisError`` naming the first one."""
    try:
        return Genesis.model_validate_json(json.dumps(fields))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GenesisError(f"genesis {where}: {first['msg']}") from e


def _remove_city(layout: CityDir, created_root: bool) -> None:
    if created_root:
        shutil.rmtree(layout.root, ignore_errors=True)
        return
    for path in (layout.keys_path, layout.data_path):
        shutil.rmtree(path, ignore_errors=True)
    layout.genesis_path.unlink(missing_ok=True)


# -- signing -----------------------------------------------------------------------------------


class Signer:
    """A key with its next nonce, so several transactions can be pending at once.

    The next nonce starts at the chain's last nonce + 1 and is re-read from the chain after a
    rejection, because a rejected transaction consumes no nonce.
    """

    def __init__(self, name: str, key: PrivateKey, chain: Chain) -> None:
        self.name = name
        self.key = key
        self._chain = chain
        self._next = chain.last_nonce(key.public.did) + 1

    @property
    def did(self) -> str:
        return self.key.public.did

    def sign(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        expires_in_s: int = DEFAULT_EXPIRY_S,
    ) -> SignedTx:
        tx = sign_tx(
            self.key,
            chain_id=self._chain.chain_id,
            nonce=self._next,
            contract=contract,
            method=method,
            args=args,
            expires_at=int(time.time() * 1000) + expires_in_s * 1000,
        )
        self._next += 1
        return tx

    def resync(self) -> None:
        self._next = self._chain.last_nonce(self.did) + 1


# -- the demo city -----------------------------------------------------------------------------

_CITY_HALL = AgencySpec("city-hall", "서울특별시청 Seoul City Hall", ("notary",))
_DISTRICTS = (
    AgencySpec("gangnam-gu", "강남구청 Gangnam-gu Office"),
    AgencySpec("mapo-gu", "마포구청 Mapo-gu Office"),
)
# Public documents only: the ledger keeps their SHA-256, never the text, and never personal data.
_CITY_HALL_DOCUMENTS = (
    "2025 예산안 Seoul city budget 2025",
    "시의회 회의록 City council minutes, session 321",
    "도시계획 고시 Urban planning notice 2025-14",
    "대중교통 요금 조정 Public transport fare schedule",
    "한강공원 운영 규칙 Han River park rules",
    "재난안전 계획 Disaster safety plan 2025",
    "공공 와이파이 입찰 Public Wi-Fi tender result",
    "미세먼지 대응 지침 Fine dust response guideline",
)
_DISTRICT_DOCUMENT = "강남구 건축 허가 공고 Gangnam-gu building permit notice 2025-0042"

Outcome = Literal["ok", "failed", "rejected"]


@dataclass(frozen=True)
class Step:
    """One transaction of the scenario and what became of it."""

    title: str
    signer: str
    """Keystore name of the signing key."""
    contract: str
    method: str
    tx_id: str
    outcome: Outcome
    receipt: Receipt | None = None
    """Set unless the transaction was rejected."""
    reason: str | None = None
    """Why it failed or was rejected."""
    message: str | None = None


@dataclass(frozen=True)
class DemoSummary:
    chain_id: str
    city: str
    height: int
    transactions: int
    agencies: list[dict[str, Any]] = field(default_factory=list)
    """Each agency's ledger record: id, name, keys, roles, active."""


@dataclass(frozen=True)
class DemoProofs:
    """An inclusion and a consistency proof, both already verified offline."""

    inclusion: InclusionBundle
    tx: SignedTx
    receipt: Receipt
    consistency: ConsistencyBundle
    trusted_signers: frozenset[str]


def create_demo_city(root: Path, *, passphrase: str | None = None) -> CityDir:
    """A new demo Seoul in ``root``: root, node and city-hall keys, genesis and block 0."""
    layout = create_city(
        root,
        city=DEMO_CITY,
        chain_id=DEMO_CHAIN_ID,
        agencies=[_CITY_HALL],
        passphrase=passphrase,
    )
    for district in _DISTRICTS:
        layout.keystore.create(district.id, passphrase=passphrase)
    return layout


def document_digest(text: str) -> str:
    return sha256(text.encode("utf-8")).hex()


def run_scenario(layout: CityDir, *, passphrase: str | None = None) -> list[Step]:
    """Run the demo through an embedded node opened on ``layout`` and return every step."""
    keystore = layout.keystore
    with EmbeddedNode(layout.data_path, load_key(keystore, NODE_KEY, passphrase)) as node:

        def signer(name: str) -> Signer:
            return Signer(name, load_key(keystore, name, passphrase), node.chain)

        root = signer(ROOT_KEY)
        city_hall = signer(_CITY_HALL.id)
        gangnam, mapo = (signer(d.id) for d in _DISTRICTS)
        run = _Runner(node)

        for district, key in zip(_DISTRICTS, (gangnam, mapo), strict=True):
            run.send(
                f"root registers {district.name}",
                root,
                "governance",
                "register_agency",
                {"id": district.id, "name": district.name, "keys": [key.did]},
            )
        run.send(
            "root grants gangnam-gu the notary role",
            root,
            "governance",
            "grant_role",
            {"agency": "gangnam-gu", "role": "notary"},
        )
        run.send(
            "root grants mapo-gu the permits role",
            root,
            "governance",
            "grant_role",
            {"agency": "mapo-gu", "role": "permits"},
        )
        run.send_batch(
            city_hall,
            "notary",
            "anchor",
            [
                (f"city hall anchors: {text}", {"digest": document_digest(text), "label": text})
                for text in _CITY_HALL_DOCUMENTS
            ],
        )
        run.send(
            f"gangnam-gu anchors: {_DISTRICT_DOCUMENT}",
            gangnam,
            "notary",
            "anchor",
            {"digest": document_digest(_DISTRICT_DOCUMENT), "label": _DISTRICT_DOCUMENT},
        )
        run.send(
            "city hall anchors the budget a second time (the contract refuses: failed receipt)",
            city_hall,
            "notary",
            "anchor",
            {"digest": document_digest(_CITY_HALL_DOCUMENTS[0]), "label": "budget again"},
        )
        run.send(
            "mapo-gu tries to grant itself the notary role (not root: rejected, nothing written)",
            mapo,
            "governance",
            "grant_role",
            {"agency": "mapo-gu", "role": "notary"},
        )
        return run.steps


class _Runner:
    """Submits scenario transactions and records each one's outcome."""

    def __init__(self, node: EmbeddedNode) -> None:
        self._node = node
        self.steps: list[Step] = []

    def send(
        self, title: str, signer: Signer, contract: str, method: str, args: dict[str, Any]
    ) -> Step:
        return self.send_batch(signer, contract, method, [(title, args)])[0]

    def send_batch(
        self,
        signer: Signer,
        contract: str,
        method: str,
        items: Sequence[tuple[str, dict[str, Any]]],
    ) -> list[Step]:
        """Admit all of ``items`` at once, so they share a block, then wait for every receipt."""
        pending: list[tuple[str, SignedTx, Future[Receipt]]] = []
        for title, args in items:
            tx = signer.sign(contract, method, args)
            pending.append((title, tx, self._node.submit_nowait(tx)))
        steps = []
        for title, tx, future in pending:
            step = Step(title, signer.name, contract, method, tx.tx_id_hex, outcome="ok")
            try:
                receipt = future.result(timeout=60)
            except TxRejected as e:
                signer.resync()
                step = replace(step, outcome="rejected", reason=e.reason, message=e.message)
            else:
                step = replace(
                    step,
                    outcome="ok" if receipt.ok else "failed",
                    receipt=receipt,
                    reason=receipt.reason,
                    message=receipt.message,
                )
            steps.append(step)
        self.steps.extend(steps)
        return steps


def summarize(layout: CityDir) -> DemoSummary:
    """Height, transaction count and the agencies, read from the committed ledger."""
    chain = Chain(layout.require().data_path)
    try:
        head = chain.head.header
        agencies = chain.query("governance", "agencies", {})
        return DemoSummary(
            chain_id=chain.chain_id,
            city=chain.genesis.city,
            height=head.height,
            transactions=head.log_size,
            agencies=list(agencies),
        )
    finally:
        chain.close()


def prove(layout: CityDir, tx_id: str, *, old_height: int) -> DemoProofs:
    """Fetch proofs from the ledger, then verify them using only the bundles and genesis.json.

    The inclusion proof is for ``tx_id`` against the latest tree head; the consistency proof
    shows the log at ``old_height`` is a prefix of the latest log.
    """
    chain = Chain(layout.require().data_path)
    try:
        inclusion = chain.inclusion_proof(bytes.fromhex(tx_id))
        consistency = chain.consistency_proof(old_height)
    finally:
        chain.close()
    # From here on only what a citizen holds: the two bundles as files and the genesis file.
    inclusion = _reload(inclusion, InclusionBundle)
    consistency = _reload(consistency, ConsistencyBundle)
    trusted = frozenset(Genesis.load(layout.genesis_path).producers)
    tx, receipt = verify_inclusion_bundle(inclusion, trusted)
    verify_consistency_bundle(consistency, trusted)
    return DemoProofs(inclusion, tx, receipt, consistency, trusted)


_B = TypeVar("_B", InclusionBundle, ConsistencyBundle)


def _reload(bundle: _B, kind: type[_B]) -> _B:
    """The bundle as a verifier reads it back from its file."""
    loaded = load_bundle(canonical_json(bundle.model_dump(mode="json")))
    if not isinstance(loaded, kind):
        raise ProofError(f"expected a {kind.__name__}, read a {type(loaded).__name__}")
    return loaded


@dataclass(frozen=True)
class DemoRun:
    layout: CityDir
    steps: list[Step]
    summary: DemoSummary
    proofs: DemoProofs
    report: VerifyReport


def run_demo(root: Path, *, progress: Progress | None = None) -> DemoRun:
    """Everything ``civic demo`` shows, in one call: create, run, summarise, prove, verify."""
    layout = create_demo_city(root)
    steps = run_scenario(layout)
    summary = summarize(layout)
    proofs = prove(layout, proof_target(steps).tx_id, old_height=consistency_base(steps))
    report = verify_chain(layout.data_path, progress=progress)
    return DemoRun(layout, steps, summary, proofs, report)


def proof_target(steps: Sequence[Step]) -> Step:
    """The step whose inclusion the demo proves: the district's anchored document."""
    return next(s for s in steps if s.signer == "gangnam-gu" and s.outcome == "ok")


def consistency_base(steps: Sequence[Step]) -> int:
    """The older height of the demo's consistency proof: the block of the first role grant."""
    first = next(s for s in steps if s.method == "grant_role" and s.receipt is not None)
    assert first.receipt is not None
    return first.receipt.height
