"""Rich renderings of ledger objects; no decisions are made here, only layout."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from civicledger.ledger.block import BlockHeader, TreeHead
from civicledger.ledger.receipt import Receipt
from civicledger.node.chain import StoredTx
from civicledger.node.verify import VerifyReport


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def fields(rows: Sequence[tuple[str, str | Text]]) -> Text:
    """``label  value`` lines with aligned values; long values are never folded, so a hash or
    JSON can be copied whole (the console soft-wraps)."""
    width = max((len(label) for label, _ in rows), default=0) + 2
    lines = Text()
    for number, (label, value) in enumerate(rows):
        if number:
            lines.append("\n")
        lines.append(label.ljust(width), style="bold")
        lines.append(value)
    return lines


def status_text(status: str) -> Text:
    style = {
        "ok": "bold green",
        "failed": "bold red",
        "rejected": "bold magenta",
        "refused": "bold yellow",  # a verifier said no, as the demo meant it to
    }.get(status, "")
    return Text(status, style=style)


def receipt(console: Console, item: Receipt) -> None:
    rows: list[tuple[str, str | Text]] = [
        ("status", status_text(item.status)),
        ("tx", item.tx_id),
        ("block", f"{item.height} (index {item.index}, log leaf {item.leaf_index})"),
    ]
    if not item.ok:
        rows.append(("reason", Text(f"{item.reason}: {item.message}", style="red")))
    for event in item.events:
        rows.append(("event", f"{event.contract}.{event.name} {compact_json(event.data)}"))
    if item.result is not None:
        rows.append(("result", compact_json(item.result)))
    console.print(fields(rows))


def header(console: Console, head: BlockHeader) -> None:
    console.print(
        fields(
            [
                ("height", str(head.height)),
                ("hash", head.hash().hex()),
                ("prev_hash", head.prev_hash),
                ("chain_id", head.chain_id),
                ("time_ms", str(head.time_ms)),
                ("tx_count", str(head.tx_count)),
                ("tx_root", head.tx_root),
                ("receipts_root", head.receipts_root),
                ("state_hash", head.state_hash),
                ("log_size", str(head.log_size)),
                ("log_root", head.log_root),
                ("producer", head.producer),
            ]
        )
    )


def transactions(console: Console, txs: Sequence[StoredTx]) -> None:
    if not txs:
        console.print("no transactions")
        return
    table = Table("#", whole_column("tx id", 64), "call", "status")
    for stored in txs:
        body, result = stored.tx.body, stored.receipt
        status = status_text(result.status)
        if not result.ok:
            status.append(f" ({result.reason})", style="red")
        table.add_row(
            str(result.index), stored.tx.tx_id_hex, f"{body.contract}.{body.method}", status
        )
    console.print(table)


def whole_column(header: str, width: int) -> Column:
    """A table column for ids and DIDs: never shortened with an ellipsis, so it can be copied."""
    return Column(header, min_width=width, no_wrap=True)


def tree_head(head: TreeHead) -> str:
    return f"height {head.height}, size {head.tree_size}, root {head.root_hash}"


def verify_report(console: Console, report: VerifyReport) -> None:
    console.print(Text("chain verified", style="bold green"))
    console.print(
        fields(
            [
                ("chain", report.chain_id),
                ("height", str(report.height)),
                ("transactions", str(report.transactions)),
                ("state hash", report.state_hash),
                ("log size", str(report.log_size)),
                ("log root", report.log_root),
            ]
        )
    )
