"""Per-user quotas: the ledger interface and the in-memory ledger (``ledger``; the host service keeps
one for the workers of ``--processes N``) and the PostgreSQL ledger shared by several instances
(``postgres``).

Layer 3: may import ``model``, ``protocol``, ``telemetry``, ``database`` and the storage interface.
"""
