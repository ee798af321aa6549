"""RUN_DIR/bad_files.csv and what reads it: the failure policy (appends the files that failed while
training, stops the run past data.max_failures distinct files) and the quarantine (a file that
failed is not opened again in any later epoch: loader workers, the other DDP ranks and a resumed run
read the quarantined files back from bad_files.csv).

The quarantine takes effect at the next epoch, not at once: a loader worker builds samples ahead of
training, so "at once" would depend on its timing, and a resumed run would then draw other samples
than the uninterrupted one. Within an epoch a file is drawn as many times as it gives samples
(data.samples_per_file: once for a short clip); a batch that draws a file twice (a movie's clips, a
long file's samples) skips it after its first failure, a later batch of the epoch tries it again.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Optional

import lightning as L
import torch
import torch.distributed as dist

from avssl.train.run_dir import disk_errors

log = logging.getLogger(__name__)

COLUMNS = ["path", "reason", "step", "epoch"]


def write_bad_rows(path: Path, rows: Iterable[Iterable[Any]]) -> None:
    """Write bad_files.csv anew (header and rows), atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with disk_errors(path):
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        os.replace(tmp, path)


def append_bad_rows(path: Path, rows: list[tuple[str, str, int, int]]) -> None:
    """Append rows (path, reason, step, epoch); one small append per call: O_APPEND keeps the lines
    of several ranks whole."""
    with disk_errors(path):
        new_file = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new_file:
                writer.writerow(COLUMNS)
            writer.writerows(rows)


def read_bad_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of bad_files.csv ([] when there is none)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if None not in row and row.get("path")]


def keep_rows_before(path: Path, step: int) -> None:
    """On resume from `step`: drop the training rows of steps at or after it (the resumed run trains
    them again and writes its own), keep the manifest's rows; writes the current header."""
    if not path.exists():
        return
    rows = read_bad_rows(path)
    kept = [r for r in rows if not r.get("step") or int(r["step"]) < step]
    write_bad_rows(path, ([r.get(c) or "" for c in COLUMNS] for r in kept))


class BadFileQuarantine:
    """epoch -> the table indices a sample of that epoch must not open: the files listed in
    bad_files.csv as failed in an earlier epoch. Picklable (it travels to loader workers with the
    dataset); a process re-reads the file when it first builds a sample of a new epoch."""

    def __init__(self, bad_files: str | os.PathLike, paths: Any) -> None:
        self.bad_files = Path(bad_files)
        self.paths = paths  # the training table's paths, paths[i] -> str
        self._epoch: Optional[int] = None
        self._skip: frozenset[int] = frozenset()

    def __call__(self, epoch: int) -> frozenset[int]:
        if epoch != self._epoch:
            self._skip = self._read(epoch)
            self._epoch = epoch
        return self._skip

    def _read(self, epoch: int) -> frozenset[int]:
        failed = set()
        for row in read_bad_rows(self.bad_files):
            if row.get("epoch", "").strip().isdigit() and int(row["epoch"]) < epoch:
                failed.add(row["path"])
        if not failed:
            return frozenset()
        return frozenset(i for i, p in enumerate(self.paths) if str(p) in failed)


class TooManyFailuresError(RuntimeError):
    """More files failed to decode than data.max_failures allows (the message names them)."""


class FailurePolicy(L.Callback):
    """Records the bad files that batches report (`failures`: (path, reason) pairs): appends each to
    RUN_DIR/bad_files.csv (path, reason, step, epoch), logs `data/failures` (failures, all ranks) and
    `data/failed_files` (distinct files), and stops the run once more than `max_failures` distinct
    files failed over all ranks. Every rank holds the same totals (the checkpoint is rank 0's)."""

    def __init__(self, bad_files: str | os.PathLike, max_failures: int) -> None:
        self.bad_files = Path(bad_files)
        self.max_failures = max_failures
        self.count = 0
        self.files: set[str] = set()

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "paths": sorted(self.files)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.files = set(state["paths"])

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        # before the step: `step` in bad_files.csv is the step that trains on the batch, as in metrics.csv
        failures = batch.get("failures", []) if isinstance(batch, dict) else []
        if failures:
            epoch = int(batch["key_epoch"][0]) if "key_epoch" in batch else trainer.current_epoch
            append_bad_rows(self.bad_files, [(path, reason, trainer.global_step, epoch) for path, reason in failures])
        new, paths = len(failures), [path for path, _ in failures]
        if trainer.world_size > 1:
            new, paths = self._gather(trainer, pl_module, new, paths)
        self.count += new
        self.files.update(paths)
        pl_module.log("data/failures", float(self.count), batch_size=1, rank_zero_only=True)
        pl_module.log("data/failed_files", float(len(self.files)), batch_size=1, rank_zero_only=True)
        if len(self.files) > self.max_failures:
            shown = sorted(self.files)
            raise TooManyFailuresError(
                f"{len(shown)} files failed to decode ({self.count} failures), more than "
                f"data.max_failures={self.max_failures}; see {self.bad_files}: " + ", ".join(shown[:20])
                + (f" and {len(shown) - 20} more" if len(shown) > 20 else "")
            )

    @staticmethod
    def _gather(trainer: L.Trainer, pl_module: L.LightningModule, new: int, paths: list[str]) -> tuple[int, list[str]]:
        """All ranks' new failures: their number, and the paths (gathered only when there are any,
        which every rank learns from the same sum)."""
        total = torch.tensor(float(new), device=pl_module.device)
        total = int(trainer.strategy.reduce(total, reduce_op="sum").item())
        if total == 0:
            return 0, []
        gathered: list[Any] = [None] * trainer.world_size
        dist.all_gather_object(gathered, paths)
        return total, [p for rank_paths in gathered for p in rank_paths]
