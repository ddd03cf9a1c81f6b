"""The state database: connections and migrations for SQLite and PostgreSQL (``connection``,
``migrations``) and the retry of state writes while it is down (``reconcile``).

Layer 2: may import ``model`` and ``config`` only.
"""
