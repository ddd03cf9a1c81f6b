"""Coordination of the worker processes of one host (``--processes N`` without Redis or PostgreSQL).

The supervisor (tusd_py/server/processes.py) runs :class:`~tusd_py.host.service.HostService` in a thread:
one asyncio server on a UNIX socket in the run's private directory, which holds the upload locks
(the in-process locker's semantics, with fencing tokens and a liveness lease per worker) and the
per-user quota ledger. Each worker keeps one connection to it (:mod:`tusd_py.host.client`) and
uses it through :class:`~tusd_py.host.locker.HostLocker` and
:class:`~tusd_py.host.quotas.HostQuotaLedger`. Recordings and jobs are shared through the SQLite
state file in WAL mode, jobs claimed with a lease (tusd_py/pipeline/sqlite_store.py).

A worker learns the socket from :func:`attach` (called by ``processes.worker_main`` before the app
is built); :func:`socket_path` is None in a process serving alone.

Layer 4: implements the ``locks`` and ``quotas`` contracts over the service and opens the SQLite
store (``pipeline``); only ``tusd_py.server`` uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tusd_py.config.values import Config
    from tusd_py.host.client import HostClient
    from tusd_py.locks.locker import Locker
    from tusd_py.quotas.ledger import QuotaLedger, QuotaLimits

_socket: str | None = None


def attach(path: str | None) -> None:
    """This process is a worker of a supervisor whose host service listens at ``path``."""
    global _socket
    _socket = path


def socket_path() -> str | None:
    """The host service of this worker's supervisor, or None (one process, or Redis and PostgreSQL)."""
    return _socket


_client: HostClient | None = None


def shared_client() -> HostClient:
    """This worker's one connection to the host service, shared by the locker and the quota ledger."""
    global _client
    path = socket_path()
    if path is None:
        raise RuntimeError("not a worker of a --processes supervisor (tusd_py.host.attach was not called)")
    if _client is None or _client.path != path:
        from tusd_py.host.client import HostClient

        _client = HostClient(path)
    return _client


def shared_locker(config: Config) -> Locker | None:
    """The host's shared upload locker for a worker (None when serving alone)."""
    if socket_path() is None:
        return None
    from tusd_py.host.locker import HostLocker

    return HostLocker(shared_client(), config.lock_timeout)


def shared_quota_ledger(limits: QuotaLimits) -> QuotaLedger | None:
    """The host's shared quota ledger for a worker (None when serving alone)."""
    if socket_path() is None:
        return None
    from tusd_py.host.quotas import HostQuotaLedger

    return HostQuotaLedger(limits, shared_client())
