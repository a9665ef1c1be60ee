"""The contract framework: declared transactions and queries, policies, state views, events."""

from civicledger.contracts.base import (
    AGENCY_MEMBER,
    PUBLIC,
    ROOT,
    Args,
    Contract,
    QueryContext,
    TxContext,
    has_role,
    query,
    root_or_own_agency,
    transaction,
)

__all__ = [
    "AGENCY_MEMBER",
    "PUBLIC",
    "ROOT",
    "Args",
    "Contract",
    "QueryContext",
    "TxContext",
    "has_role",
    "query",
    "root_or_own_agency",
    "transaction",
]
