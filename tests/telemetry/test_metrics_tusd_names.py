"""/metrics carries every series tusd v2.10 exports, under its exact name and type, beside ours.

The list is tusd's (``pkg/prometheuscollector``, ``pkg/hooks`` and ``cmd/tusd/cli/metrics.go`` at
v2.10.0), written down here rather than derived from our code, so a rename on our side fails.
prometheus_client's parser adds ``_total`` to every counter sample, which hides whether the wire
name had it; the exact names are therefore also checked on the ``# TYPE`` lines and sample lines
of the raw text, as Prometheus itself reads them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.client.tus import TUS, create, patch
from tusd_py.config.values import Config
from tusd_py.hooks import HookEvent, HookRegistry, HookType
from tusd_py.server.app import make_app

# (exact sample name, type, label names) as tusd v2.10 writes them.
TUSD_SERIES = [
    ("tusd_requests_total", "counter", {"method"}),
    ("tusd_errors_total", "counter", {"status", "code"}),
    ("tusd_bytes_received", "counter", set()),
    ("tusd_uploads_created", "counter", set()),
    ("tusd_uploads_finished", "counter", set()),
    ("tusd_uploads_terminated", "counter", set()),
    ("tusd_connections_open", "gauge", set()),
    ("tusd_hook_invocations_total", "counter", {"hooktype"}),
    ("tusd_hook_errors_total", "counter", {"hooktype"}),
]


def raw_samples(text: str) -> dict[str, float]:
    """Unlabelled sample lines, by their name exactly as written."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, number = line.partition(" ")
            samples[name] = float(number)
    return samples


def declared_types(text: str) -> dict[str, str]:
    return {parts[2]: parts[3] for parts in (line.split() for line in text.splitlines() if line.startswith("# TYPE "))}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return Config(storage_dir=str(tmp_path / "data"), workers=0)


async def test_every_tusd_series_is_there_with_its_name_type_and_labels(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    async def accept(event: HookEvent) -> None:
        return None

    registry = HookRegistry()
    registry.register(HookType.POST_CREATE, accept)
    client: TestClient = await aiohttp_client(make_app(config, hooks=registry))
    path = await create(client, length=4)  # a request, an upload and a hook, so every family has a sample
    assert (await patch(client, path, 0, b"abcd")).status == 204
    assert (await client.head("/files/nope", headers=TUS)).status == 404
    resp = await client.get("/metrics")
    text = await resp.text()

    types = declared_types(text)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, kind, labels in TUSD_SERIES:
        assert types.get(name) == kind, f"{name}: declared {types.get(name)!r}, tusd declares {kind}"
        family = families[name.removesuffix("_total")]
        assert family.type == kind
        sample_labels = [set(s.labels) for s in family.samples if not s.name.endswith("_created")]
        assert labels in sample_labels, f"{name}: labels {sample_labels}, tusd has {labels}"
    bare = raw_samples(text)
    for name in ("tusd_bytes_received", "tusd_uploads_created", "tusd_uploads_finished", "tusd_uploads_terminated"):
        assert name in bare, f"no sample line named exactly {name}"
        assert bare[name] == bare[name + "_total"], "tusd's name and ours count the same thing"
    assert 'tusd_requests_total{method="OPTIONS"}' in text  # tusd lists its six methods from the start


async def test_a_tusd_dashboard_query_moves_with_uploads(aiohttp_client, config: Config) -> None:  # type: ignore[no-untyped-def]
    """rate(tusd_bytes_received[1m]) and tusd_uploads_created read the bare names: they must move."""
    client: TestClient = await aiohttp_client(make_app(config))
    before = raw_samples(await (await client.get("/metrics")).text())
    path = await create(client, length=6)
    assert (await patch(client, path, 0, b"abcdef")).status == 204
    assert (await client.delete(path, headers=TUS)).status == 204
    after = raw_samples(await (await client.get("/metrics")).text())
    assert after["tusd_bytes_received"] - before["tusd_bytes_received"] == 6
    assert after["tusd_uploads_created"] - before["tusd_uploads_created"] == 1
    assert after["tusd_uploads_finished"] - before["tusd_uploads_finished"] == 1
    assert after["tusd_uploads_terminated"] - before["tusd_uploads_terminated"] == 1


def test_tusds_bare_counters_sum_over_processes(tmp_path: Path) -> None:
    """With --processes N the values come from prometheus_client's per-process files: tusd's names
    must carry the merged sum too (two processes count here, a third one answers)."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    count = "from tusd_py.telemetry import metrics; metrics.BYTES_RECEIVED.inc(5); metrics.UPLOADS_CREATED.inc()"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=60)
    show = "from tusd_py.telemetry import metrics; import sys; sys.stdout.write(metrics.exposition().decode())"
    text = subprocess.run([sys.executable, "-c", show], env=env, check=True, timeout=60, capture_output=True).stdout
    bare = raw_samples(text.decode())
    assert bare["tusd_bytes_received"] == 10 == bare["tusd_bytes_received_total"]
    assert bare["tusd_uploads_created"] == 2
