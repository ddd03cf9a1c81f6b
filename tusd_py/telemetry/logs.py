"""structlog set-up: JSON lines in production, readable lines on a terminal.

Our own code logs through structlog. Libraries (aiohttp.server, asyncio, botocore...) log through
the stdlib; their records go through structlog's ProcessorFormatter so they come out in the same
format, after two filters: expected client behaviour (a reset connection, a body ended by a newer
request) is demoted from error to debug, and a record repeating within REPEAT_WINDOW seconds is
counted instead of printed, then reported once with ``repeated``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

# Seconds during which repeats of one message are counted rather than printed.
REPEAT_WINDOW = 10.0


def _expected_client_errors() -> tuple[type[BaseException], ...]:
    from aiohttp import ClientPayloadError
    from aiohttp.web_protocol import RequestPayloadError

    from tusd_py.model.upload import BodyEnded

    # ConnectionError covers resets and broken pipes (aiohttp's ClientConnectionResetError too);
    # BodyEnded is a body this server ended itself (takeover, idle), re-raised by aiohttp
    # when it drains the unread rest of that body after the response.
    return (ConnectionError, RequestPayloadError, ClientPayloadError, BodyEnded)


class DemoteClientErrors(logging.Filter):
    """Records caused by the client going away become debug, without a traceback.

    Also drops records below ``threshold``: it runs after the logger's own level check, so a
    demoted record must be measured again.
    """

    def __init__(self, threshold: int, expected: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self._threshold = threshold
        self._expected = expected

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (isinstance(exc, self._expected) or isinstance(exc.__cause__, self._expected)):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info, record.exc_text = None, None
            record.client_error = f"{type(exc).__name__}: {exc}"
        return record.levelno >= self._threshold


@dataclass
class _Window:
    since: float
    suppressed: int
    name: str
    levelno: int
    message: str


class CollapseRepeats(logging.Filter):
    """The first record of a kind passes; repeats within ``window`` seconds are only counted.

    A kind is logger, level, first line of the message template and exception type, so a flood
    whose details vary (peer addresses, fd numbers) still collapses. The count reaches the log on
    the next record of that kind after the window (as ``repeated``) or from ``summaries()``.
    """

    def __init__(self, window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._window = window
        self._clock = clock
        self._seen: dict[tuple[str, int, str, str], _Window] = {}
        self._lock = threading.Lock()  # records also come from worker threads

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "repeat_window_s"):  # a summary made by summaries()
            return True
        message = str(record.msg).split("\n", 1)[0]
        exc_type = type(record.exc_info[1]).__name__ if record.exc_info and record.exc_info[1] else ""
        key = (record.name, record.levelno, message, exc_type)
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self._window:
                seen.suppressed += 1
                return False
            if seen is not None and seen.suppressed:
                record.repeated = seen.suppressed
            self._seen[key] = _Window(now, 0, record.name, record.levelno, message)
            if len(self._seen) > 1000:  # bounded memory: forget quiet kinds
                self._seen = {k: w for k, w in self._seen.items() if w.suppressed or now - w.since < self._window}
        return True

    def summaries(self, *, pending: bool = False) -> list[logging.LogRecord]:
        """One record per kind whose window has ended with repeats not yet reported.

        ``pending``: windows still open count too (at exit, when no later tick will come).
        """
        now = self._clock()
        records = []
        with self._lock:
            for window in self._seen.values():
                if window.suppressed and (pending or now - window.since >= self._window):
                    records.append(
                        logging.makeLogRecord(
                            {
                                "name": window.name,
                                "levelno": window.levelno,
                                "levelname": logging.getLevelName(window.levelno),
                                "msg": window.message,
                                "repeated": window.suppressed,
                                "repeat_window_s": self._window,
                            }
                        )
                    )
                    window.suppressed = 0
        return records


_collapse = CollapseRepeats()


def flush_repeated_logs(*, pending: bool = False) -> None:
    """Write the "repeated N times" records whose window has ended (called periodically; with
    ``pending`` at exit, for every count not yet written)."""
    for record in _collapse.summaries(pending=pending):
        logging.getLogger(record.name).handle(record)


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    threshold = logging.getLevelNamesMapping()[level.upper()]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),  # one write per line: workers share stderr
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.addFilter(DemoteClientErrors(threshold, _expected_client_errors()))
    global _collapse
    _collapse = CollapseRepeats()  # a fresh count per configuration
    handler.addFilter(_collapse)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(threshold)
    logging.captureWarnings(True)  # warnings.warn() output is a log line too, not bare stderr text
