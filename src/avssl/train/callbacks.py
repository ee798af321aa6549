"""Callbacks of a pretraining run: data position and checkpoints, what a checkpoint holds besides the
weights, padding and throughput reports, RNG states, and an optional record of the samples each rank
trained on. The failure policy is in avssl.train.bad_files, the stop on a signal in avssl.train.signals."""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Optional, TextIO

import lightning as L
import numpy as np
import torch

from avssl.config.schema import Config, config_to_dict
from avssl.train.checkpoint_format import TRAINING_FORMAT_VERSION
from avssl.train.checkpoint_io import LAST
from avssl.train.run_dir import disk_errors

log = logging.getLogger(__name__)

# the checkpoint key of the training table's fingerprint (avssl.train.resume.table_fingerprint)
DATA_FINGERPRINT_KEY = "avssl_data_fingerprint"


def _loader(trainer: L.Trainer) -> Any:
    return trainer.datamodule.loader if trainer.datamodule is not None else None


class CheckpointEveryNSteps(L.Callback):
    """Counts the batches the trainer consumed (for the loader's resume position) and writes
    RUN_DIR/checkpoints/last.ckpt every `every_n_steps` optimiser steps and at the last step.

    Counting and saving live in one callback so that the count is up to date when the checkpoint
    records it. A write that fails for want of space or permission raises RunDirWriteError naming
    the file (the previous checkpoint is untouched).
    """

    def __init__(self, checkpoint_dir: str | os.PathLike, every_n_steps: int) -> None:
        self.path = Path(checkpoint_dir) / LAST
        self.every_n_steps = every_n_steps
        self._saved_step = -1

    @property
    def saved_step(self) -> int:
        """The step of the checkpoint on disk (-1: none of this run yet)."""
        return self._saved_step

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step > 0:
            self._saved_step = trainer.global_step  # resumed: the checkpoint of this step is on disk

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loader = _loader(trainer)
        if loader is not None:
            loader.batch_consumed()
        step = trainer.global_step
        if step == self._saved_step or step == 0:
            return  # accumulating: no optimiser step since the last save
        if step % self.every_n_steps == 0 or step >= trainer.max_steps:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self._saved_step and trainer.global_step > 0:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        with disk_errors(self.path):
            trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_step = trainer.global_step
        log.debug("checkpoint at step %d: %s", trainer.global_step, self.path)


class RunRecord(L.Callback):
    """Puts into every checkpoint what avssl reads back besides the weights (the format version, the
    run's config and method name, the fingerprint of its training table) and torch's global RNG
    state, which it restores on resume."""

    def __init__(self, config: Config, data_fingerprint: Optional[str] = None) -> None:
        self.config = config
        self.data_fingerprint = data_fingerprint

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["avssl_format_version"] = TRAINING_FORMAT_VERSION
        checkpoint["avssl_config"] = config_to_dict(self.config)
        checkpoint["avssl_method"] = self.config.method.name
        if self.data_fingerprint is not None:
            checkpoint[DATA_FINGERPRINT_KEY] = self.data_fingerprint
        checkpoint["torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("torch_rng_state")
        if state is not None:
            torch.set_rng_state(state)


class PaddingReport(L.Callback):
    """Logs how much of a batch stands in for media its files do not have (`audio_padded` and
    `video_padded` of each sample, see avssl.data.dataset.ClipDataset): `data/audio_padded` (samples
    of the batch with any zeroed audio) and `data/audio_padded_seconds` (their total length);
    `data/video_padded` (samples with any repeated frame) and `data/video_padded_frames` (their count)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if not isinstance(batch, dict):
            return
        padded = batch.get("audio_padded")
        if padded is not None:
            size = len(padded)
            pl_module.log("data/audio_padded", (padded > 0).sum().float(), batch_size=size)
            pl_module.log("data/audio_padded_seconds", padded.sum().float() / self.sample_rate, batch_size=size)
        frames = batch.get("video_padded")
        if frames is not None:
            size = len(frames)
            pl_module.log("data/video_padded", (frames > 0).sum().float(), batch_size=size)
            pl_module.log("data/video_padded_frames", frames.sum().float(), batch_size=size)


class Throughput(L.Callback):
    """Logs `train/clips_per_s` (all ranks together) on the progress bar."""

    def __init__(self) -> None:
        self._last: Optional[float] = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        now = time.perf_counter()
        if self._last is not None and isinstance(batch, dict) and "key_index" in batch:
            clips = len(batch["key_index"]) * trainer.world_size
            pl_module.log("train/clips_per_s", clips / max(now - self._last, 1e-9), prog_bar=True,
                          batch_size=1, rank_zero_only=True)
        self._last = now


class ProgressLog(L.Callback):
    """What a run shows while it trains: the global step of max_steps, clips/s, time left and the
    losses. On a terminal (stderr a TTY) one line refreshed in place every `refresh_s` seconds; in a
    log file (CI, a batch job) one INFO line per `every_s` seconds and at the first and last step,
    where a redrawn bar would write a line per refresh."""

    def __init__(self, every_s: float = 30.0, *, terminal: Optional[bool] = None, stream: Optional[TextIO] = None,
                 refresh_s: float = 0.5) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = terminal if terminal is not None else bool(getattr(self.stream, "isatty", None)
                                                                     and self.stream.isatty())
        self.every_s = refresh_s if self.terminal else every_s
        self._start: Optional[float] = None
        self._start_step = 0
        self._last_report = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()
        self._start_step = trainer.global_step
        self._last_report = self._start

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not trainer.is_global_zero or self._start is None:
            return
        now, step = time.perf_counter(), trainer.global_step
        first = step == self._start_step + 1
        if not (first or step >= trainer.max_steps or now - self._last_report >= self.every_s):
            return
        self._last_report = now
        elapsed, done = now - self._start, step - self._start_step
        if self.terminal:
            self.stream.write("\r" + terminal_line(step, trainer.max_steps, elapsed, done, trainer.progress_bar_metrics)
                              + "\x1b[K")
            self.stream.flush()
        else:
            log.info(progress_line(step, trainer.max_steps, elapsed, done, trainer.progress_bar_metrics))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.terminal and trainer.is_global_zero and self._start is not None:
            self.stream.write("\n")  # the refreshed line stays, the next output starts below it
            self.stream.flush()


def _seconds_left(step: int, max_steps: int, elapsed_s: float, steps_done: int) -> float:
    return (max_steps - step) * elapsed_s / steps_done if steps_done > 0 else float("nan")


def progress_line(step: int, max_steps: int, elapsed_s: float, steps_done: int, metrics: dict[str, Any]) -> str:
    """'step 120/600 (20%), 60 s, 288 s left: train/clips_per_s 12.43, train/loss 3.21'."""
    left = _seconds_left(step, max_steps, elapsed_s, steps_done)
    shown = ", ".join(f"{k} {float(v):.4g}" for k, v in sorted(metrics.items()))
    return (f"step {step}/{max_steps} ({100 * step / max_steps:.0f}%), {elapsed_s:.0f} s, {left:.0f} s left"
            + (f": {shown}" if shown else ""))


def terminal_line(step: int, max_steps: int, elapsed_s: float, steps_done: int, metrics: dict[str, Any]) -> str:
    """'step 120/600 (20%) | 12.4 clips/s | 4:48 left | loss 3.21': the line a terminal refreshes."""
    values = {k: float(v) for k, v in metrics.items()}
    clips = values.pop("train/clips_per_s", None)
    parts = [f"step {step}/{max_steps} ({100 * step / max_steps:.0f}%)"]
    parts.append(f"{clips:.1f} clips/s" if clips is not None else "- clips/s")
    parts.append(f"{_clock(_seconds_left(step, max_steps, elapsed_s, steps_done))} left")
    parts += [f"{k.removeprefix('train/')} {v:.4g}" for k, v in sorted(values.items())]
    return " | ".join(parts)


def _clock(seconds: float) -> str:
    """4:48, 1:02:03; '?' before the first step."""
    if seconds != seconds:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RngStates(L.Callback):
    """Saves and restores the numpy and Python global RNG states (torch's is RunRecord's).

    Stored as plain lists and ints so that the checkpoint loads with weights_only=True.
    """

    def state_dict(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss = random.getstate()
        return {"numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
                "python": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))


class RecordKeys(L.Callback):
    """Writes the sample keys each rank trained on to `folder/keys-rank{R}.csv` (step, index, epoch), the
    step being the one that trains on the sample (as in metrics.csv).

    For checking DDP sharding and resume; enabled by `avssl pretrain` when AVSSL_RECORD_KEYS names
    a folder.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        draws = batch["key_draw"].tolist() if "key_draw" in batch else [0] * len(batch["key_index"])
        rows = zip(batch["key_index"].tolist(), batch["key_epoch"].tolist(), draws)
        with open(self.folder / f"keys-rank{trainer.global_rank}.csv", "a") as f:
            f.writelines(f"{trainer.global_step},{i},{e},{d}\n" for i, e, d in rows)
