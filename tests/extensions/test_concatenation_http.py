"""Concatenation through the app: partials, finals, unfinished partials and every refusal."""

import hashlib

from aiohttp.test_utils import TestClient

from tests.client.tus import TUS, create, id_of, patch, path_of, processed_head
from tusd_py.model.upload import UploadInfo
from tusd_py.server.app import SERVICE_KEY


class FinishedRecorder:
    def __init__(self) -> None:
        self.finished: list[str] = []

    async def on_created(self, info: UploadInfo) -> None:
        pass

    def on_progress(self, info: UploadInfo) -> None:
        pass

    async def on_finished(self, info: UploadInfo) -> None:
        self.finished.append(info.id)

    async def on_terminated(self, info: UploadInfo) -> None:
        pass


def recorder(client: TestClient) -> FinishedRecorder:
    rec = FinishedRecorder()
    client.app[SERVICE_KEY].lifecycle.add(rec)  # type: ignore[index]
    return rec


async def partial(client: TestClient, data: bytes, finish: bool = True) -> str:
    path = await create(client, len(data), Upload_Concat="partial")
    if finish:
        assert (await patch(client, path, 0, data)).status == 204
    return path


async def final(client: TestClient, *paths: str, **headers: str):  # type: ignore[no-untyped-def]
    h = {**TUS, "Upload-Concat": "final;" + " ".join(paths), **{k.replace("_", "-"): v for k, v in headers.items()}}
    return await client.post("/files/", headers=h)


async def test_final_from_finished_partials(client: TestClient) -> None:
    rec = recorder(client)
    a, b, c = await partial(client, b"hello "), await partial(client, b"big "), await partial(client, b"world")
    resp = await final(client, a, b, c)
    assert resp.status == 201
    path = path_of(resp.headers["Location"])
    head = await client.head(path, headers=TUS)
    assert head.headers["Upload-Concat"] == f"final;{a} {b} {c}"
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "15"
    body = await (await client.get(path)).read()
    assert body == b"hello big world"
    assert (await processed_head(client, path)).headers["Repr-Digest"].startswith("sha-256=:")
    assert rec.finished == [id_of(path)]  # partials never reach post-finish processing
    assert (await client.head(a, headers=TUS)).headers["Upload-Concat"] == "partial"
    info = await client.app[SERVICE_KEY].store.get_info(id_of(path))  # type: ignore[index]
    assert info.sha256 == hashlib.sha256(b"hello big world").hexdigest()


async def test_final_before_partials_finish(client: TestClient) -> None:
    rec = recorder(client)
    a = await partial(client, b"abc", finish=False)
    b = await partial(client, b"def")
    resp = await final(client, a, b)
    assert resp.status == 201
    path = path_of(resp.headers["Location"])
    head = await client.head(path, headers=TUS)
    assert "Upload-Offset" not in head.headers  # partials unfinished
    assert head.headers["Upload-Length"] == "6"
    assert (await client.get(path)).status == 409
    assert (await patch(client, a, 0, b"abc")).status == 204  # the last partial lands: the final assembles
    assert await (await client.get(path)).read() == b"abcdef"
    assert rec.finished == [id_of(path)]


async def test_final_with_deferred_partial_gets_length_at_assembly(client: TestClient) -> None:
    a = await create(client, None, Upload_Concat="partial", Upload_Defer_Length="1")
    b = await partial(client, b"xy")
    resp = await final(client, a, b)
    path = path_of(resp.headers["Location"])
    head = await client.head(path, headers=TUS)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert (await patch(client, a, 0, b"1234", Upload_Length="4")).status == 204
    assert await (await client.get(path)).read() == b"1234xy"


async def test_patch_on_final_is_403(client: TestClient) -> None:
    a = await partial(client, b"abc")
    resp = await final(client, a)
    path = path_of(resp.headers["Location"])
    for offset in (0, 3):
        r = await patch(client, path, offset, b"x")
        assert r.status == 403


async def test_refusals(client: TestClient) -> None:
    done = await partial(client, b"abc")
    plain = await create(client, 3)
    await patch(client, plain, 0, b"abc")
    cases = [
        (await final(client, "/files/doesnotexist"), 404, "not found"),
        (await final(client, plain), 400, "not a partial"),
        (await final(client, "/elsewhere/" + id_of(done)), 400, "not an upload of this server"),
        (await final(client, done, done), 400, "more than once"),
        (await client.post("/files/", headers={**TUS, "Upload-Concat": "final;"}), 400, "no partial"),
        (await final(client, done, Upload_Length="3"), 400, "must not carry Upload-Length"),
        (
            await client.post("/files/", headers={**TUS, "Upload-Concat": "parts", "Upload-Length": "1"}),
            400,
            "Upload-Concat",
        ),
    ]
    for resp, status, reason in cases:
        assert resp.status == status, (status, reason)
        assert reason in await resp.text()


async def test_final_over_max_size_is_413(aiohttp_client, storage_dir) -> None:  # type: ignore[no-untyped-def]
    from tusd_py.config.values import Config
    from tusd_py.server.app import make_app

    client = await aiohttp_client(make_app(Config(storage_dir=str(storage_dir), max_size=5)))
    a, b = await partial(client, b"abc"), await partial(client, b"def")
    resp = await final(client, a, b)
    assert resp.status == 413 and "above the maximum of 5" in await resp.text()


async def test_final_of_final_is_refused(client: TestClient) -> None:
    a = await partial(client, b"abc")
    resp = await final(client, a)
    path = path_of(resp.headers["Location"])
    again = await final(client, path)
    assert again.status == 400 and "not a partial" in await again.text()


async def test_waiting_finals_rebuilt_after_restart(aiohttp_client, storage_dir) -> None:  # type: ignore[no-untyped-def]
    from tusd_py.config.values import Config
    from tusd_py.server.app import make_app

    config = Config(storage_dir=str(storage_dir))
    first = await aiohttp_client(make_app(config))
    a = await partial(first, b"abc", finish=False)
    resp = await final(first, a)
    final_id = id_of(resp.headers["Location"])
    await first.close()
    second = await aiohttp_client(make_app(config))  # a restarted server: the waiting list is rebuilt
    service = second.app[SERVICE_KEY]
    await service.recover()
    assert (await patch(second, a, 0, b"abc")).status == 204
    assert await (await second.get("/files/" + final_id)).read() == b"abc"
