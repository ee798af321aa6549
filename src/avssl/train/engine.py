"""Pretraining a method on a manifest: the Lightning Trainer from the config, resume from the run
folder, and the files a run writes (config.yaml, checkpoints/, metrics.csv, bad_files.csv)."""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning as L
import torch

from avssl.config.schema import Config, config_to_dict, save_config
from avssl.config.typed import ConfigError
from avssl.errors import UsageError
from avssl.methods.configs import config_from_dict
from avssl.methods.registry import method_class
from avssl.train.callbacks import (
    CheckpointEveryNSteps,
    FailurePolicy,
    PaddingReport,
    ProgressLog,
    RecordKeys,
    RngStates,
    RunRecord,
    Throughput,
)
from avssl.train.checkpoint_format import check_training_format_version, safe_load
from avssl.train.checkpoint_io import (
    LAST,
    PREVIOUS,
    AtomicCheckpointIO,
    remove_stale_temp_files,
    resolve_resume_checkpoint,
)
from avssl.train.csv_logger import RunCSVLogger
from avssl.train.data import PretrainDataModule
from avssl.train.table import file_requirements, load_table

log = logging.getLogger(__name__)

# config keys a resumed run may change. max_steps extends (or shortens) the run; the others change
# how fast the data arrives or how often the run reports, never which samples or numbers a step uses
RESUMABLE_CHANGES = (
    "trainer.max_steps", "trainer.progress_bar", "trainer.log_every_n_steps", "trainer.checkpoint_every_n_steps",
    "data.num_workers", "data.pin_memory", "data.persistent_workers", "data.prefetch_factor", "data.cache_dir",
    "probe.manifest", "probe.every_n_steps", "probe.k", "probe.modality",
)
RECORD_KEYS_ENV = "AVSSL_RECORD_KEYS"
# Lightning warnings that do not apply here: logging counts optimiser steps across epochs, so an
# epoch shorter than log_every_n_steps still logs; the pytree one is Lightning's own use of a torch API
QUIET_WARNINGS = (
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r".*isinstance\(treespec, LeafSpec\)",
)


@dataclass
class RunPaths:
    """The files of a run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def bad_files(self) -> Path:
        return self.root / "bad_files.csv"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and tuples compare as lists."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: list(data) if isinstance(data, tuple) else data}


def config_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two plain configs."""
    a, b = flatten(saved), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def check_resume_config(checkpoint: dict[str, Any], config: Config, path: Path) -> None:
    saved = checkpoint.get("avssl_config")
    if saved is None:
        raise UsageError(f"{path} holds no avssl config: not a checkpoint of `avssl pretrain`")
    # a key added to the schema after the run started is compared at its default: re-validating
    # the saved config fills it in, so that new code can resume an older run
    saved = with_schema_defaults(saved)
    new = config_to_dict(config)
    changed = [k for k in config_differences(saved, new) if k not in RESUMABLE_CHANGES]
    if changed:
        details = "; ".join(f"{k}: {flatten(saved).get(k, '<absent>')!r} -> {flatten(new).get(k, '<absent>')!r}"
                            for k in changed[:5])
        raise ConfigError(
            f"config key '{changed[0]}' differs from the run being resumed in {path.parent.parent} ({details}); "
            f"only {', '.join(RESUMABLE_CHANGES)} may change on resume. Use a new --out folder to start a new run."
        )


def with_schema_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config as today's schema reads it (new keys at their defaults); as saved if it no
    longer validates (the comparison then names the key that changed)."""
    try:
        return config_to_dict(config_from_dict(saved))
    except ConfigError:
        return saved


def resolve_precision(config: Config) -> str:
    """'auto': bf16-mixed on a GPU, 32-true on CPU; '32' -> '32-true'."""
    t = config.trainer
    if t.precision == "auto":
        on_gpu = t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and torch.cuda.is_available())
        return "bf16-mixed" if on_gpu else "32-true"
    return "32-true" if t.precision == "32" else t.precision


class LoaderWorkerError(RuntimeError):
    """A DataLoader worker process died (e.g. a segfault in a decoder) instead of raising an error."""


def prepare_method(method: Any, config: Config) -> Any:
    """Speed options: channels_last_3d weights, torch.compile of the encoders (state keys unchanged)."""
    if config.trainer.channels_last_3d:
        method.video_encoder.to(memory_format=torch.channels_last_3d)
    if config.trainer.compile:
        method.video_encoder.compile()
        method.audio_encoder.compile()
    return method


def build_trainer(config: Config, paths: RunPaths, resume_step: Optional[int],
                  callbacks: Sequence[L.Callback] = ()) -> L.Trainer:
    t = config.trainer
    loggers: list[Any] = [RunCSVLogger(paths.root, resume_step)]
    if importlib.util.find_spec("tensorboard") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(paths.root, name="tensorboard", version=""))
    else:
        log.debug("tensorboard is not installed: metrics go to metrics.csv only")
    all_callbacks: list[L.Callback] = [
        CheckpointEveryNSteps(paths.checkpoints, t.checkpoint_every_n_steps),
        RunRecord(config),
        FailurePolicy(paths.bad_files, config.data.max_failures),
        PaddingReport(config.data.clip.sample_rate),
        Throughput(),
        RngStates(),
        *callbacks,
    ]
    if config.probe.manifest:
        from avssl.train.probe import OnlineProbe

        all_callbacks.append(OnlineProbe(config, batch_size=config.data.batch_size))
    if os.environ.get(RECORD_KEYS_ENV):
        all_callbacks.append(RecordKeys(os.environ[RECORD_KEYS_ENV]))
    # a redrawn bar is for terminals; in a log file (CI, a batch job) it writes a line per refresh
    show_bar = t.progress_bar and sys.stderr.isatty()
    if t.progress_bar and not show_bar:
        all_callbacks.append(ProgressLog())
    devices: Any = t.devices
    if isinstance(devices, str) and devices != "auto":
        devices = [int(d) for d in devices.split(",") if d]
    return L.Trainer(
        accelerator=t.accelerator,
        devices=devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=resolve_precision(config),
        max_steps=t.max_steps,
        max_epochs=-1,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val or None,
        sync_batchnorm=t.sync_batchnorm,
        deterministic=t.deterministic,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=show_bar,
        enable_checkpointing=False,  # CheckpointEveryNSteps writes last.ckpt
        enable_model_summary=False,
        use_distributed_sampler=False,  # the method's sampler shards and resumes itself
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=loggers,
        callbacks=all_callbacks,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(paths.root),
    )


def pretrain(config: Config, manifest_path: str | os.PathLike, run_dir: str | os.PathLike, *,
             strict: bool = False, callbacks: Sequence[L.Callback] = ()) -> Path:
    """Train `config`'s method on the manifest into `run_dir`, resuming from its last checkpoint.

    Returns the path of the final checkpoint. Raises ConfigError (a UsageError) when the config
    differs from the run being resumed, CheckpointError when no checkpoint of the run loads,
    TooManyFailuresError past data.max_failures, SampleFailedError on the first bad file if strict.
    """
    paths = RunPaths(Path(run_dir))
    paths.checkpoints.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(paths.checkpoints)
    resume = resolve_resume_checkpoint(paths.checkpoints)
    resume_step = None
    if resume is not None and resume.name == PREVIOUS and (paths.checkpoints / LAST).exists():
        # set the bad file aside, else the next save would rotate it over the good previous one
        _set_aside(paths.checkpoints / LAST)
    if resume is not None:
        checkpoint = safe_load(resume, mmap=True)
        check_training_format_version(checkpoint, resume)
        check_resume_config(checkpoint, config, resume)
        resume_step = int(checkpoint.get("global_step", 0))
        del checkpoint
        if resume_step >= config.trainer.max_steps:
            log.info("%s is at step %d, trainer.max_steps=%d: nothing to do", resume, resume_step,
                     config.trainer.max_steps)
            return paths.checkpoints / "last.ckpt"
        log.info("resuming from %s (step %d)", resume, resume_step)
    _write_config(config, paths.config)
    # a resumed run keeps its bad_files.csv (the manifest rows were listed when it started)
    L.seed_everything(config.seed, workers=True, verbose=False)
    method = prepare_method(method_class(config.method.name)(config), config)
    table = load_table(manifest_path, file_requirements(method.recipe_class, config),
                       paths.bad_files if resume is None else None, strict=strict)
    data = PretrainDataModule(method, table, config, strict=strict)
    trainer = build_trainer(config, paths, resume_step, callbacks)
    try:
        with warnings.catch_warnings():
            for message in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            trainer.fit(method, datamodule=data, ckpt_path=str(resume) if resume is not None else None)
    except RuntimeError as err:
        if "DataLoader worker" not in str(err):
            raise
        # torch reports a dead worker as a RuntimeError naming its pid and signal; the sample it
        # was building is unknown, so point at the ways to find it
        raise LoaderWorkerError(
            f"a data loader worker process died while building a batch ({_worker_death(err)}). This is a crash in "
            "native code (a decoder segfault, or the worker was killed for memory), not a Python error. "
            "The last complete checkpoint is kept: run the same command to resume; to find the file, "
            "run `avssl probe` on the manifest's files, or pretrain with data.num_workers=0"
        ) from err
    return paths.checkpoints / "last.ckpt"


def _worker_death(err: BaseException) -> str:
    """torch's messages about a dead worker, the signal first ("is killed by signal: ...") when known."""
    messages, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if "DataLoader worker" in str(err):
            messages.append(str(err).strip().rstrip("."))
        err = err.__cause__ or err.__context__
    return "; ".join(reversed(messages))


def _write_config(config: Config, path: Path) -> None:
    # every rank may get here; each writes the same text under its own temp name
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_config(config, tmp)
    os.replace(tmp, path)


def _set_aside(path: Path) -> None:
    target = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, target)
        log.warning("moved the corrupt checkpoint %s to %s", path, target)
    except FileNotFoundError:
        pass  # another rank moved it
