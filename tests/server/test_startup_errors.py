"""Start-up failures as an operator sees them: one line naming the reason and the flag, exit 2.

Each case runs the real CLI in a child process; nothing may be announced as "serving" and no
traceback or "Unclosed client session" may follow the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.live_server import free_port

# Every case starts the real CLI in a child process (an interpreter and the whole server each time).
pytestmark = pytest.mark.slow


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    command = [sys.executable, "-m", "tusd_py", "serve", "--host", "127.0.0.1", "--log-format", "json", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, check=False
    )
    lines = done.stderr.splitlines()
    assert '"serving"' not in done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr, done.stderr
    return done.returncode, [line for line in lines if line.startswith("tusd-py:")]


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, said = _start("--port", str(port), "--storage-dir", str(tmp_path))
    assert status == 2
    assert said == [
        f"tusd-py: cannot start: cannot listen on 127.0.0.1:{port}: the address is already in use; "
        "change --port or stop the other server"
    ]


def test_address_not_of_this_machine(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): no interface here has it, so bind() fails at once.
    status, said = _start("--host", "192.0.2.1", "--port", str(free_port()), "--storage-dir", str(tmp_path))
    assert status == 2
    assert said == [
        "tusd-py: cannot start: cannot listen on 192.0.2.1:"
        f"{said[0].split(':')[3]}: Cannot assign requested address; change --host to an address of this machine"
    ]


def test_storage_dir_not_usable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, said = _start("--port", str(free_port()), "--storage-dir", str(blocker / "data"))
    assert status == 2
    assert len(said) == 1
    assert said[0].startswith(f"tusd-py: cannot start: storage directory '{blocker / 'data'}' is not writable")
    assert said[0].endswith("; change --storage-dir")


def test_state_db_not_usable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    state = blocker / "state.sqlite3"
    status, said = _start("--port", str(free_port()), "--storage-dir", str(tmp_path / "data"), "--state-db", str(state))
    assert status == 2
    assert len(said) == 1
    assert said[0].startswith(f"tusd-py: cannot start: cannot open the state database {state}: ")
    assert said[0].endswith("; change --state-db or --storage-dir")


def test_state_database_unreachable(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://tusd@127.0.0.1:{port}/tusd"
    status, said = _start("--port", str(free_port()), "--storage-dir", str(tmp_path), "--database-url", url)
    assert status == 2
    assert len(said) == 1 and said[0].startswith("tusd-py: cannot start: cannot reach the state database: ")
    assert said[0].endswith("; check --database-url and that PostgreSQL runs")


def test_s3_endpoint_unreachable(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused at once
    status, said = _start(
        "--port",
        str(free_port()),
        "--storage-dir",
        str(tmp_path),
        "--storage",
        "s3",
        "--s3-bucket",
        "uploads",
        "--s3-endpoint",
        endpoint,
        "--s3-path-style",
        env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"},
    )
    assert status == 2
    assert len(said) == 1
    assert said[0].startswith("tusd-py: cannot start: S3 storage not usable: S3 checking bucket 'uploads': ")
    assert "cannot reach the S3 endpoint" in said[0] and endpoint in said[0]
    assert said[0].endswith("check --s3-bucket, --s3-endpoint, --s3-region, --s3-path-style and the AWS credentials")


@pytest.mark.parametrize("command", ["sweep", "cleanup"])
def test_one_shot_commands_refuse_the_same_way(command: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        [sys.executable, "-m", "tusd_py", command, "--storage-dir", str(blocker / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].endswith("; change --storage-dir")
