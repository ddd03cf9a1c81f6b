"""The host service's messages: one JSON array per line over a UNIX stream socket.

A request is ``[op, seq, args...]``; the service answers requests that need an answer with
``[reply, seq, values...]`` and pushes ``["ask", token]`` (a newer request wants that hold's
lock) unprompted. Lines, JSON and small integers keep a round trip near 100 µs in Python and
readable with ``socat`` when something goes wrong; the socket is private to the run (mode 0700
directory), so no message is authenticated.

Requests (client -> service):

=========================================  ==================================================
``["L", seq, id, timeout_ms, mode]``       lock ``id``: mode ``"w"`` waits (asking the holder
                                           to let go), ``"t"`` tries once. -> ``G``/``B``
``["X", seq]``                             forget the lock request ``seq`` (its caller gave up)
``["U", token]``                           release the hold ``token`` (no answer)
``["C", seq, token]``                      is the hold ``token`` still this peer's? -> ``Y``/``N``
``["P", seq]``                             liveness (any message counts) -> ``Y``
``["QR", seq, id, owner, bytes]``          reserve a new upload's claim -> ``Y``/``Q``
``["QG", seq, id, owner, bytes]``          grow a claim -> ``Y``/``Q``
``["QF", seq, id, owner, bytes]``          settle a finished upload's claim -> ``Y``
``["QD", seq, id]``                        release a claim -> ``Y``
``["QU", seq, user]``                      usage -> ``["Y", seq, bytes, unfinished]``
``["RB", seq]``                            may I rebuild the ledger? -> ``["Y", seq, 1|0]``
``["RA", seq, [[id, owner, bytes, unfinished], ...]]``  adopt claims (the rebuilder) -> ``Y``
``["RE", seq]``                            the rebuild is complete -> ``Y``
=========================================  ==================================================

Answers: ``["G", seq, token, contended]`` granted, ``["B", seq, timed_out]`` busy (423),
``["Y", seq, ...]`` yes, ``["N", seq]`` no, ``["Q", seq, limit, reason]`` quota exceeded (413).
The service greets every connection with ``["H", lease_seconds]``.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(list)

#: Seconds a worker may stay silent before the service takes its locks (it pings every quarter).
DEFAULT_LEASE = 10.0
#: Longest line either side accepts (an adopt batch of claims is the largest message).
LINE_LIMIT = 4 * 1024 * 1024
#: Claims per adopt message while rebuilding the quota ledger.
ADOPT_BATCH = 2000


def encode(message: list[Any]) -> bytes:
    return _encoder.encode(message) + b"\n"


def decode(line: bytes) -> list[Any]:
    message: list[Any] = _decoder.decode(line)
    return message
