"""Run the CLI as ``python -m civicledger.cli``."""

from civicledger.cli.app import main

main()
