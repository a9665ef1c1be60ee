"""``civic node run``: the city's node with its HTTP API and portal, until interrupted."""

from __future__ import annotations

from typing import Annotated

import typer

from civicledger.agency.desk import node_desk
from civicledger.api.server import listen, serve, socket_url
from civicledger.city import NODE_KEY, load_key
from civicledger.cli._common import out, passphrase_from_env, state
from civicledger.node.embedded import EmbeddedNode
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
) -> None:
    """Run the node: the JSON API under /api/v1, the portal at /, metrics at /metrics."""
    layout = state(ctx).city.require()
    passphrase = passphrase_from_env(passphrase_env)
    node_key = load_key(layout.keystore, NODE_KEY, passphrase)
    sock = listen(host, port)
    with EmbeddedNode(layout.data_path, node_key) as node:
        url = socket_url(sock)
        console = out()
        console.print(
            f"{node.chain.genesis.city} ({node.chain.chain_id}), block {node.chain.height}"
        )
        console.print(f"portal  {url}/")
        console.print(f"API     {url}/api/v1  (OpenAPI: {url}/docs)")
        console.print("Ctrl-C stops the node.")
        desk = node_desk(layout, node, served_at=url, public_url=public_url, passphrase=passphrase)
        serve(create_site(node, identity=desk), sock)
