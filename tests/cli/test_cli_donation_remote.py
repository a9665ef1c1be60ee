"""``civic donation ... --node URL``: the bank records a donation and a donor traces it through
a served node's HTTP API (receipts proven by the client), without opening the ledger."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_helpers import assert_one_error_line, new_runner

from civicledger.agency.desk import IdentityDesk
from civicledger.agency.ledger import NodeLedger
from civicledger.api.app import create_app
from civicledger.api.server import BackgroundServer
from civicledger.city import NODE_KEY, load_key
from civicledger.node.embedded import EmbeddedNode
from donation_samples import BANK, CAMPAIGN, donation_city, fund_campaign


def test_donate_and_trace_over_http(tmp_path: Path) -> None:
    civic = new_runner()
    layout = donation_city(tmp_path / "city")
    with EmbeddedNode(layout.data_path, load_key(layout.keystore, NODE_KEY, None)) as node:
        ledger = NodeLedger(layout, node)
        fund_campaign(ledger)
        desk = IdentityDesk(ledger, domain="https://remote.example")
        with BackgroundServer(create_app(node, identity=desk)) as server:
            base = ("--dir", layout.root, "donation")
            donated = civic(
                *base, "donate", CAMPAIGN, "7000", "--bank-reference", "remote transfer 1",
                "--key", BANK, "--node", server.url,
            )  # fmt: skip
            assert donated.exit_code == 0, donated.output
            assert "donation 3" in donated.stdout
            found = re.search(r"receipt secret (\S+)", donated.stdout)
            assert found is not None
            traced = civic(
                *base, "trace", "--receipt", found.group(1), "--json", "--node", server.url
            )
            assert traced.exit_code == 0, traced.output
            tree = json.loads(traced.stdout)
            assert (tree["donation"]["amount"], tree["unallocated"]) == (7_000, 7_000)
            shown = civic(*base, "show", CAMPAIGN, "--node", server.url)
            assert json.loads(shown.stdout)["campaign"]["balance"] == 47_000
            again = civic(
                *base, "donate", CAMPAIGN, "1", "--bank-reference", "remote transfer 1",
                "--key", BANK, "--node", server.url,
            )  # fmt: skip
            assert_one_error_line(again, "duplicate_bank")
