"""The benchmark's load generator: one asyncio process (aiohttp client) driving one tus server.

    python bench/client.py --url http://127.0.0.1:P/files/ --workload large [--verify get|disk:DIR|none]

Payloads are cut from one pool of random bytes generated once and sent as memoryview slices, so
the client's CPU goes to sending, not to making data; each upload gets its own slice offsets, so
no two uploads hold the same bytes. The expected SHA-256 of every upload is computed before the
clock starts. Only the upload phase is timed; verification (final HEAD offset, then the SHA-256
of the stored bytes, read back with GET or from the peer's directory) runs after it and any
mismatch marks the result failed. The result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
from yarl import URL

MiB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
POOL_SIZE = 64 * MiB
# One request may not run longer than this; a whole workload not longer than WORKLOAD_TIMEOUT.
REQUEST_TIMEOUT = 300.0
WORKLOAD_TIMEOUT = 900.0


@dataclass(frozen=True)
class Workload:
    name: str
    uploads: int
    size: int
    chunk: int
    in_flight: int
    description: str


WORKLOADS: dict[str, Workload] = {
    "large": Workload("large", 1, 256 * MiB, 8 * MiB, 1, "1 upload of 256 MiB in 8 MiB PATCHes"),
    "conc16": Workload("conc16", 16, 32 * MiB, 8 * MiB, 16, "16 concurrent uploads of 32 MiB (8 MiB PATCHes)"),
    "small": Workload("small", 2000, 4096, 4096, 64, "2,000 uploads of 4 KiB (POST + PATCH), 64 in flight"),
    "tiny-chunks": Workload("tiny-chunks", 1, 64 * MiB, 1 * MiB, 1, "1 upload of 64 MiB in 1 MiB PATCHes"),
    "huge": Workload("huge", 1, 2048 * MiB, 8 * MiB, 1, "1 upload of 2 GiB in 8 MiB PATCHes (memory vs size)"),
}
QUICK: dict[str, Workload] = {
    "large": Workload("large", 1, 32 * MiB, 8 * MiB, 1, "quick: 1 x 32 MiB in 8 MiB PATCHes"),
    "conc16": Workload("conc16", 16, 4 * MiB, 2 * MiB, 16, "quick: 16 x 4 MiB (2 MiB PATCHes)"),
    "small": Workload("small", 200, 4096, 4096, 64, "quick: 200 x 4 KiB, 64 in flight"),
    "tiny-chunks": Workload("tiny-chunks", 1, 8 * MiB, 1 * MiB, 1, "quick: 1 x 8 MiB in 1 MiB PATCHes"),
    "huge": Workload("huge", 1, 256 * MiB, 8 * MiB, 1, "quick: 1 x 256 MiB in 8 MiB PATCHes"),
}


def workload(name: str, quick: bool) -> Workload:
    return (QUICK if quick else WORKLOADS)[name]


class Payloads:
    """Deterministic slices of one random pool: upload ``u``'s chunk ``k`` is always the same bytes."""

    def __init__(self, seed_bytes: int = POOL_SIZE) -> None:
        self.pool = memoryview(os.urandom(seed_bytes))

    def chunks(self, upload: int, size: int, chunk: int) -> Iterator[memoryview]:
        span = len(self.pool)
        for start in range(0, size, chunk):
            length = min(chunk, size - start)
            # A prime stride per upload so uploads differ; wrap so every slice fits in the pool.
            at = (upload * 7_919_053 + start) % (span - length + 1)
            yield self.pool[at : at + length]

    def sha256(self, upload: int, size: int, chunk: int) -> str:
        hasher = hashlib.sha256()
        for piece in self.chunks(upload, size, chunk):
            hasher.update(piece)
        return hasher.hexdigest()


@dataclass
class Result:
    workload: str
    uploads: int
    bytes: int
    seconds: float
    mib_s: float
    uploads_s: float
    patch_p50_ms: float
    patch_p99_ms: float
    patches: int
    post_p50_ms: float
    errors: list[str] = field(default_factory=list)
    verified: str = "no"
    client_cpu_s: float = 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Runner:
    def __init__(self, url: str, load: Workload, payloads: Payloads) -> None:
        self.url = URL(url)
        self.load = load
        self.payloads = payloads
        self.patch_latencies: list[float] = []
        self.post_latencies: list[float] = []
        self.errors: list[str] = []
        self.locations: dict[int, URL] = {}

    def _metadata(self, upload: int) -> str:
        def b64(text: str) -> str:
            return base64.b64encode(text.encode()).decode()

        return f"filename {b64(f'bench-{upload}.bin')},filetype {b64('application/octet-stream')}"

    async def upload(self, session: aiohttp.ClientSession, upload: int) -> None:
        load = self.load
        headers = {**TUS, "Upload-Length": str(load.size), "Upload-Metadata": self._metadata(upload)}
        started = time.perf_counter()
        async with session.post(self.url, headers=headers) as resp:
            await resp.read()
            if resp.status != 201 or "Location" not in resp.headers:
                self.errors.append(f"upload {upload}: POST answered {resp.status}")
                return
            location = self.url.join(URL(resp.headers["Location"]))
        self.post_latencies.append(time.perf_counter() - started)
        self.locations[upload] = location
        offset = 0
        patch_headers = {**TUS, "Content-Type": "application/offset+octet-stream"}
        for piece in self.payloads.chunks(upload, load.size, load.chunk):
            started = time.perf_counter()
            async with session.patch(
                location, data=piece, headers={**patch_headers, "Upload-Offset": str(offset)}
            ) as resp:
                await resp.read()
                if resp.status != 204:
                    self.errors.append(f"upload {upload}: PATCH at {offset} answered {resp.status}")
                    return
                offset += len(piece)
                if resp.headers.get("Upload-Offset") != str(offset):
                    self.errors.append(f"upload {upload}: PATCH answered offset {resp.headers.get('Upload-Offset')}")
                    return
            self.patch_latencies.append(time.perf_counter() - started)

    async def run(self) -> float:
        load = self.load
        connector = aiohttp.TCPConnector(limit=load.in_flight, limit_per_host=load.in_flight)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for upload in range(load.uploads):
            queue.put_nowait(upload)

        async def worker(session: aiohttp.ClientSession) -> None:
            while not queue.empty():
                upload = queue.get_nowait()
                try:
                    await self.upload(session, upload)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    self.errors.append(f"upload {upload}: {type(exc).__name__}: {exc}")

        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            started = time.perf_counter()
            async with asyncio.timeout(WORKLOAD_TIMEOUT):
                await asyncio.gather(*(worker(session) for _ in range(min(load.in_flight, load.uploads))))
            return time.perf_counter() - started

    async def verify(self, mode: str, expected: dict[int, str]) -> str:
        """'ok (...)' or the first problem found; HEAD offset always, then the bytes by ``mode``."""
        load = self.load
        # As many at once as the upload phase had, at least 8: 2,000 small uploads verify in seconds.
        at_once = max(8, load.in_flight)
        connector = aiohttp.TCPConnector(limit=at_once)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        problems: list[str] = []
        semaphore = asyncio.Semaphore(at_once)

        async def check(session: aiohttp.ClientSession, upload: int, location: URL) -> None:
            async with semaphore:
                async with session.head(location, headers=TUS) as resp:
                    if resp.status != 200 or resp.headers.get("Upload-Offset") != str(load.size):
                        problems.append(
                            f"upload {upload}: HEAD {resp.status} offset {resp.headers.get('Upload-Offset')}"
                        )
                        return
                if mode == "get":
                    hasher = hashlib.sha256()
                    async with session.get(location, headers=TUS) as resp:
                        if resp.status != 200:
                            problems.append(f"upload {upload}: GET answered {resp.status}")
                            return
                        async for block in resp.content.iter_chunked(MiB):
                            hasher.update(block)
                    digest = hasher.hexdigest()
                elif mode.startswith("disk:"):
                    path = Path(mode[5:]) / location.name
                    digest = await asyncio.to_thread(_file_sha256, path)
                else:
                    return
                if digest != expected[upload]:
                    problems.append(f"upload {upload}: sha256 {digest[:12]} != expected {expected[upload][:12]}")

        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            await asyncio.gather(*(check(session, u, loc) for u, loc in self.locations.items()))
        if len(self.locations) != load.uploads:
            problems.append(f"only {len(self.locations)} of {load.uploads} uploads were created")
        if problems:
            return f"FAILED: {problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        what = {"get": "offset+sha256 via GET", "none": "offset only"}.get(mode, "offset+sha256 on disk")
        return f"ok ({what})"


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while block := handle.read(4 * MiB):
                hasher.update(block)
    except FileNotFoundError:
        return "missing"
    return hasher.hexdigest()


async def run_workload(url: str, load: Workload, verify: str, pause: bool = False) -> Result:
    payloads = Payloads()
    expected = {u: payloads.sha256(u, load.size, load.chunk) for u in range(load.uploads)} if verify != "none" else {}
    runner = Runner(url, load, payloads)
    cpu_before = time.process_time()
    seconds = await runner.run()
    client_cpu = time.process_time() - cpu_before
    if pause:
        # Let the caller read the server's memory and CPU before verification adds its own load.
        print(json.dumps({"phase": "uploaded"}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    moved = load.size * (load.uploads - len({e.split(":")[0] for e in runner.errors}))
    result = Result(
        workload=load.name,
        uploads=load.uploads,
        bytes=moved,
        seconds=seconds,
        mib_s=moved / MiB / seconds,
        uploads_s=load.uploads / seconds,
        patch_p50_ms=percentile(runner.patch_latencies, 0.50) * 1000,
        patch_p99_ms=percentile(runner.patch_latencies, 0.99) * 1000,
        patches=len(runner.patch_latencies),
        post_p50_ms=percentile(runner.post_latencies, 0.50) * 1000,
        errors=runner.errors[:5],
        client_cpu_s=client_cpu,
    )
    if runner.errors:
        result.verified = f"FAILED: {runner.errors[0]}"
    else:
        result.verified = await runner.verify(verify, expected)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server's upload collection, http://127.0.0.1:P/files/")
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--verify", default="get", help="get | disk:DIR | none (default: get)")
    parser.add_argument(
        "--pause-before-verify",
        action="store_true",
        help='print {"phase": "uploaded"} after the timed phase and wait for a line on stdin before verifying',
    )
    args = parser.parse_args()
    if URL(args.url).host not in {"127.0.0.1", "localhost", "::1"}:
        parser.error("the benchmark only talks to loopback addresses")
    load = workload(args.workload, args.quick)
    result = asyncio.run(run_workload(args.url, load, args.verify, args.pause_before_verify))
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
