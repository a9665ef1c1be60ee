"""The donations portal section (기부금 관리): campaigns, a campaign's flows, trace my donation."""

from civicledger.web.donations.pages import section

__all__ = ["section"]
