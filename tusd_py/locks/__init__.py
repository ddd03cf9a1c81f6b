"""Per-upload locks: the ``Locker`` contract and the in-process locker (``locker``), the Redis one for
several instances (``redis_locker``). Each lock yields a fence the storage commit checks.

Layer 3: may import ``model``, ``telemetry`` and ``config``; knows nothing of uploads or HTTP.
"""
