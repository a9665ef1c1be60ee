"""``civic proof``: export inclusion and consistency proofs, and verify proof files offline.

``civic proof TXID`` is short for ``civic proof inclusion TXID``. Verification reads only the
proof file and a trust anchor (the genesis producers, or ``--trust`` keys): it never opens the
ledger, so a citizen can run it anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from civicledger.city import CityDir
from civicledger.cli import _render
from civicledger.cli._common import hex_id, out, state, warning_line
from civicledger.cli.ledger import open_chain
from civicledger.crypto.keys import PublicKey
from civicledger.errors import EncodingError, ProofError
from civicledger.ledger.block import SignedTreeHead
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


class _ProofGroup(TyperGroup):
    """Routes ``civic proof TXID ...`` to the ``inclusion`` command."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["inclusion", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_ProofGroup,
    help="Export proofs (civic proof TXID) and verify proof files offline.",
    no_args_is_help=True,
    # Options such as --out may come before the TXID; they belong to the inclusion command.
    context_settings={"ignore_unknown_options": True},
)

_Out = Annotated[
    Path | None, typer.Option("--out", metavar="FILE", help="Write here instead of stdout.")
]


@app.command("inclusion")
def inclusion(
    ctx: typer.Context,
    txid: Annotated[str, typer.Argument(metavar="TXID", help="Transaction id (64 hex digits).")],
    output: _Out = None,
    height: Annotated[
        int | None,
        typer.Option(min=0, help="Prove against the tree head of this block [default: latest]."),
    ] = None,
) -> None:
    """Export a proof that a transaction and its receipt are in the city's log."""
    tx_id = hex_id(txid, "TXID")
    with open_chain(state(ctx).city) as chain:
        bundle = chain.inclusion_proof(tx_id, height)
    _write(bundle, output)
    if output is not None:
        head = bundle.tree_head.tree_head
        out().print(
            f"wrote inclusion proof of {txid} (leaf {bundle.leaf_index} of {bundle.tree_size}, "
            f"tree head at block {head.height}) to {output}"
        )


@app.command("consistency")
def consistency(
    ctx: typer.Context,
    old: Annotated[int, typer.Argument(min=0, help="The older block height.")],
    new: Annotated[
        int | None, typer.Argument(min=0, help="The newer block height [default: latest].")
    ] = None,
    output: _Out = None,
) -> None:
    """Export a proof that the log at block NEW extends the log at block OLD."""
    with open_chain(state(ctx).city) as chain:
        bundle = chain.consistency_proof(old, new)
    _write(bundle, output)
    if output is not None:
        old_head, new_head = bundle.old_head.tree_head, bundle.new_head.tree_head
        out().print(
            f"wrote consistency proof from block {old_head.height} (size {old_head.tree_size}) "
            f"to block {new_head.height} (size {new_head.tree_size}) to {output}"
        )


def _write(bundle: InclusionBundle | ConsistencyBundle, output: Path | None) -> None:
    text = json.dumps(bundle.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command("verify")
def verify(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A proof file from `civic proof`."),
    ],
    genesis: Annotated[
        Path | None,
        typer.Option(
            metavar="GENESIS.JSON",
            help="Trust the producers in this genesis file [default: the city dir's].",
        ),
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option(metavar="DID", help="Trust this tree-head signer (repeatable)."),
    ] = None,
) -> None:
    """Verify a proof file offline against the city's block producers."""
    if genesis is not None and trust:
        raise typer.BadParameter("give either --genesis or --trust, not both")
    bundle = load_bundle(file.read_bytes())
    anchor = _trust_anchor(ctx, genesis, trust or [])
    trusted = None if anchor is None else anchor.signers
    heads = (
        [bundle.tree_head]
        if isinstance(bundle, InclusionBundle)
        else [bundle.old_head, bundle.new_head]
    )
    if anchor is not None:
        anchor.check_chain(heads)
    if isinstance(bundle, InclusionBundle):
        tx, receipt = verify_inclusion_bundle(bundle, trusted)
        rows: list[tuple[str, str | Text]] = [
            ("transaction", tx.tx_id_hex),
            ("call", f"{tx.body.contract}.{tx.body.method}"),
            ("status", _render.status_text(receipt.status)),
            ("signer", tx.body.signer),
            ("block", str(receipt.height)),
            ("leaf index", str(bundle.leaf_index)),
            ("tree size", str(bundle.tree_size)),
            ("tree head", _render.tree_head(bundle.tree_head.tree_head)),
        ]
        if not receipt.ok:
            rows.insert(3, ("reason", f"{receipt.reason}: {receipt.message}"))
        title = "inclusion proof verified"
    else:
        verify_consistency_bundle(bundle, trusted)
        rows = [
            ("old tree head", _render.tree_head(bundle.old_head.tree_head)),
            ("new tree head", _render.tree_head(bundle.new_head.tree_head)),
            ("chain", bundle.new_head.tree_head.chain_id),
        ]
        title = "consistency proof verified: the newer log extends the older one"
    console = out()
    console.print(Text(title, style="bold green"))
    signers = sorted({head.tree_head.signer for head in heads})
    rows.append(("signed by", ", ".join(signers)))
    rows.append(
        ("trusted by", anchor.description if anchor else Text("NOTHING (see warning)", "bold red"))
    )
    console.print(_render.fields(rows))
    if anchor is None:
        warning_line(
            "the tree head's signer was NOT checked against a trust anchor: the proof is "
            "internally consistent, but anyone could have signed it. Verify with --genesis "
            "GENESIS.JSON or --trust DID."
        )


class _Anchor:
    """Who may sign tree heads, and where that came from."""

    def __init__(self, signers: frozenset[str], description: str, chain_id: str | None) -> None:
        self.signers = signers
        self.description = description
        self.chain_id = chain_id

    def check_chain(self, heads: list[SignedTreeHead]) -> None:
        for head in heads:
            if self.chain_id is not None and head.tree_head.chain_id != self.chain_id:
                raise ProofError(
                    f"the tree head is for chain {head.tree_head.chain_id!r}; "
                    f"the trusted genesis is for {self.chain_id!r}"
                )


def _trust_anchor(ctx: typer.Context, genesis: Path | None, trust: list[str]) -> _Anchor | None:
    if trust:
        for did in trust:
            _check_did(did)
        return _Anchor(frozenset(trust), "the keys given with --trust", None)
    path = genesis
    if path is None:
        default = state(ctx).city.genesis_path
        if not default.is_file():
            return None
        path = default
    loaded = Genesis.load(path)
    return _Anchor(
        frozenset(loaded.producers),
        f"the producers of {loaded.chain_id!r} in {path}",
        loaded.chain_id,
    )


def _check_did(did: str) -> None:
    try:
        PublicKey.from_did(did)
    except EncodingError as e:
        raise typer.BadParameter(e.message, param_hint="--trust") from e


def prove_tx(layout: CityDir, tx_id: str, output: Path | None = None) -> tuple[SignedTx, Receipt]:
    """A transaction's inclusion proof from the local ledger, verified as a citizen would: from
    the bundle alone against the genesis producers; written to ``output`` if given."""
    with open_chain(layout) as chain:
        bundle = chain.inclusion_proof(hex_id(tx_id, "transaction id"))
    if output is not None:
        _write(bundle, output)
    trusted = frozenset(Genesis.load(layout.genesis_path).producers)
    return verify_inclusion_bundle(bundle, trusted)
