"""The ``tusd-py`` command. Every flag has a TUSD_PY_* environment variable twin (tusd_py/config/options.py).

tusd-py                     serve (the default command)
tusd-py serve --port 8080   same, with flags (``tusd-py --port 8080`` too)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Collection, Sequence

import structlog

from tusd_py import __version__
from tusd_py.config.loading import ConfigError, describe_default, expected, load_config, unknown_env
from tusd_py.config.options import COMMAND_GROUPS, OPTIONS, TUSD_ALIASES
from tusd_py.config.tusd_flags import rewrite
from tusd_py.config.values import Config
from tusd_py.server.serving import refuse_start, run_server

COMMANDS = {
    "serve": "run the server (the default command)",
    "sweep": "delete expired unfinished uploads once and exit",
    "cleanup": "delete failed recordings older than --cleanup-failed-days once and exit",
    "dev-token": "print a JWT signed with --jwt-secret, for development and tests",
}


class _Help(argparse.HelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=min(shutil.get_terminal_size().columns, 110))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tusd-py",
        description="tus resumable-upload server. Without a command: serve. Every flag has an environment "
        "twin: TUSD_PY_ + the flag in capitals, e.g. --max-size is TUSD_PY_MAX_SIZE.",
        epilog="tusd-py COMMAND --help lists a command's flags.",
    )
    parser.add_argument("--version", action="version", version=f"tusd-py {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command, help_text in COMMANDS.items():
        target = sub.add_parser(
            command, help=help_text, description=help_text, usage=f"tusd-py {command} [flags]", formatter_class=_Help
        )
        if command == "dev-token":
            token = target.add_argument_group("token")
            token.add_argument("--user", required=True, help="the user id to put in the token")
            token.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds (default: 3600)")
        _add_options(target, COMMAND_GROUPS[command])
    return parser


def _add_options(target: argparse.ArgumentParser, groups: tuple[str, ...]) -> None:
    for group in groups:
        section = target.add_argument_group(group)
        for option in (option for option in OPTIONS if option.group == group):
            accepts = expected(option.field)
            # A help text that explains its own default ("default: AWS") is clearer than "none".
            notes = [] if "default:" in option.help else [f"default: {describe_default(option.field)}"]
            if accepts.startswith("one of"):
                notes.insert(0, accepts)
            spellings = [option.flag, *(alias for alias, flag in TUSD_ALIASES.items() if flag == option.flag)]
            if option.switch:
                notes.append(f"env {option.env}=1")
                section.add_argument(
                    *spellings,
                    dest=option.field,
                    action="store_const",
                    const=True,
                    default=None,
                    help=f"{option.help} ({'; '.join(notes)})",
                )
                continue
            notes.append(f"env {option.env}")
            section.add_argument(
                *spellings,
                dest=option.field,
                default=None,
                metavar="CHOICE" if accepts.startswith("one of") else _METAVARS.get(accepts, "TEXT"),
                help=f"{option.help} ({'; '.join(notes)})",
            )
            if option.secret:
                section.add_argument(
                    option.file_flag,
                    dest=option.file_field,
                    default=None,
                    metavar="PATH",
                    help=f"read {option.flag} from this file (env {option.file_env})",
                )


_METAVARS = {"a whole number": "N", "a number": "N", "a comma-separated list": "LIST"}


# Without Redis a one-shot command's locks live in its own process, where a running server cannot
# see them; and a server without Redis (the sole writer) also trusts the S3 info objects it keeps
# in memory. A running server sweeps and cleans by itself, so this is for cron jobs and stopped servers.
ONE_SHOT_WITHOUT_REDIS = (
    "no --redis-url: this command's upload locks are its own, unseen by a running server; run it only "
    "while no server uses this storage, or give it and every server the same --redis-url"
)


def _with_command(argv: Sequence[str]) -> list[str]:
    """``tusd-py --port 8080`` means ``tusd-py serve --port 8080``: serve is the default command."""
    args = list(argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    return args


def parse_args(argv: Sequence[str], env_names: Collection[str] = ()) -> argparse.Namespace:
    """Our flags, and tusd's spellings of them (tusd_py/config/tusd_flags.py)."""
    return _parser().parse_args(_with_command(rewrite(argv, env_names)))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv, os.environ.keys())
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"tusd-py: invalid configuration: {exc}", file=sys.stderr)
        return 2
    from tusd_py.telemetry.logs import configure_logging

    configure_logging(config.log_format, config.log_level)
    for warning in unknown_env(os.environ):
        structlog.get_logger("tusd_py").warning(warning)
    if args.command in ("sweep", "cleanup"):
        if config.redis_url is None:
            structlog.get_logger("tusd_py").warning(ONE_SHOT_WITHOUT_REDIS, command=args.command)
        once = _sweep_once if args.command == "sweep" else _cleanup_once
        try:
            return asyncio.run(once(config))
        except Exception as exc:
            return refuse_start(exc, config)
    if args.command == "dev-token":
        return _print_dev_token(config, args.user, args.ttl)
    if config.processes > 1:
        from tusd_py.server.processes import serve_processes

        return serve_processes(config)
    return run_server(config)


def _print_dev_token(config: Config, user: str, ttl: float) -> int:
    from tusd_py.auth import AuthConfigError, mint_dev_token
    from tusd_py.server.wiring import auth_config

    try:
        print(mint_dev_token(auth_config(config), user, ttl))
    except (AuthConfigError, ValueError) as exc:
        print(f"tusd-py: cannot mint a token: {exc}", file=sys.stderr)
        return 2
    return 0


async def _cleanup_once(config: Config) -> int:
    from tusd_py.server.runtime import one_shot_steps, started
    from tusd_py.server.wiring import build_parts
    from tusd_py.uploads.actor import SERVER
    from tusd_py.uploads.cleanup import cleanup_failed

    parts = build_parts(config, serving=False)  # --database-url: the shared recordings, not the local SQLite
    async with started(one_shot_steps(parts)):
        removed = await cleanup_failed(parts.uploads, SERVER, parts.pipeline, config.cleanup_failed_days)
    print(f"deleted {len(removed)} failed recordings older than {config.cleanup_failed_days:g} days")
    return 0


async def _sweep_once(config: Config) -> int:
    from extensions.expiration import sweep
    from tusd_py.server.runtime import one_shot_steps, started
    from tusd_py.server.wiring import build_parts

    parts = build_parts(config, serving=False)
    async with started(one_shot_steps(parts)):  # the sweep takes each upload's lock, shared with running servers
        report = await sweep(parts.uploads)
    print(f"expired {report.expired} uploads, skipped {report.skipped_busy} busy, removed {report.orphans} orphans")
    return 0


if __name__ == "__main__":
    sys.exit(main())
