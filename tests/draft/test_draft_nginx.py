"""The draft behind a real nginx serving the shipped reference configuration: the 104 reaches the client and a
cut creation resumes. And the default nginx (request buffering on) shown to defeat resumption:
it holds the body until it has all of it, so the 104 never comes before a cut."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.nginx_balancer import REFERENCE_CONF, NginxBalancer, find_nginx
from tests.client.raw import exchange
from tests.client.tus import path_of
from tests.draft.conftest import DraftServer, draft_config, serve
from tests.real_parts import part_missing
from tusd_py.protocol.draft_versions import VERSIONS

pytestmark = pytest.mark.slow

V6 = {"Upload-Draft-Interop-Version": "6"}


@contextmanager
def nginx(tmp: Path, upstream: int, *, buffering: bool) -> Iterator[int]:
    """The shipped reference configuration (docs/deployment/nginx-tusd-py.conf) in front of one server;
    with ``buffering``, the same file with nginx's default request buffering put back."""
    if find_nginx() is None:
        part_missing("nginx is not installed (scripts/ensure-system-packages.sh installs it)")
    reference = REFERENCE_CONF.read_text()
    assert "proxy_request_buffering off;" in reference
    if buffering:
        reference = reference.replace("proxy_request_buffering off;", "proxy_request_buffering on;")
    with NginxBalancer([f"127.0.0.1:{upstream}"], tmp, reference=reference) as balancer:
        yield balancer.port


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[DraftServer]:
    async with serve(draft_config(tmp_path, behind_proxy=True)) as running:
        yield running


@pytest.mark.parametrize("version", [6, 8, 9])  # iOS 18.1 on, iOS 26.2, the newest draft
async def test_104_passes_nginx_without_request_buffering(server: DraftServer, tmp_path: Path, version: int) -> None:
    interop = {"Upload-Draft-Interop-Version": str(version)}
    with nginx(tmp_path / "nginx", server.port, buffering=False) as port:
        fields = {**interop, "Upload-Complete": "?1", "Content-Length": "10", **server.auth()}
        cut = await exchange(port, "POST", "/files/", fields, b"0123456789", send=4)
        (interim,) = cut.interim_of(104)
        assert interim["location"].startswith(f"http://127.0.0.1:{port}/files/")  # the client's view, not nginx's
        path = path_of(interim["location"])
        head = None
        for _ in range(100):  # nginx passes the cut on to us a moment later (bounded: 5 s)
            head = await exchange(port, "HEAD", path, {**interop, **server.auth()})
            if head.headers.get("upload-offset") == "4":
                break
            await asyncio.sleep(0.05)
        assert head is not None and head.headers["upload-offset"] == "4"
        rest = {**interop, "Upload-Complete": "?1", "Upload-Offset": "4", "Content-Type": "application/partial-upload"}
        done = await exchange(port, "PATCH", path, {**rest, **server.auth()}, b"456789")
        assert done.status == VERSIONS[version].completing_append_status and done.headers["upload-complete"] == "?1"
        assert await (await server.client.get(path, headers=server.auth())).read() == b"0123456789"


async def test_default_nginx_buffers_the_body_so_no_104_before_a_cut(server: DraftServer, tmp_path: Path) -> None:
    with nginx(tmp_path / "nginx", server.port, buffering=True) as port:
        fields = {**V6, "Upload-Complete": "?1", "Content-Length": "10", **server.auth()}
        whole = await exchange(port, "POST", "/files/", fields, b"0123456789")
        assert whole.status == 201 and whole.interim_of(104)  # relayed, but only once the body was all in
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                await exchange(port, "POST", "/files/", fields, b"0123456789", send=4)
