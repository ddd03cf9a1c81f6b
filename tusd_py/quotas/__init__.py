"""Per-user quotas: the ledger interface with its in-memory and SQLite-backed forms (``ledger``) and the
PostgreSQL ledger shared by several instances (``postgres``).

Layer 3: may import ``model``, ``protocol``, ``telemetry``, ``database`` and the storage interface.
"""
