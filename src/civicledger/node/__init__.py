"""The embedded node: mempool, block producer and commit pipeline over one Chain."""
