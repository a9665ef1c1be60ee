"""Gather a poll's ledger data for the independent verifier (``civic poll verify POLL``).

``gather_poll_record`` reads the committed blocks from the poll's creation to the head, in pages,
and keeps the poll's transactions whose receipt is ``ok`` (the audit re-checks every one of them;
it never reads a receipt's result). The contract's stored view is read at the same head, so the
two describe one ledger state. A page's envelopes are filtered on their bytes before decoding:
canonical JSON writes ``"contract":"polls"`` and ``"poll_id":"<id>"`` exactly so (poll ids need no
escaping), which keeps a 100,000-ballot poll on a busy chain to one pass of cheap scans.

The registrar's keys come from governance: the agency's keys at the head plus any key removed from
it while the poll ran (registrations it signed before its removal were valid then).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from civicledger.city import CityDir
from civicledger.errors import CivicError, LedgerError
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import decode_tx
from civicledger.node.chain import Chain
from civicledger.services.voting.audit import (
    AuditReport,
    LedgerTx,
    Mapper,
    PollRecord,
    StoredView,
    audit_poll,
)
from civicledger.services.voting.polls import CONTRACT_NAME

__all__ = ["GatheredPoll", "gather_poll", "gather_poll_record", "verify_poll_in_city"]

PAGE = 1000
"""Transactions read per query while streaming a block."""
_ATTEMPTS = 5
"""Reads of the stored view retried if a block lands between them (a node may be running)."""

_GROUPS = {
    "trustee_join": "joins",
    "trustee_deal": "deals",
    "trustee_ack": "acks",
    "register_voter": "registrations",
    "cast": "casts",
    "cast_secret": "casts",
    "decrypt_share": "partials",
    "publish_result": "publications",
}


@dataclass(frozen=True, slots=True)
class GatheredPoll:
    """What the audit takes: the poll's record and the registrar agency's keys."""

    record: PollRecord
    registrar_keys: frozenset[str]
    height: int
    """The head the record was read at."""


def _stored_view(chain: Chain, poll_id: str) -> tuple[int, dict[str, Any], StoredView]:
    """The poll and the contract's view of it, all read at one head."""
    for _ in range(_ATTEMPTS):
        reads = {
            name: chain.query_at_head(CONTRACT_NAME, name, {"poll_id": poll_id})
            for name in ("poll", "aggregate", "tally", "trustees")
        }
        heights = {height for height, _ in reads.values()}
        if len(heights) == 1:
            break
    else:
        raise LedgerError("the head kept moving while the poll was read; try again")
    poll = reads["poll"][1]
    if poll is None:
        raise CivicError(f"no poll {poll_id!r} on this ledger", reason="unknown_poll")
    tally = reads["tally"][1]
    aggregate = reads["aggregate"][1]
    counts: tuple[int, ...] | None
    if poll["mode"] == "open":
        counts = tuple(tally["counts"])
        by_district = {d: tuple(c) for d, c in tally["by_district"].items()}
    else:
        counts = None if tally is None else tuple(tally["counts"])
        by_district = {}
    view = StoredView(
        phase=poll["phase"],
        public_key=poll["public_key"],
        registered=poll["registered"],
        voted=poll["voted"],
        aggregate=None if aggregate is None else tuple(aggregate),
        tally=counts,
        tally_by_district=by_district,
        verification_keys={
            t["index"]: t["verification_key"]
            for t in reads["trustees"][1]
            if t["verification_key"] is not None
        },
    )
    return heights.pop(), poll, view


def _stream(chain: Chain, first: int, last: int) -> Iterator[tuple[bytes, bytes]]:
    """``(envelope, receipt)`` bytes of every transaction in heights ``first..last``, in pages
    of ``PAGE`` by log position (the primary key), never decoded here."""
    # Only integers are formatted into these statements (raw_rows takes no parameters).
    query = f"SELECT first_leaf FROM blocks WHERE height = {int(first)}"  # noqa: S608
    row = next(chain.raw_rows(query), None)
    if row is None:
        raise LedgerError(f"block {first} is missing")
    leaf = int(row[0])
    while True:
        page = list(
            chain.raw_rows(
                "SELECT leaf_index, envelope, receipt FROM txs "  # noqa: S608
                f"WHERE leaf_index >= {int(leaf)} AND height <= {int(last)} "
                f"ORDER BY leaf_index LIMIT {PAGE}"
            )
        )
        for _, envelope, receipt in page:
            yield bytes(envelope), bytes(receipt)
        if len(page) < PAGE:
            return
        leaf = int(page[-1][0]) + 1


def _block_time(chain: Chain, height: int) -> int:
    header = chain.block(height)
    if header is None:
        raise LedgerError(f"block {height} is missing")
    return header.header.time_ms


def gather_poll(chain: Chain, poll_id: str) -> GatheredPoll:
    """The poll's ``ok`` transactions from its creation to the head, the view and the keys."""
    head, poll, view = _stored_view(chain, poll_id)
    polls_marker = b'"contract":"' + CONTRACT_NAME.encode() + b'"'
    poll_marker = b'"poll_id":"' + poll_id.encode() + b'"'
    removal = (b'"contract":"governance"', b'"method":"remove_key"')
    registrar = poll["registrar"]
    groups: dict[str, list[LedgerTx]] = {name: [] for name in set(_GROUPS.values())}
    created: LedgerTx | None = None
    removed: set[str] = set()
    times: dict[int, int] = {}
    for envelope, receipt_bytes in _stream(chain, poll["created_height"], head):
        is_removal = all(marker in envelope for marker in removal)
        if not is_removal and (polls_marker not in envelope or poll_marker not in envelope):
            continue
        receipt = Receipt.model_validate_json(receipt_bytes)
        if not receipt.ok:
            continue
        body = decode_tx(envelope).body
        if is_removal:
            if body.contract == "governance" and body.args.get("agency") == registrar:
                removed.add(body.args["key"])
            continue
        if body.contract != CONTRACT_NAME or body.args.get("poll_id") != poll_id:
            continue
        if receipt.height not in times:
            times[receipt.height] = _block_time(chain, receipt.height)
        tx = LedgerTx(
            method=body.method,
            args=body.args,
            signer=body.signer,
            time_ms=times[receipt.height],
            height=receipt.height,
            index=receipt.index,
            tx_id=receipt.tx_id,
        )
        if body.method == "create":
            created = tx
        elif body.method in _GROUPS:
            groups[_GROUPS[body.method]].append(tx)
    if created is None:
        raise LedgerError(f"the create transaction of poll {poll_id!r} is not on the ledger")
    record = PollRecord(
        poll_id=poll_id,
        chain_id=poll["chain_id"],
        create=created,
        joins=tuple(groups["joins"]),
        deals=tuple(groups["deals"]),
        acks=tuple(groups["acks"]),
        registrations=tuple(groups["registrations"]),
        casts=tuple(groups["casts"]),
        partials=tuple(groups["partials"]),
        publications=tuple(groups["publications"]),
        stored=view,
    )
    agency = chain.query("governance", "agency", {"agency": registrar})
    keys = set() if agency is None else set(agency["keys"])
    return GatheredPoll(record, frozenset(keys | removed), head)


def gather_poll_record(chain: Chain, poll_id: str) -> PollRecord:
    """The poll's record alone (see ``gather_poll``)."""
    return gather_poll(chain, poll_id).record


def verify_poll_in_city(
    city: CityDir, poll_id: str, *, mapper: Mapper | None = None
) -> AuditReport:
    """Audit a poll of the city directory's ledger; the chain is only read."""
    chain = Chain(city.require().data_path)
    try:
        gathered = gather_poll(chain, poll_id)
    finally:
        chain.close()
    return audit_poll(gathered.record, set(gathered.registrar_keys), mapper=mapper)
