"""The collector's periodic tasks: a database other collectors keep busy is a warning for
the next round to mend, any other failure is logged with its traceback; neither stops it."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from collector.service import Collector


def test_a_busy_database_is_one_warning_line_and_other_failures_keep_their_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refresh() -> None:
        raise sqlite3.OperationalError("database is locked")

    def scan() -> None:
        raise ValueError("a bug")

    with caplog.at_level(logging.WARNING, logger="collector.service"):
        Collector._guarded(refresh)
        Collector._guarded(scan)
    busy, bug = caplog.records
    assert (busy.levelname, busy.exc_info) == ("WARNING", None)
    assert "refresh" in busy.getMessage()
    assert "database is locked" in busy.getMessage()
    assert bug.levelname == "ERROR"
    assert bug.exc_info is not None
    assert "scan" in bug.getMessage()
