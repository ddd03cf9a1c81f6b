"""Several real tusd-py processes on one storage (a shared directory, or one S3 bucket and prefix)
and one real Redis: the locking rules hold across instances, a dead or paused instance loses its
uploads without corrupting them, and a Redis outage is a 503 that heals by itself."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from conformance.client import OCTET, TUS, Client
from conformance.live_server import LiveServer
from conformance.redis_server import RedisServer
from conformance.seaweed import SeaweedS3
from storage_backends.file_io import WRITE_BATCH
from tests.client.raw import PartialRequest
from tests.client.tus import id_of
from tests.client.wait import wait_until
from tusd_py.locks.redis_locker import _lock_key

pytestmark = [pytest.mark.slow, pytest.mark.redis]

LEASE = 2.0
LOCK_TIMEOUT = 4.0
MIB = 1024 * 1024
PAYLOAD = os.urandom(6 * MIB + 4321)

Cluster = Callable[..., list[LiveServer]]


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Starts ``count`` instances sharing one storage and one Redis; stops them all by PID."""
    with ExitStack() as stack:

        def start(count: int, backend: str = "filesystem", redis_url: str | None = None) -> list[LiveServer]:
            url = redis_url or request.getfixturevalue("redis_url")
            storage = tmp_path / "shared"
            args: tuple[str, ...] = ()
            env: dict[str, str] = {}
            if backend == "s3":
                s3: SeaweedS3 = request.getfixturevalue("seaweed")
                args, env = (
                    (*s3.server_args(f"multi-{tmp_path.name}/"), "--s3-part-size", str(5 * MIB)),
                    s3.server_env(),
                )
            servers = []
            for number in range(count):
                server = LiveServer(
                    storage,
                    "--redis-url", url, "--redis-lease", str(LEASE), "--lock-timeout", str(LOCK_TIMEOUT),
                    "--download-signing-key", "k" * 32,
                    "--state-db", str(tmp_path / f"state-{number}.sqlite3"), "--max-size", str(64 * MIB),
                    *args,
                    env=env,
                    log_path=tmp_path / f"instance-{number}.log",
                )  # fmt: skip
                stack.callback(server.stop)
                servers.append(server.start())
            return servers

        yield start


def path_of(url: str) -> str:
    return urlsplit(url).path


def client(server: LiveServer) -> Client:
    return Client(server.url)


def head_offset(server: LiveServer, path: str) -> int:
    resp = client(server).head(path)
    assert resp.status == 200, (resp.status, resp.body)
    return int(resp.header("Upload-Offset") or -1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(server: LiveServer, path: str) -> bytes:
    got = client(server).request("GET", path, tus=False)
    assert got.status == 200, got.status
    return got.body


def lock_held(redis_url: str, path: str) -> bool:
    """Whether some instance holds the upload's lock in Redis (the key lives while its lease does)."""
    with redis.Redis.from_url(redis_url) as connection:
        return bool(connection.exists(_lock_key(id_of(path))))


def s3_reads(server: LiveServer) -> float:
    """The GetObject calls ``server`` made, from its /metrics."""
    text = client(server).request("GET", "/metrics", tus=False).body.decode()
    lines = [line for line in text.splitlines() if line.startswith("tusd_py_s3_requests_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if 'operation="GetObject"' in line)


def wait_receiving(server: LiveServer, path: str, redis_url: str, sent: int) -> None:
    """Wait (bounded) until ``server``'s PATCH holds the upload's lock and, on the filesystem, has
    written all but less than one write batch of the ``sent`` bytes: its handler has read them. The
    rest is in its memory or the socket, which a takeover drains before it lets go (tusd_py/uploads/body.py).

    S3 spools below a part, so nothing shows there before the body ends: the PATCH has at least read
    the upload under its lock (its one GetObject; the instance that made the upload knows its owner
    and reads nothing before the lock). The lock alone is not enough: the holder still reads and
    checks the upload before its body, and an instance stopped in between reads, once continued, the
    state another instance left meanwhile and answers 409 without trying to commit anything."""
    data_file = server.storage_dir / id_of(path)
    assert wait_until(lambda: lock_held(redis_url, path), timeout=20), "the PATCH never took the lock"
    if "--s3-bucket" in server.extra_args:
        assert wait_until(lambda: s3_reads(server) >= 1, timeout=20), "the PATCH never read the upload"
    else:
        assert wait_until(lambda: data_file.stat().st_size > sent - WRITE_BATCH, timeout=20), data_file.stat()


def patch_request(server: LiveServer, path: str, offset: int, length: int) -> PartialRequest:
    headers = {**TUS, **OCTET, "Upload-Offset": str(offset), "Content-Length": str(length)}
    return PartialRequest(f"http://127.0.0.1:{server.port}{path}", "PATCH", headers)


def test_every_request_of_an_upload_at_a_different_instance(cluster: Cluster, backend: str) -> None:
    servers = cluster(3, backend)
    pieces = [PAYLOAD[: 2 * MIB], PAYLOAD[2 * MIB : 5 * MIB + 7], PAYLOAD[5 * MIB + 7 :]]
    path = path_of(client(servers[0]).create(len(PAYLOAD)))
    offset = 0
    for number, piece in enumerate(pieces):
        at = servers[(number + 1) % 3]
        assert head_offset(servers[number % 3], path) == offset
        resp = client(at).patch(path, offset, piece)
        assert resp.status == 204, (resp.status, resp.body)
        offset += len(piece)
        assert resp.header("Upload-Offset") == str(offset)
    assert sha(download(servers[1], path)) == sha(PAYLOAD)
    assert head_offset(servers[2], path) == len(PAYLOAD)


def test_head_at_another_instance_takes_over_a_stalled_patch(cluster: Cluster, backend: str, redis_url: str) -> None:
    """The release request crosses instances over pub/sub: the holder commits what arrived, lets
    go, and the HEAD reports exactly that offset, long before any lease could run out."""
    one, two = cluster(2, backend)
    path = path_of(client(one).create(len(PAYLOAD)))
    request = patch_request(one, path, 0, len(PAYLOAD))
    sent = MIB + 12345
    request.send(PAYLOAD[:sent])  # then the client stalls
    wait_receiving(one, path, redis_url, sent)
    began = time.monotonic()
    assert head_offset(two, path) == sent
    assert time.monotonic() - began < LOCK_TIMEOUT  # handed over, not timed out nor expired
    assert request.response_status(timeout=10) == 423
    request.close()
    resp = client(two).patch(path, sent, PAYLOAD[sent:])
    assert resp.status == 204, (resp.status, resp.body)
    assert sha(download(one, path)) == sha(PAYLOAD)


def test_two_concurrent_patches_at_two_instances_never_interleave(cluster: Cluster) -> None:
    one, two = cluster(2)
    other = os.urandom(len(PAYLOAD))
    path = path_of(client(one).create(len(PAYLOAD)))
    statuses: dict[str, int] = {}
    start = threading.Barrier(2)

    def send(name: str, server: LiveServer, data: bytes) -> None:
        request = patch_request(server, path, 0, len(data))
        try:
            start.wait(10)
            for at in range(0, len(data), 256 * 1024):  # bounded: the body in 256 KiB pieces
                request.send(data[at : at + 256 * 1024])
            statuses[name] = request.response_status(timeout=30)
        except OSError:
            statuses[name] = -1  # cut by the server after its answer: not the winner
        finally:
            request.close()

    threads = [
        threading.Thread(target=send, args=("one", one, PAYLOAD)),
        threading.Thread(target=send, args=("two", two, other)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [name for name, status in statuses.items() if status == 204]
    assert len(winners) == 1, statuses
    loser = "two" if winners == ["one"] else "one"
    assert statuses[loser] in (409, 423, -1), statuses
    stored = download(two, path)
    assert sha(stored) == sha(PAYLOAD if winners == ["one"] else other)


def test_sigkill_of_the_holder_then_resume_through_another_instance(
    cluster: Cluster, backend: str, redis_url: str
) -> None:
    one, two = cluster(2, backend)
    path = path_of(client(one).create(len(PAYLOAD)))
    request = patch_request(one, path, 0, len(PAYLOAD))
    request.send(PAYLOAD[: 5 * MIB + 100])  # a whole S3 part and some; on disk, ten batches and some
    wait_receiving(one, path, redis_url, 5 * MIB + 100)  # then it dies holding the lock
    one.kill()
    request.close()
    began = time.monotonic()
    offset = head_offset(two, path)  # waits for the dead holder's lease to run out
    assert time.monotonic() - began < LEASE + 3.0
    assert 0 <= offset <= 5 * MIB + 100
    resp = client(two).patch(path, offset, PAYLOAD[offset:])
    assert resp.status == 204, (resp.status, resp.body)
    assert sha(download(two, path)) == sha(PAYLOAD)


def test_sigstop_past_the_lease_then_sigcont_commits_nothing(cluster: Cluster, backend: str, redis_url: str) -> None:
    one, two = cluster(2, backend)
    path = path_of(client(one).create(len(PAYLOAD)))
    request = patch_request(one, path, 0, len(PAYLOAD))
    first = MIB + 100 * 1024
    request.send(PAYLOAD[:first])
    wait_receiving(one, path, redis_url, first)  # then it is idle, waiting for more body, holding the lock
    assert one.process is not None
    os.kill(one.process.pid, signal.SIGSTOP)
    try:
        # Its lease runs out while it cannot renew: Redis drops the key.
        assert wait_until(lambda: not lock_held(redis_url, path), timeout=LEASE + 20)
        offset = head_offset(two, path)
        assert offset <= first
        resp = client(two).patch(path, offset, PAYLOAD[offset:])
        assert resp.status == 204, (resp.status, resp.body)
    finally:
        os.kill(one.process.pid, signal.SIGCONT)
    # The stale holder wakes up with bytes in memory and a client that keeps sending garbage.
    try:
        for _ in range(8):  # bounded: 8 x 256 KiB
            request.send(b"\xee" * 256 * 1024)
        request.response_status(timeout=20)
    except OSError:
        pass  # the instance may end the connection instead: either way it answered nothing true
    finally:
        request.close()
    refused = wait_until(lambda: "write refused: lock lost" in one.logs(), timeout=20)
    if backend == "filesystem":
        assert (one.storage_dir / id_of(path)).stat().st_size == len(PAYLOAD)
    assert head_offset(one, path) == len(PAYLOAD)
    assert sha(download(one, path)) == sha(PAYLOAD)
    assert refused, one.logs()[-3000:]  # and the stale holder did try, and was refused


def test_redis_restart_mid_upload_is_503_then_heals_by_itself(cluster: Cluster, backend: str, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "own-redis") as redis:
        one, two = cluster(2, backend, redis_url=redis.url)
        path = path_of(client(one).create(len(PAYLOAD)))
        half = 3 * MIB
        assert client(one).patch(path, 0, PAYLOAD[:half]).status == 204
        redis.stop()
        refused = client(two).patch(path, half, PAYLOAD[half:])
        assert refused.status == 503, (refused.status, refused.body)
        assert b"upload locks are unavailable" in refused.body and refused.header("Retry-After")
        assert client(one).head(path).status == 503
        redis.start()  # empty, on the same port
        done = None
        for _ in range(40):  # bounded: up to ~20 s for the instances to reconnect
            head = client(two).head(path)
            if head.status == 200:
                offset = int(head.header("Upload-Offset") or -1)
                assert offset == half  # nothing was written while Redis was away
                done = client(one).patch(path, offset, PAYLOAD[offset:])
                if done.status == 204:
                    break
            time.sleep(0.5)
        assert done is not None and done.status == 204, done
        assert sha(download(two, path)) == sha(PAYLOAD)


def resume_when_redis_is_back(servers: list[LiveServer], path: str, data: bytes) -> int:
    """HEAD and PATCH the rest, retrying (bounded) while the instances reconnect; return the
    offset the resume started from."""
    for _ in range(40):  # bounded: up to ~20 s
        head = client(servers[0]).head(path)
        if head.status == 200:
            offset = int(head.header("Upload-Offset") or -1)
            if client(servers[-1]).patch(path, offset, data[offset:]).status == 204:
                return offset
        time.sleep(0.5)
    raise AssertionError("the upload could not be resumed after Redis came back")


def test_redis_stopped_under_a_streaming_patch_commits_nothing_more(cluster: Cluster, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "own-redis") as redis:
        one, two = cluster(2, redis_url=redis.url)
        path = path_of(client(one).create(len(PAYLOAD)))
        request = patch_request(one, path, 0, len(PAYLOAD))
        first = 2 * MIB
        request.send(PAYLOAD[:first])
        data_file = one.storage_dir / id_of(path)
        assert wait_until(lambda: data_file.stat().st_size >= first - 512 * 1024, timeout=20)
        redis.stop()
        try:
            for at in range(first, first + 2 * MIB, 256 * 1024):  # bounded: 2 MiB more
                request.send(PAYLOAD[at : at + 256 * 1024])
            status = request.response_status(timeout=20)
        except OSError:
            status = -1  # answered and closed while the body was still coming
        finally:
            request.close()
        assert status in (503, -1), status
        on_disk = data_file.read_bytes()
        assert len(on_disk) <= first  # nothing after Redis went away
        assert PAYLOAD.startswith(on_disk)
        redis.start()
        offset = resume_when_redis_is_back([two, one], path, PAYLOAD)
        assert offset == len(on_disk)
        assert sha(download(two, path)) == sha(PAYLOAD)
