"""RUN_DIR/metrics.csv: one row per logging step, kept across resumes.

Lightning's CSVLogger deletes an existing metrics.csv when its folder is not empty and mishandles the
header on append, so a resumed run would lose its earlier rows. This logger keeps the rows logged
before the resumed step (the rows after it are logged again by the resumed run) and rewrites the file
atomically whenever a new column appears. A write the disk refuses raises RunDirWriteError.
"""

from __future__ import annotations

import csv
import math
import os
from argparse import Namespace
from pathlib import Path
from typing import Any, Optional

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from avssl.train.run_dir import disk_errors


def read_metrics(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a metrics.csv (complete rows only: a line cut by a crash is dropped)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return [row for row in reader if None not in row and None not in row.values()]


class RunCSVLogger(Logger):
    """Metrics to `run_dir/metrics.csv`; `resume_step`: keep the earlier rows with step < it."""

    def __init__(self, run_dir: str | os.PathLike, resume_step: Optional[int] = None) -> None:
        super().__init__()
        self.path = Path(run_dir) / "metrics.csv"
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = ["step"]
        self._pending: list[dict[str, Any]] = []
        if resume_step is not None:
            for row in read_metrics(self.path):
                if int(row["step"]) < resume_step:
                    self._add_columns(row)
                    self._rows.append(row)
        self._header_dirty = True  # the file on disk is replaced by the kept rows on the first flush

    @property
    def name(self) -> str:
        return "metrics"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        pass  # the resolved config is RUN_DIR/config.yaml

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: Optional[int] = None) -> None:
        row = {"step": int(step) if step is not None else len(self._rows)}
        for key, value in metrics.items():
            value = value.item() if hasattr(value, "item") else value
            row[key] = "" if isinstance(value, float) and math.isnan(value) else value
        last = self._pending[-1] if self._pending else (self._rows[-1] if self._rows else None)
        if last is not None and int(last["step"]) == row["step"] and not (set(last) & set(row)) - {"step"}:
            # a callback's metric (e.g. the online probe) and the step's training metrics share a row
            last.update(row)
            if not self._pending:
                self._header_dirty = True  # the row is already on disk: rewrite the file
            return
        self._pending.append(row)

    def _add_columns(self, row: dict[str, Any]) -> bool:
        new = [k for k in row if k not in self._columns]
        if new:
            self._columns = ["step"] + sorted(set(self._columns[1:]) | set(new))
        return bool(new)

    @rank_zero_only
    def save(self) -> None:
        if not self._pending and not self._header_dirty:
            return
        for row in self._rows + self._pending if self._header_dirty else self._pending:
            self._header_dirty |= self._add_columns(row)
        with disk_errors(self.path):
            self._write()
        self._rows.extend(self._pending)
        self._pending = []

    def _write(self) -> None:
        if self._header_dirty:
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns, restval="")
                writer.writeheader()
                writer.writerows(self._rows + self._pending)
            os.replace(tmp, self.path)
            self._header_dirty = False
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns, restval="").writerows(self._pending)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
