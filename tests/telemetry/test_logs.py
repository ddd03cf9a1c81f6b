"""Stdlib log records (aiohttp, asyncio) come out as structlog lines, collapsed and demoted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from tusd_py.model.upload import BodyEnded, EndReason
from tusd_py.telemetry.logs import CollapseRepeats, DemoteClientErrors, configure_logging


def record(msg: str, level: int = logging.ERROR, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("asyncio", level, __file__, 1, msg, None, exc_info)


def test_repeats_within_the_window_are_counted_and_reported_once() -> None:
    now = [0.0]
    collapse = CollapseRepeats(window=10, clock=lambda: now[0])
    flood = [
        record(f"socket.accept() out of system resource\nsocket: <fd={i}>", exc=OSError(24, "EMFILE"))
        for i in range(500)
    ]
    passed = []
    for item in flood:
        now[0] += 0.01
        if collapse.filter(item):
            passed.append(item)
    assert len(passed) == 1  # details after the first line differ; still one kind
    assert collapse.summaries() == []  # the window (10 s) is not over yet
    now[0] = 5
    assert not collapse.filter(flood[0])
    (at_exit,) = collapse.summaries(pending=True)  # at exit the open window is reported too
    assert at_exit.repeated == 500
    now[0] = 20
    assert collapse.summaries() == []
    assert [collapse.filter(item) for item in flood[:3]] == [True, False, False]  # a new window
    now[0] = 40
    (summary,) = collapse.summaries()
    assert summary.repeated == 2 and summary.levelno == logging.ERROR
    assert summary.getMessage() == "socket.accept() out of system resource"
    assert collapse.filter(summary)
    assert collapse.summaries() == []  # reported once
    # The next occurrence after the window passes again, with nothing left to report.
    later = record("socket.accept() out of system resource", exc=OSError(24, "EMFILE"))
    assert collapse.filter(later) and not hasattr(later, "repeated")


def test_a_repeat_after_the_window_carries_the_count_of_the_ones_hidden() -> None:
    now = [0.0]
    collapse = CollapseRepeats(window=1, clock=lambda: now[0])
    assert collapse.filter(record("boom"))
    assert not collapse.filter(record("boom"))
    assert not collapse.filter(record("boom"))
    assert collapse.filter(record("other message"))  # another kind is not held back
    now[0] = 1.5
    again = record("boom")
    assert collapse.filter(again) and again.repeated == 2


def test_client_disconnects_are_demoted_and_real_errors_are_not() -> None:
    demote = DemoteClientErrors(logging.INFO, (ConnectionError, BodyEnded))
    reset = record("Unhandled exception", exc=ConnectionResetError("Connection lost"))
    assert not demote.filter(reset)  # debug now: below the info threshold
    assert reset.levelno == logging.DEBUG and reset.exc_info is None
    assert reset.client_error == "ConnectionResetError: Connection lost"
    assert not demote.filter(record("Unhandled exception", exc=BodyEnded(EndReason.HANDED_OVER, "taken over")))
    bug = record("Error handling request", exc=KeyError("x"))
    assert demote.filter(bug) and bug.levelno == logging.ERROR and bug.exc_info is not None
    assert DemoteClientErrors(logging.DEBUG, (ConnectionError,)).filter(record("x", exc=BrokenPipeError()))


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers, root.level = handlers, level
    logging.captureWarnings(False)
    structlog.reset_defaults()  # its logger factory holds this test's captured stderr


def test_stdlib_records_are_json_lines(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    logging.getLogger("aiohttp.server").error("Unhandled exception", exc_info=ConnectionResetError("gone"))
    logging.getLogger("tusd_py.server.connections").warning("at the cap", extra={"limit": 3})
    lines = capsys.readouterr().err.strip().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["Error handling request", "at the cap"]
    assert events[0]["level"] == "error" and events[0]["logger"] == "aiohttp.server"
    assert "ValueError: bad" in events[0]["exception"]
    assert events[1]["limit"] == 3 and events[1]["level"] == "warning"


class WriteRecorder:
    """A stderr that keeps each write() call apart, the way each becomes one write(2) on a shared file."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_each_line_is_one_write_so_worker_processes_never_splice_lines(
    restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --processes N: every worker writes to the same stderr; a line written in two calls (text, then
    # "\n") lets another worker's line land between them, and two JSON objects share one line.
    recorder = WriteRecorder()
    monkeypatch.setattr("sys.stderr", recorder)
    configure_logging("json", "info")
    structlog.get_logger().info("serving", pids=[1, 2])
    logging.getLogger("tusd_py.server.connections").warning("at the cap")
    assert len(recorder.writes) == 2
    for text in recorder.writes:
        assert text.endswith("\n") and text.count("\n") == 1
        json.loads(text)
