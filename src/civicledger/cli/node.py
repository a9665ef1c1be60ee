"""``civic node run``: the city's node with its HTTP API and portal, until interrupted."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from civicledger.agency.desk import node_desk
from civicledger.api.server import listen, serve, socket_url
from civicledger.city import NODE_KEY, load_key
from civicledger.cli._common import out, passphrase_from_env, state
from civicledger.node.cluster.config import ClusterConfig
from civicledger.node.cluster.node import repair, start_or_repair
from civicledger.node.embedded import EmbeddedNode
from civicledger.node.protocol import Node
from civicledger.web.site import create_site

app = typer.Typer(help="Run the city's node.", no_args_is_help=True)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

Host = Annotated[
    str,
    typer.Option(help="Address to listen on; 0.0.0.0 exposes the node to the network."),
]
Port = Annotated[int, typer.Option(min=0, max=65535, help="TCP port; 0 picks a free one.")]


@app.command("run")
def run(
    ctx: typer.Context,
    host: Host = DEFAULT_HOST,
    port: Port = DEFAULT_PORT,
    passphrase_env: Annotated[
        str | None,
        typer.Option(
            metavar="VAR", help="Passphrase of an encrypted node key, from this variable."
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="The address residents reach this node at (https://...): the identity "
            "verifier's domain and the base of status-list URLs.",
        ),
    ] = None,
    cluster: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Run as a node of a NATS JetStream cluster described by this JSON file "
            "(see docs/cluster.md); without it the node runs alone.",
        ),
    ] = None,
) -> None:
    """Run the node: the JSON API under /api/v1, the portal at /, metrics at /metrics."""
    layout = state(ctx).city.require()
    passphrase = passphrase_from_env(passphrase_env)
    config = None if cluster is None else ClusterConfig.load(cluster)
    node_key = load_key(
        layout.keystore, NODE_KEY if config is None else config.node_key, passphrase
    )
    sock = listen(host, port)
    with contextlib.ExitStack() as stack:
        node: Node
        if config is None:
            node = stack.enter_context(EmbeddedNode(layout.data_path, node_key))
        else:
            node = stack.enter_context(start_or_repair(layout.data_path, node_key, config))
        url = socket_url(sock)
        console = out()
        console.print(
            f"{node.chain.genesis.city} ({node.chain.chain_id}), block {node.chain.height}"
            + ("" if config is None else f", cluster over {', '.join(config.nats_urls)}")
        )
        console.print(f"portal  {url}/")
        console.print(f"API     {url}/api/v1  (OpenAPI: {url}/docs)")
        console.print("Ctrl-C stops the node.")
        desk = node_desk(layout, node, served_at=url, public_url=public_url, passphrase=passphrase)
        serve(create_site(node, identity=desk), sock)


@app.command("repair")
def repair_node(
    ctx: typer.Context,
    peer: Annotated[
        str, typer.Option("--from", metavar="URL", help="A healthy peer's base URL (http://...).")
    ],
    cluster: Annotated[
        Path, typer.Option(metavar="FILE", help="The cluster file this node runs with.")
    ],
) -> None:
    """Replace this (stopped) node's ledger with a peer's snapshot, once the snapshot replays
    from genesis and its head is attested by a quorum of agencies in the attest stream."""
    layout = state(ctx).city.require()
    info = repair(layout.data_path, peer, ClusterConfig.load(cluster))
    out().print(
        f"repaired from {peer}: block {info.height} ({info.header_hash}); "
        f"the node resumes at stream sequence {info.stream_through + 1}"
    )
