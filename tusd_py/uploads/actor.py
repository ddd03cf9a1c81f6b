"""Who asks for an upload operation: a plain value, so the operation layer never needs HTTP.

* ``CLIENT``: a request with the gate's verdict. ``user_id`` None means auth is off: then the one
  anonymous client owns every upload (what tus without auth is).
* ``LINK``: a signed download link, which stands in for the owner of the one upload it names.
* ``SERVER``: the server's own policy (the expiry sweep, scheduled cleanup, start-up recovery,
  the processing pipeline): no owner and no switch apply; it never interrupts a client's request.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    CLIENT = "client"
    LINK = "link"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class Actor:
    role: Role
    user_id: str | None = None
    request_id: str | None = None

    def owns(self, owner: str | None) -> bool:
        """Whether this actor may see an upload whose owner is ``owner``. With auth on, an upload
        made while auth was off (no owner) belongs to no client who can ask for it."""
        return self.sees_every_upload() or owner == self.user_id

    def sees_every_upload(self) -> bool:
        """The server's policy, a link (checked by its signature), or the one client when auth is off."""
        return self.role is not Role.CLIENT or self.user_id is None


SERVER = Actor(Role.SERVER)


def client(user_id: str | None, request_id: str | None = None) -> Actor:
    return Actor(Role.CLIENT, user_id, request_id)


def link(request_id: str | None = None) -> Actor:
    return Actor(Role.LINK, None, request_id)
