"""Prometheus metrics: ``instruments`` (what is counted, from any layer) and ``endpoint``
(``GET /metrics``: the key or token check, the database collector, the exposition)."""
