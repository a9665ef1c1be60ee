"""The portal's public-works pages (``/works``): works contracts with their escrow, split,
approvals and direct payouts, late-payment alerts, and a worker's "check my wage" page. See
``pages`` for the invariants."""

from civicledger.web.works.pages import SplitBar, section, split_bars

__all__ = ["SplitBar", "section", "split_bars"]
