"""Three (or N) tusd-py instances behind nginx, as the reference deployment runs them.

Every instance is the real CLI (conformance.live_server.LiveServer) with ``--behind-proxy``, on
one shared storage (the same ``--storage-dir``, or the same S3 bucket and prefix through
``args``), and nginx (conformance.nginx_balancer) balances round robin over them. ``url`` is
the collection URL through nginx; ``instances`` are reachable directly too, e.g. to kill one.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from conformance.live_server import LiveServer
from conformance.nginx_balancer import NginxBalancer


class TusCluster:
    def __init__(
        self,
        workdir: str | Path,
        *args: str,
        instances: int = 3,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.backend = "s3" if "s3" in args else "filesystem"  # the value of --storage
        storage = self.workdir / "shared-data"
        self.instances = [
            LiveServer(storage, "--behind-proxy", *args, env=env, log_path=self.workdir / f"instance-{i}.log")
            for i in range(instances)
        ]
        self.nginx: NginxBalancer | None = None

    @property
    def url(self) -> str:
        assert self.nginx is not None, "start the cluster first"
        return self.nginx.url

    @property
    def base(self) -> str:
        assert self.nginx is not None, "start the cluster first"
        return self.nginx.base

    def start(self) -> TusCluster:
        try:
            for instance in self.instances:
                instance.start()
            upstreams = [f"127.0.0.1:{instance.port}" for instance in self.instances]
            self.nginx = NginxBalancer(upstreams, self.workdir / "nginx").start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            if self.nginx is not None:
                self.nginx.stop()
        finally:
            for instance in self.instances:
                instance.stop()

    def logs(self) -> str:
        return "\n".join(instance.logs() for instance in self.instances)

    def __enter__(self) -> TusCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
