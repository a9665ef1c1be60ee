"""The portal's local-currency pages (``/currency``): the treasury view with its daily charts,
the wallet view, the merchant view and pay by QR. See ``pages`` for the invariants and
docs/portal.md for the routes.
"""

from civicledger.web.currency.pages import (
    CHART_DAYS,
    CHART_SIZE,
    EXPLAINED_REASONS,
    PAY_BODY_LIMIT,
    PAY_PATH,
    Bar,
    BarChart,
    bar_chart,
    pay_command,
    section,
)

__all__ = [
    "CHART_DAYS",
    "CHART_SIZE",
    "EXPLAINED_REASONS",
    "PAY_BODY_LIMIT",
    "PAY_PATH",
    "Bar",
    "BarChart",
    "bar_chart",
    "pay_command",
    "section",
]
