"""What the server tells its operators: Prometheus metrics (``metrics``) and structlog set-up (``logs``).

Layer 1: may import ``tusd_py.model`` only, so every layer can count and log.
"""
