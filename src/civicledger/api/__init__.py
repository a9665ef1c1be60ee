"""The HTTP API: a thin FastAPI layer over one running node (see docs/api.md)."""
