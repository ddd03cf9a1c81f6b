"""Counting what coordination costs in a test: conformance/coordination_counts.py (shared with `make bench`),
and on the client's side the Redis commands tusd-py's clients encode (redis-py's ``pack_command``,
which every command, pipelined or not, goes through), by name.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

from conformance.coordination_counts import (
    OBSERVER,
    Counted,
    app_statements,
    enable_statement_stats,
    redis_processed,
    reset_statements,
    settled,
)

__all__ = [
    "OBSERVER", "Counted", "RedisCommands", "app_statements", "enable_statement_stats", "redis_processed",
    "reset_statements", "settled",
]  # fmt: skip


class RedisCommands:
    """The commands this process's redis-py clients send, by name, while :meth:`counting`."""

    def __init__(self) -> None:
        self.sent: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def counting(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter[str]]:
        original = AbstractConnection.pack_command

        def pack_command(conn: AbstractConnection, *args: Any) -> list[bytes]:
            name = (args[0].decode() if isinstance(args[0], bytes) else str(args[0])).upper()
            if name == "EVAL":
                name += " " + str(args[1]).split("redis.call(", 1)[1][:20]
            self.sent[name] += 1
            return original(conn, *args)

        monkeypatch.setattr(AbstractConnection, "pack_command", pack_command)
        try:
            yield self.sent
        finally:
            monkeypatch.setattr(AbstractConnection, "pack_command", original)
