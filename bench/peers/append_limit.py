"""The limit: the least an aiohttp server can do to take a tus upload onto disk.

POST answers 201 with a Location, PATCH appends its body to one file with large writes, HEAD
answers the file size as Upload-Offset, GET streams the file back. No protocol checks, no
locking, no info file, no digest: whatever tusd-py does on top of this costs throughput, so
``tusd-py / limit`` says how much of aiohttp's own ceiling tusd-py keeps.

    python bench/peers/append_limit.py --port P --dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from pathlib import Path

from aiohttp import web

# Same order as the filesystem backend's batch: few thread hand-offs, bounded memory.
WRITE_BATCH = 1024 * 1024
READ_BLOCK = 1024 * 1024
DIRECTORY = web.AppKey("directory", Path)


def _writev_all(fd: int, buffers: list[bytes]) -> None:
    views = [memoryview(b) for b in buffers]
    while views:
        count = os.writev(fd, views[:1024])
        while count and views:
            if count >= len(views[0]):
                count -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][count:]
                count = 0


def _path(request: web.Request) -> Path:
    upload_id = request.match_info["upload_id"]
    if not upload_id.isalnum():
        raise web.HTTPNotFound()
    return request.app[DIRECTORY] / upload_id


async def create(request: web.Request) -> web.Response:
    upload_id = secrets.token_hex(16)
    (request.app[DIRECTORY] / upload_id).touch()
    return web.Response(
        status=201, headers={"Location": f"http://{request.host}/files/{upload_id}", "Tus-Resumable": "1.0.0"}
    )


async def patch(request: web.Request) -> web.Response:
    fd = os.open(_path(request), os.O_WRONLY | os.O_APPEND)
    try:
        batch: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            batch.append(chunk)
            size += len(chunk)
            if size >= WRITE_BATCH:
                await asyncio.to_thread(_writev_all, fd, batch)
                batch, size = [], 0
        if batch:
            await asyncio.to_thread(_writev_all, fd, batch)
        offset = os.fstat(fd).st_size
    finally:
        os.close(fd)
    return web.Response(status=204, headers={"Upload-Offset": str(offset), "Tus-Resumable": "1.0.0"})


async def head(request: web.Request) -> web.Response:
    try:
        size = _path(request).stat().st_size
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    return web.Response(status=200, headers={"Upload-Offset": str(size), "Cache-Control": "no-store"})


async def get(request: web.Request) -> web.StreamResponse:
    path = _path(request)
    if not path.exists():
        raise web.HTTPNotFound()
    return web.FileResponse(path, chunk_size=READ_BLOCK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    app = web.Application(client_max_size=0)
    app[DIRECTORY] = args.dir
    app.router.add_post("/files/", create)
    app.router.add_patch("/files/{upload_id}", patch)
    app.router.add_head("/files/{upload_id}", head)
    app.router.add_get("/files/{upload_id}", get, allow_head=False)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
