"""Identity: DIDs, verifiable credentials, revocation and selective disclosure (issue 4).

No personal data on the ledger: only DIDs of agencies, hashes and status-list anchors.
"""
