"""The demo city: plain functions that return data, for the CLI and (later) the portal.

The demo city (``demo-seoul``) is made by ``create_demo_city`` and exercised by ``run_scenario``:
the root authority registers two district offices and grants roles, city hall anchors a batch
of public documents, one transaction fails inside its contract (a second anchor of the same
document) and one is rejected before execution (a district granting itself a role). ``prove``
then fetches an inclusion and a consistency proof and checks both offline against the genesis
producers, as a citizen holding only ``genesis.json`` would.

Nothing here prints: the CLI renders these results, and a web portal can render the same ones.
City directories themselves are ``civicledger.city``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from civicledger.city import (
    NODE_KEY,
    ROOT_KEY,
    AgencySpec,
    CityDir,
    Signer,
    create_city,
    load_key,
)
from civicledger.crypto.encoding import canonical_json, sha256
from civicledger.demo_identity import DemoIdentity, run_identity
from civicledger.errors import NodeError, ProofError, TxRejected
from civicledger.ledger.genesis import Genesis
from civicledger.ledger.proofs import (
    ConsistencyBundle,
    InclusionBundle,
    load_bundle,
    verify_consistency_bundle,
    verify_inclusion_bundle,
)
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import SignedTx
from civicledger.node.chain import Chain
from civicledger.node.embedded import EmbeddedNode
from civicledger.node.verify import Progress, VerifyReport, verify_chain

__all__ = [
    "DEMO_CHAIN_ID",
    "DEMO_CITY",
    "DemoActivity",
    "DemoProofs",
    "DemoRun",
    "DemoSummary",
    "Outcome",
    "Step",
    "consistency_base",
    "create_demo_city",
    "document_digest",
    "proof_target",
    "prove",
    "run_demo",
    "run_scenario",
    "summarize",
]

DEMO_CITY = "서울특별시 Seoul (demo)"
DEMO_CHAIN_ID = "demo-seoul"

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
    identity: DemoIdentity | None = None


def run_demo(root: Path, *, progress: Progress | None = None, identity: bool = False) -> DemoRun:
    """Everything ``civic demo`` shows, in one call: create, run, summarise, prove, verify.

    ``identity``: also run the identity part (``civicledger.demo_identity``) after the scenario,
    as ``civic demo`` does.
    """
    layout = create_demo_city(root)
    steps = run_scenario(layout)
    shown = run_identity(layout) if identity else None
    summary = summarize(layout)
    proofs = prove(layout, proof_target(steps).tx_id, old_height=consistency_base(steps))
    report = verify_chain(layout.data_path, progress=progress)
    return DemoRun(layout, steps, summary, proofs, report, shown)


def proof_target(steps: Sequence[Step]) -> Step:
    """The step whose inclusion the demo proves: the district's anchored document."""
    return next(s for s in steps if s.signer == "gangnam-gu" and s.outcome == "ok")


def consistency_base(steps: Sequence[Step]) -> int:
    """The older height of the demo's consistency proof: the block of the first role grant."""
    first = next(s for s in steps if s.method == "grant_role" and s.receipt is not None)
    assert first.receipt is not None
    return first.receipt.height


# -- activity while the portal is open -------------------------------------------------------

_ACTIVITY_DOCUMENTS = (
    "민원 처리 기록 Civil petition log",
    "공공시설 점검 결과 Public facility inspection",
    "주민참여예산 회의록 Participatory budget minutes",
    "도로 보수 공사 완료 Road repair completion",
)


class DemoActivity:
    """Keeps the demo city busy while its portal is open, so the explorer has something live.

    Every ``interval_s`` city hall (and, every third time, Gangnam-gu) anchors one more public
    record through ``node``. Stops on ``stop()``; a refused transaction only resyncs the nonce.
    """

    def __init__(
        self,
        node: EmbeddedNode,
        layout: CityDir,
        *,
        interval_s: float = 2.0,
        passphrase: str | None = None,
    ) -> None:
        keystore = layout.keystore
        self._node = node
        self._interval_s = interval_s
        self._signers = [
            Signer(name, load_key(keystore, name, passphrase), node.chain)
            for name in (_CITY_HALL.id, _DISTRICTS[0].id)
        ]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="civic-demo-activity", daemon=True)
        self.sent = 0

    def start(self) -> DemoActivity:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        count = 0
        while not self._stopping.wait(self._interval_s):
            count += 1
            signer = self._signers[1 if count % 3 == 0 else 0]
            text = f"{_ACTIVITY_DOCUMENTS[count % len(_ACTIVITY_DOCUMENTS)]} #{count}"
            tx = signer.sign("notary", "anchor", {"digest": document_digest(text), "label": text})
            try:
                self._node.submit(tx, timeout=30)
            except (TxRejected, NodeError, TimeoutError):
                signer.resync()
                continue
            self.sent += 1
