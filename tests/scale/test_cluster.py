"""Three instances on one storage behind nginx (the reference configuration): the tus protocol as a
client sees it through the balancer, the forwarded headers, and unbuffered request bodies."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from conformance.client import Client
from conformance.cluster import TusCluster
from conformance.runner import run_checks
from conformance.selftest import not_passed
from tusd_py.protocol.draft_versions import VERSIONS

pytestmark = [pytest.mark.slow, pytest.mark.nginx]


def test_conformance_suite_through_nginx(cluster: TusCluster, auth_headers: dict[str, str]) -> None:
    outcomes = run_checks(Client(cluster.url, auth_headers))
    failed = [o for o in outcomes if o.status == "fail"]
    assert not failed, failed
    # Every registered check ran and passed: none skipped because nginx hid an extension.
    assert not_passed(outcomes) == [], [o for o in outcomes if o.status != "pass"]
    passed = {o.name for o in outcomes if o.status == "pass"}
    assert {f"draft-v{n}-resume" for n in VERSIONS} <= passed  # every interop version, the 104 through nginx


def _served_by(cluster: TusCluster, upload_id: str) -> set[int]:
    """Which instances logged a request on this upload."""
    found = set()
    for index, instance in enumerate(cluster.instances):
        for line in instance.logs().splitlines():
            if line.startswith("{") and upload_id in line and json.loads(line).get("event") == "request":
                found.add(index)
    return found


def _wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_round_robin_spreads_one_upload_over_the_instances_and_its_bytes_stay_whole(
    cluster: TusCluster, auth_headers: dict[str, str]
) -> None:
    client = Client(cluster.url, auth_headers)
    payload = bytes(range(256)) * 4096  # 1 MiB
    chunk = 64 * 1024
    url = client.create(len(payload))
    for offset in range(0, len(payload), chunk):
        assert client.head(url).header("Upload-Offset") == str(offset)
        response = client.patch(url, offset, payload[offset : offset + chunk])
        assert response.status == 204, response.body
    assert client.head(url).header("Upload-Offset") == str(len(payload))
    download = client.request("GET", url)
    assert download.status == 200
    assert hashlib.sha256(download.body).digest() == hashlib.sha256(payload).digest()
    upload_id = urlsplit(url).path.rsplit("/", 1)[1]
    # 33 requests round robin over three instances: every one of them took part.
    assert _wait_until(lambda: _served_by(cluster, upload_id) == {0, 1, 2}), _served_by(cluster, upload_id)


def test_location_is_the_balancer_url_and_client_forwarded_headers_are_dropped(
    cluster: TusCluster, auth_headers: dict[str, str]
) -> None:
    client = Client(cluster.url, auth_headers)
    spoofed = {"Forwarded": "host=evil.example;proto=https", "X-Forwarded-Prefix": "/evil", "Upload-Length": "3"}
    for _ in range(3):  # one per instance
        response = client.request("POST", headers=spoofed)
        assert response.status == 201
        location = response.header("Location") or ""
        assert location.startswith(f"http://127.0.0.1:{urlsplit(cluster.url).port}/files/"), location


def test_a_patch_body_reaches_the_instance_while_it_is_still_being_sent(
    cluster: TusCluster, auth_headers: dict[str, str]
) -> None:
    """proxy_request_buffering off: the first half of a body is stored before the second is sent."""
    if cluster.backend != "filesystem":
        pytest.skip("S3 stores bytes below a part only when the body ends: arrival is visible on the filesystem")
    client = Client(cluster.url, auth_headers)
    half = 1024 * 1024  # two of the filesystem backend's 512 KiB write batches
    url = client.create(2 * half)
    path = urlsplit(url).path
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1:{urlsplit(cluster.url).port}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {2 * half}\r\n"
        f"Authorization: {auth_headers['Authorization']}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", urlsplit(cluster.url).port or 80), timeout=30) as sock:
        sock.sendall(head.encode() + b"a" * half)
        # A buffering proxy would hold all of it until the body ends: the instance would see nothing.
        arrived = _wait_until(lambda: _stored(cluster, upload_id=path.rsplit("/", 1)[1]) >= half // 2)
        sock.sendall(b"b" * half)
        answer = sock.recv(4096)
    assert arrived, "nginx buffered the request body"
    assert answer.startswith(b"HTTP/1.1 204"), answer
    assert client.head(url).header("Upload-Offset") == str(2 * half)


def _stored(cluster: TusCluster, upload_id: str) -> int:
    """Bytes of the upload on the instances' shared directory (the data file's size is the offset)."""
    data = cluster.instances[0].storage_dir / upload_id
    return data.stat().st_size if data.exists() else 0
