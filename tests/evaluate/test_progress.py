"""avssl.evaluate.progress: off a terminal, long loops log how far they got."""

from __future__ import annotations

import logging

from avssl.evaluate import progress as progress_module
from avssl.evaluate.progress import progress


def test_off_a_terminal_a_periodic_log_line_and_a_last_one(monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "on_terminal", lambda: False)
    with caplog.at_level(logging.INFO, logger="avssl.evaluate.progress"):
        assert list(progress(range(3), 3, "extract", every_s=0.0)) == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extract: 1/3 files") and lines[-1].startswith("extract: 3/3 files done")
