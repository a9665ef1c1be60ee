"""What an agency runs off the ledger, from its city directory: issuing credentials, verifying
presentations, reaching the ledger through the CLI's embedded node or a running node.

Above ``services`` (it uses their contracts' helpers and domain types) and ``node`` (it commits
transactions); below ``cli``, ``api`` and ``web``, which share it.
"""
