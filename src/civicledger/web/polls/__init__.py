"""The portal's poll pages (``/polls``): the list of polls and each poll's live dashboard
(turnout over time, turnout per district, the live tally of open polls, the verified result of
secret polls). See ``pages`` for the invariants and docs/portal.md for the routes.
"""

from civicledger.web.polls.pages import (
    CHART_SIZE,
    Chart,
    ChartPoint,
    key_fingerprint,
    percent,
    section,
    turnout_chart,
)

__all__ = [
    "CHART_SIZE",
    "Chart",
    "ChartPoint",
    "key_fingerprint",
    "percent",
    "section",
    "turnout_chart",
]
