"""Which switch (an enabled tus extension) each upload operation needs, whoever asks for it. Pure.

The operator's ``--disable-extensions`` names tus extensions; every way in (tus, the resumable-upload
draft, the Recordings API, cleanup) performs the same operations, so the switch is a property of the
operation, not of the protocol that carried it: a draft POST is a creation, an API DELETE is a
termination. The operation layer (``tusd_py/uploads/operations.py``) asks :func:`switches_for`
before it loads anything, and refuses with :func:`switched_off`.

A whole operation switched off answers 405 (as tus answers a method it does not route); a feature
of an allowed operation switched off (a body at creation, a deferred length, an unfinished final)
answers 400, naming the switch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tusd_py.model.error_codes import ErrorCode
from tusd_py.model.errors import TusError


class Op(enum.StrEnum):
    """The upload operations; every surface is one of these (or several in a row)."""

    CREATE = "create"
    APPEND = "append"
    READ = "read"  # HEAD, GET, a signed link, an API detail
    FINISH = "finish"
    DELETE = "delete"
    DECLARE_LENGTH = "declare length"
    CONCATENATE = "concatenate"


@dataclass(frozen=True, slots=True)
class Switch:
    name: str  # the tus extension name, as --disable-extensions spells it
    whole: bool  # True: without it the operation does not exist here (405)


#: What each operation always needs.
_NEEDS: dict[Op, tuple[Switch, ...]] = {
    Op.CREATE: (Switch("creation", whole=True),),
    Op.APPEND: (),
    Op.READ: (),
    Op.FINISH: (),
    Op.DELETE: (Switch("termination", whole=True),),
    Op.DECLARE_LENGTH: (Switch("creation-defer-length", whole=False),),
    Op.CONCATENATE: (Switch("creation", whole=True), Switch("concatenation", whole=True)),
}


def switches_for(
    op: Op, *, with_body: bool = False, deferred_length: bool = False, unfinished_partials: bool = False
) -> tuple[Switch, ...]:
    """The switches ``op`` needs with these features, whole-operation switches first."""
    needs = list(_NEEDS[op])
    if op is Op.CREATE and with_body:
        needs.append(Switch("creation-with-upload", whole=False))
    if op in (Op.CREATE, Op.APPEND) and deferred_length:
        needs.append(Switch("creation-defer-length", whole=False))
    if op is Op.CONCATENATE and unfinished_partials:
        needs.append(Switch("concatenation-unfinished", whole=False))
    return tuple(needs)


def switched_off(op: Op, switch: Switch) -> TusError:
    """The refusal for ``op`` when ``switch`` is off (405 for the whole operation, 400 for a feature)."""
    if switch.whole:
        return TusError(
            405,
            f"{op} is switched off on this server (extension {switch.name!r} is disabled)",
            code=ErrorCode.SWITCHED_OFF,
        )
    return TusError(
        400, f"this request needs {switch.name!r}, which is disabled on this server", code=ErrorCode.SWITCHED_OFF
    )
