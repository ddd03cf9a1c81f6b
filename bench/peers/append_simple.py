"""The simplest limit: one aiohttp handler that appends each PATCH body to a file with plain writes.

No thread pool, no batching, no protocol: POST makes an empty file and answers its Location, PATCH
appends every chunk as it arrives (``write`` on the event loop, a page-cache copy), HEAD answers
the size, GET streams the file back for verification. Issue 16 asks tusd-py to keep >= 80% of
this on large uploads; ``limit`` (append_limit.py, 1 MiB batches written in a thread) is the
other, batched way of doing the same.

    python bench/peers/append_simple.py --port P --dir DIR
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from aiohttp import web

DIRECTORY = web.AppKey("directory", Path)


async def handle(request: web.Request) -> web.StreamResponse:
    directory = request.app[DIRECTORY]
    name = request.match_info.get("name", "")
    if request.method == "POST":
        name = secrets.token_hex(16)
        (directory / name).touch()
        return web.Response(status=201, headers={"Location": f"http://{request.host}/files/{name}"})
    if not name.isalnum() or not (directory / name).exists():
        raise web.HTTPNotFound()
    path = directory / name
    if request.method == "PATCH":
        with path.open("ab") as handle:
            async for chunk in request.content.iter_any():
                handle.write(chunk)
        return web.Response(status=204, headers={"Upload-Offset": str(path.stat().st_size)})
    if request.method == "HEAD":
        return web.Response(status=200, headers={"Upload-Offset": str(path.stat().st_size)})
    return web.FileResponse(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    app = web.Application(client_max_size=0)
    app[DIRECTORY] = args.dir
    app.router.add_route("*", "/files/", handle)
    app.router.add_route("*", "/files/{name}", handle)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
