"""The shipped nginx configuration: what the tests render is the file in docs/, with the settings
the deployment guide gives reasons for, and nginx itself accepts it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conformance.nginx_balancer import REFERENCE_CONF, NginxBalancer, find_nginx, render_reference
from tests.real_parts import part_missing


def test_rendering_changes_only_the_upstream_servers_and_the_listen_line() -> None:
    shipped = REFERENCE_CONF.read_text()
    rendered = render_reference(["127.0.0.1:9001", "127.0.0.1:9002"], 8999)
    assert re.findall(r"^\s*server (\S+) max_fails=1 fail_timeout=5s;$", rendered, re.MULTILINE) == [
        "127.0.0.1:9001",
        "127.0.0.1:9002",
    ]
    assert re.findall(r"^\s*listen (\S+);$", rendered, re.MULTILINE) == ["127.0.0.1:8999"]

    def rest(text: str) -> list[str]:
        return [line for line in text.splitlines() if not re.match(r"\s*(server \S+ max_fails|listen )", line)]

    assert rest(rendered) == rest(shipped)


def test_a_configuration_without_the_lines_to_replace_is_refused() -> None:
    with pytest.raises(ValueError, match="listen"):
        render_reference(["127.0.0.1:1"], 2, text="upstream u { server 127.0.0.1:1; }\n")


@pytest.mark.parametrize(
    "directive",
    [
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "client_max_body_size 0;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header X-Forwarded-Host $http_host;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        'proxy_set_header Forwarded "";',
        'proxy_set_header X-Forwarded-Prefix "";',
        "proxy_read_timeout 120s;",
        "proxy_send_timeout 120s;",
        "client_body_timeout 120s;",
    ],
)
def test_the_reference_sets(directive: str) -> None:
    lines = {line.strip() for line in REFERENCE_CONF.read_text().splitlines()}
    assert directive in lines


@pytest.mark.nginx
def test_nginx_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    if find_nginx() is None:
        part_missing("nginx is not installed (Debian package nginx; make test installs it)")
    balancer = NginxBalancer(["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"], tmp_path)
    (tmp_path / "tusd-py.conf").write_text(render_reference(balancer.upstreams, balancer.port))
    (tmp_path / "nginx.conf").write_text(balancer.main_conf())
    check = subprocess.run(
        [balancer.binary, "-p", str(tmp_path), "-e", str(tmp_path / "e.log"), "-c", str(tmp_path / "nginx.conf"), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stderr
