"""Request ids made by the request middleware: unique within a process and across forked workers."""

from __future__ import annotations

import os

from tusd_py.http.middlewares import _REQUEST_ID, _request_ids


def test_request_ids_are_unique_and_valid() -> None:
    ids = [_request_ids.next() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(_REQUEST_ID.fullmatch(i) for i in ids)


def test_a_forked_worker_gets_its_own_prefix() -> None:
    parent = _request_ids.next()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, _request_ids.next().encode())
        os._exit(0)
    os.close(write)
    try:
        child = os.read(read, 64).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert child and child[:8] != parent[:8]
