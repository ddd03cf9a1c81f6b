"""The quota ledger of the workers of one host: :class:`HostQuotaLedger`, the client side.

The ledger itself is a :class:`~tusd_py.quotas.ledger.MemoryQuotaLedger` in the supervisor's host
service (tusd_py/host/service.py), where a reservation is checked and recorded in one step, so
several workers creating uploads for one user never jointly exceed the quota. Each call here is
one round trip; a refusal comes back with the service's reason (and was counted there, in the
shared metrics). It is rebuilt from storage once per run, by the first worker to start.
"""

from __future__ import annotations

from typing import Any

from storage_backends.base import DataStore
from tusd_py.host.client import HostClient, HostUnavailable
from tusd_py.host.wire import ADOPT_BATCH
from tusd_py.model.errors import StateStoreUnavailable
from tusd_py.model.upload import UploadInfo
from tusd_py.protocol import upload_state
from tusd_py.protocol.upload_state import claimed_bytes
from tusd_py.quotas.ledger import QuotaExceeded, QuotaLedger, QuotaLimits, Usage


class HostQuotaLedger(QuotaLedger):
    def __init__(self, limits: QuotaLimits, client: HostClient) -> None:
        self.limits = limits
        self.client = client

    async def _ask(self, op: str, *args: Any, within: float | None = 5.0) -> list[Any]:
        try:
            answer = await self.client.request(op, *args, within=within)
        except HostUnavailable as exc:
            raise StateStoreUnavailable(str(exc)) from exc
        if answer[0] == "Q":
            raise QuotaExceeded(answer[2], answer[3])
        return answer

    async def usage(self, user: str) -> Usage:
        answer = await self._ask("QU", user)
        return Usage(int(answer[2]), int(answer[3]))

    async def rebuild(self, store: DataStore) -> None:
        """The first worker of a run recounts the stored uploads; the others wait until it is done."""
        if not (await self._ask("RB", within=None))[2]:
            return
        batch: list[list[Any]] = []
        async for info in store.list_uploads():
            if info.owner is not None:
                batch.append([info.id, info.owner, claimed_bytes(info), upload_state.counts_as_unfinished(info)])
            if len(batch) >= ADOPT_BATCH:
                await self._ask("RA", batch)
                batch = []
        if batch:
            await self._ask("RA", batch)
        await self._ask("RE")

    async def reserve(self, info: UploadInfo) -> None:
        if info.owner is not None:
            await self._ask("QR", info.id, info.owner, claimed_bytes(info))

    async def grow(self, info: UploadInfo, new_bytes: int) -> None:
        if info.owner is not None:
            await self._ask("QG", info.id, info.owner, new_bytes)

    async def room(self, user: str | None) -> int | None:
        if user is None or self.limits.max_bytes is None:
            return None
        return max(0, self.limits.max_bytes - (await self.usage(user)).bytes)

    async def finished(self, info: UploadInfo) -> None:
        if info.owner is not None:
            await self._ask("QF", info.id, info.owner, claimed_bytes(info))

    async def release(self, upload_id: str) -> None:
        await self._ask("QD", upload_id)
