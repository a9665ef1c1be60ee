"""Several agency nodes over a NATS JetStream stream: ordering, attestation, finality.

``config.py`` (the cluster file), ``stream.py`` (JetStream plumbing), ``blocks.py`` (the pure,
deterministic cutter: stream messages in, blocks out), ``attest.py`` (attestations, finality,
divergence), ``node.py`` (``ClusterNode``), ``snapshot.py`` (repair from a peer's database).
``nats_servers.py`` and ``local.py`` start real servers and local clusters for trials.
See ``docs/cluster.md``.
"""
