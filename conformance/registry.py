"""The check registry: one function per spec requirement, tagged with the extensions it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.client import Client


class CheckFailed(AssertionError):
    pass


@dataclass(frozen=True)
class Check:
    name: str
    requirement: str  # the spec rule, in a few words
    requires: tuple[str, ...]
    run: Callable[[Client], None]


CHECKS: list[Check] = []


def check(
    name: str, requirement: str, requires: tuple[str, ...] = ()
) -> Callable[[Callable[[Client], None]], Callable[[Client], None]]:
    def register(func: Callable[[Client], None]) -> Callable[[Client], None]:
        CHECKS.append(Check(name, requirement, requires, func))
        return func

    return register


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_status(actual: int, *wanted: int, what: str = "") -> None:
    if actual not in wanted:
        shown = " or ".join(map(str, wanted))
        raise CheckFailed(f"{what + ': ' if what else ''}expected status {shown}, got {actual}")
