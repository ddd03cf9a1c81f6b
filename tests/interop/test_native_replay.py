"""Native clients that cannot run here (TUSKit on iOS, tus-java-client, tus-android-client),
replayed from the request sequences their source sends (replay.py; facts and versions in CLIENTS.md).

Each case names the client version it mirrors, runs the whole sequence (including a cut-off PATCH
and the client's own way of resuming) and checks the stored bytes and the final HEAD.
"""

from __future__ import annotations

import hashlib
import os

import pytest
from interop_support import head_upload, stored_sha256
from replay import SEQUENCES, replay

pytestmark = pytest.mark.interop

PAYLOAD = os.urandom(1_700_003)  # not a multiple of any client's chunk size

CASES = [(client, scenario) for client, scenarios in SEQUENCES.items() for scenario in scenarios]


@pytest.mark.parametrize(("client", "scenario"), CASES, ids=[f"{c}:{s}" for c, s in CASES])
def test_native_client_sequence(tus_url: str, auth_headers: dict[str, str], client: str, scenario: str) -> None:
    result = replay(tus_url, SEQUENCES[client][scenario], PAYLOAD, filename="meeting.m4a", extra_headers=auth_headers)
    assert result.ok, result.describe()
    assert result.upload_url is not None
    head = head_upload(result.upload_url, auth_headers)
    assert head.headers.get("upload-offset") == head.headers.get("upload-length") == str(len(PAYLOAD))
    assert stored_sha256(result.upload_url, auth_headers) == hashlib.sha256(PAYLOAD).hexdigest()
