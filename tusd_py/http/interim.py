"""Interim (1xx) responses, which aiohttp has no API for.

aiohttp writes ``100 Continue`` itself, straight to the request's writer before the handler runs
(``web_urldispatcher._default_expect_handler``, HTTP/1.1 only) and then resets the writer's
``output_size``, so the final response is counted from zero. An interim response is written the
same way here: by then any ``100 Continue`` the client asked for is already out, so the order the
resumable-upload draft requires ("the server MUST NOT omit the 100 (Continue) response because it
has sent an interim response with the 104 status code") holds by construction.

Only on HTTP/1.1, and only before the final response has started: HTTP/1.0 has no 1xx
responses (RFC 9110 section 15.2: "a server MUST NOT send a 1xx response to an HTTP/1.0 client").
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import HttpVersion11, web

from tusd_py.model.request_keys import STARTED_RESPONSE

_FIELD_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_FIELD_VALUE = re.compile(r"[\x20-\x7e]{0,4096}")


def interim_bytes(status: int, reason: str, headers: Mapping[str, str]) -> bytes:
    """The wire form of one interim response; refuses anything that could split the message."""
    if not 100 <= status <= 199 or status == 101:
        raise ValueError(f"not an interim status: {status}")
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in headers.items():
        if not _FIELD_NAME.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise ValueError(f"header {name!r} cannot go into an interim response")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def send_interim(request: web.Request, status: int, reason: str, headers: Mapping[str, str]) -> bool:
    """Write an interim response now; False when this request cannot take one."""
    if request.version != HttpVersion11 or request.get(STARTED_RESPONSE) is not None:
        return False
    transport = request.transport
    if transport is None or transport.is_closing():
        return False
    await request.writer.write(interim_bytes(status, reason, headers))
    request.writer.output_size = 0  # as aiohttp does after 100 Continue: the final response counts from 0
    return True
