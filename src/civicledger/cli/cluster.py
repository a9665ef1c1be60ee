"""``civic cluster up`` / ``civic cluster status``: a trial cluster on this machine.

``up`` lays out a trial city whose genesis lists one producer key per node, starts 3 NATS servers
and N ``civic node run --cluster`` processes on 127.0.0.1, prints where they answer, and runs until
Ctrl-C, then stops everything. The work is in ``node.cluster.local.LocalCluster``.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from civicledger.cli._common import out
from civicledger.node.cluster.local import LocalCluster, read_manifest

app = typer.Typer(help="A trial cluster: 3 NATS servers and N agency nodes on 127.0.0.1.")

DEFAULT_CLUSTER_DIR = Path("civic-cluster")

Directory = Annotated[
    Path,
    typer.Option("--dir", help="The trial cluster's directory (created on first `up`)."),
]


@app.command("up")
def up(
    nodes: Annotated[int, typer.Option(min=1, max=16, help="How many agency nodes.")] = 3,
    directory: Directory = DEFAULT_CLUSTER_DIR,
    port_base: Annotated[
        int | None,
        typer.Option(
            min=1024, max=65000, help="First node's HTTP port (then +1 each); default: free ports."
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(min=1, help="Attestations needed for finality [default: a majority]."),
    ] = None,
) -> None:
    """Start the trial cluster and run until Ctrl-C (an existing --dir is started again)."""
    cluster = LocalCluster(directory, nodes, port_base=port_base, quorum=quorum)
    console = out()
    console.print(f"starting 3 NATS servers and {len(cluster.nodes)} nodes in {directory} ...")
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        cluster.start()
        console.print(_table(_rows([(n, cluster.url(n)) for n in cluster.node_names()])))
        console.print("NATS    " + " ".join(cluster.nats.urls))
        keys = cluster.city_dir / "keys"
        console.print(f"client keys (root; city-hall and clerk-NN, role notary) in {keys}")
        console.print("Ctrl-C stops every node and NATS server.")
        while not stopping.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping ...")
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)


@app.command("status")
def status(directory: Directory = DEFAULT_CLUSTER_DIR) -> None:
    """Each node's height, final height and hashes, as the node reports them."""
    manifest = read_manifest(directory)
    out().print(_table(_rows([(str(n["name"]), str(n["url"])) for n in manifest["nodes"]])))


Row = tuple[str, str, dict[str, Any] | None]
"""A node's name, URL and status document (None: it did not answer)."""


def _rows(nodes: list[tuple[str, str]]) -> list[Row]:
    rows: list[Row] = []
    for name, url in nodes:
        try:
            response = httpx.get(url + "/api/v1/cluster/status", timeout=3.0)
            response.raise_for_status()
            rows.append((name, url, response.json()))
        except (httpx.HTTPError, ValueError):
            rows.append((name, url, None))
    return rows


def _table(rows: list[Row]) -> Table:
    table = Table(
        "node", "key", "URL", "height", "final height", "header", "serving", "faulty peers"
    )
    for name, url, doc in rows:
        if doc is None:
            table.add_row(name, "-", url, "-", "-", "-", "down", "-")
            continue
        faulty = ", ".join(_short(str(f.get("node", ""))) for f in doc.get("faulty") or []) or "-"
        serving = "yes" if doc.get("serving") else ("diverged" if doc.get("diverged") else "no")
        table.add_row(
            name,
            _short(str(doc.get("node", ""))),
            url,
            str(doc.get("height", "-")),
            str(doc.get("final_height", "-")),
            str(doc.get("header_hash", ""))[:16],
            serving,
            faulty,
        )
    return table


def _short(did: str) -> str:
    """A did:key shortened for a table: its method prefix and the last 8 characters."""
    return did if len(did) <= 24 else f"{did[:8]}…{did[-8:]}"
