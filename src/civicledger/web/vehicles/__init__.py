"""The portal's used-car pages (``/vehicles``): look up a VIN, the history report with its
mileage chart and QR code, and verifying a printed report. See ``pages`` for the invariants."""

from civicledger.web.vehicles.pages import (
    CHART_SIZE,
    EXPLAINED_REASONS,
    MileageChart,
    mileage_chart,
    section,
)

__all__ = ["CHART_SIZE", "EXPLAINED_REASONS", "MileageChart", "mileage_chart", "section"]
