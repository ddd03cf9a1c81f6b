"""Serving one process: the listening socket, its limits, "serving" once up, a start-up refusal.

The command runs this directly, or (``--processes N``) each worker process of the supervisor in
tusd_py/server/processes.py does, with ``reuse_port`` so that N sockets share one port.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable

import structlog
from aiohttp import web

from tusd_py.config.values import Config
from tusd_py.server.startup import explain_startup_failure

#: The collector's first threshold while serving (CPython's default is 700). A small upload
#: allocates enough short-lived containers (requests, tasks, futures, rows) that the default ran a
#: young collection every ~5 uploads, each walking every live request's objects again: 8-10% of
#: the server's CPU in bench/ small. At 7000 the same garbage is collected in a tenth of the
#: passes; the objects a pass finds are the same, they wait a little longer (kilobytes).
GC_YOUNG_THRESHOLD = 7000


def tune_collector() -> None:
    """Once serving: every object made at start-up (modules, the app, its parts) is moved out of
    the collector's reach (``gc.freeze``: they live as long as the process, and a full collection
    no longer walks them), and young collections run less often (see ``GC_YOUNG_THRESHOLD``)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def run_server(config: Config, *, reuse_port: bool = False, on_serving: Callable[[], None] | None = None) -> int:
    """Build the app from ``config`` and serve it (the exit status of the process)."""
    from tusd_py.server.app import make_app

    try:
        app = make_app(config)
    except ValueError as exc:  # AuthConfigError and friends: an unsafe or incomplete configuration
        print(f"tusd-py: refusing to start: {exc}", file=sys.stderr)
        return 2
    return serve_app(app, config, reuse_port=reuse_port, on_serving=on_serving)


def serve_app(
    app: web.Application,
    config: Config,
    *,
    reuse_port: bool = False,
    on_serving: Callable[[], None] | None = None,
) -> int:
    """Serve ``app`` until SIGTERM; 0 after a graceful stop, 2 (reason printed) when it cannot start."""
    from tusd_py.server.connections import default_max_connections, raise_open_file_limit, serve
    from tusd_py.telemetry.logs import REPEAT_WINDOW

    log = structlog.get_logger("tusd_py")
    limit = raise_open_file_limit()
    max_connections = config.max_connections or default_max_connections(limit.soft)
    log.info("open-file limit", soft=limit.soft, hard=limit.hard, was=limit.was, max_connections=max_connections)
    if max_connections >= limit.soft:
        log.warning("--max-connections is not below the open-file limit: accept() may fail with EMFILE")
    ssl_context = None
    if config.tls_certificate is not None and config.tls_key is not None:
        from tusd_py.server.tls import TLSConfigError, server_context

        try:
            ssl_context = server_context(config.tls_certificate, config.tls_key, config.tls_mode)
        except TLSConfigError as exc:
            print(f"tusd-py: cannot start: --tls-certificate / --tls-key: {exc}", file=sys.stderr)
            return 2
    site = {
        "host": config.host,
        "port": config.port,
        "unix_socket": config.unix_socket,
        "ssl_context": ssl_context,
        "max_connections": max_connections,
        "open_files": limit.soft,
        "header_timeout": config.header_timeout,
        "keepalive_timeout": config.keepalive_timeout,
        "reuse_port": reuse_port,
    }
    serving = False

    def announce() -> None:
        nonlocal serving
        serving = True
        scheme = "https" if ssl_context is not None else "http"
        where = f"unix:{config.unix_socket}:" if config.unix_socket else f"{config.host}:{config.port}"
        log.info("serving", url=f"{scheme}://{where}{config.base_path}", storage=config.storage)
        tune_collector()
        if on_serving is not None:
            on_serving()

    try:
        serve(app, site, config.shutdown_timeout, tick=REPEAT_WINDOW, on_serving=announce)
    except Exception as exc:
        if serving:
            raise
        return refuse_start(exc, config)
    return 0


def refuse_start(exc: Exception, config: Config) -> int:
    """Print the one-line reason of a start-up failure and return exit status 2 (or re-raise a bug)."""
    reason = explain_startup_failure(exc, config)
    if reason is None:
        raise exc
    print(f"tusd-py: cannot start: {reason}", file=sys.stderr)
    return 2
