"""The bounded memory shared by owner, info-version, info-cache and rate memories."""

from __future__ import annotations

import pytest

from tusd_py.model.bounded import BoundedLRU


def test_the_least_recently_used_key_goes_first() -> None:
    memory: BoundedLRU[str, int] = BoundedLRU(2)
    memory.put("a", 1)
    memory.put("b", 2)
    assert memory.get("a") == 1  # "a" is now the most recent
    memory.put("c", 3)
    assert "b" not in memory and memory.get("a") == 1 and memory.get("c") == 3 and len(memory) == 2


def test_put_refreshes_and_pop_forgets() -> None:
    memory: BoundedLRU[str, int] = BoundedLRU(2)
    memory.put("a", 1)
    memory.put("b", 2)
    memory.put("a", 10)
    memory.put("c", 3)
    assert memory.get("a") == 10 and "b" not in memory
    assert memory.pop("a") == 10 and memory.pop("a") is None and memory.get("a") is None


def test_a_memory_holds_at_least_one_key() -> None:
    with pytest.raises(ValueError):
        BoundedLRU[str, int](0)
