"""Pretraining a method on a manifest: the Lightning Trainer from the config, resume from the run
folder, and the files a run writes (config.yaml, checkpoints/, metrics.csv, bad_files.csv). The run
folder's lock and checks are in run_dir, the resume checks in resume, the stop on a signal in signals."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import lightning as L
import torch
import yaml
from lightning.pytorch.utilities.exceptions import SIGTERMException

from avssl.config.schema import Config, config_to_dict
from avssl.config.typed import ConfigError
from avssl.data.dataset import SampleFailedError
from avssl.methods.registry import method_class
from avssl.train.bad_files import BadFileQuarantine, FailurePolicy, keep_rows_before
from avssl.train.callbacks import (
    DATA_FINGERPRINT_KEY,
    CheckpointEveryNSteps,
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
from avssl.train.data import PretrainDataModule
from avssl.train.loggers import build_loggers
from avssl.train.resume import RunPaths, check_resume_config, check_resume_data, table_fingerprint
from avssl.train.run_dir import CONFIG_HEADER, claim_run_dir, disk_errors, is_launch_rank_zero
from avssl.train.signals import RunStopped, StopOnSignal, StopRequest
from avssl.train.table import file_requirements, load_table

log = logging.getLogger(__name__)

RECORD_KEYS_ENV = "AVSSL_RECORD_KEYS"
# Lightning warnings that do not apply here: logging counts optimiser steps across epochs, so an
# epoch shorter than log_every_n_steps still logs; the pytree one is Lightning's own use of a torch API
QUIET_WARNINGS = (
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r".*isinstance\(treespec, LeafSpec\)",
    # a method puts itself in train mode as fit starts (PretrainMethod.on_fit_start); the modules still in
    # eval mode then are a linear classifier's frozen encoder, on purpose (avssl.methods.finetune)
    r"Found \d+ module\(s\) in eval mode at the start of training",
)


def resolve_precision(config: Config) -> str:
    """'auto': bf16-mixed on a GPU, 32-true on CPU; '32' -> '32-true'."""
    t = config.trainer
    if t.precision == "auto":
        on_gpu = t.accelerator in ("gpu", "cuda") or (t.accelerator == "auto" and torch.cuda.is_available())
        return "bf16-mixed" if on_gpu else "32-true"
    return "32-true" if t.precision == "32" else t.precision


def check_accelerator(config: Config) -> None:
    """ConfigError naming trainer.accelerator when it asks for a GPU this machine does not have."""
    t = config.trainer
    if t.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={t.accelerator}: no CUDA GPU is visible to torch on this machine "
                          f"(torch {torch.__version__}); use trainer.accelerator=cpu or auto")
    if t.accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps: the MPS backend is not available here; use cpu or auto")


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


def run_callbacks(config: Config, paths: RunPaths, fingerprint: Optional[str], stop: Optional[StopRequest],
                  extra: Sequence[L.Callback]) -> list[L.Callback]:
    """The run's callbacks, in the order they act on a batch (the stop comes last: it saves the
    checkpoint once the others have counted the batch)."""
    t = config.trainer
    checkpointer = CheckpointEveryNSteps(paths.checkpoints, t.checkpoint_every_n_steps)
    callbacks: list[L.Callback] = [
        checkpointer,
        RunRecord(config, fingerprint),
        FailurePolicy(paths.bad_files, config.data.max_failures),
        PaddingReport(config.data.clip.sample_rate),
        Throughput(),
        RngStates(),
        *extra,
    ]
    if config.probe.manifest:
        from avssl.train.probe import OnlineProbe

        callbacks.append(OnlineProbe(config, batch_size=config.data.batch_size))
    if os.environ.get(RECORD_KEYS_ENV):
        callbacks.append(RecordKeys(os.environ[RECORD_KEYS_ENV]))
    if t.progress_bar:
        callbacks.append(ProgressLog())
    if stop is not None:
        callbacks.append(StopOnSignal(stop, checkpointer))
    return callbacks


def cluster_plugins() -> list[Any]:
    """Under SLURM, Lightning's environment without its auto-requeue: avssl stops on SIGTERM itself
    (checkpoint in last.ckpt, exit 143) and leaves requeueing to SLURM; Lightning's SIGUSR1 handler
    would write hpc_ckpt files that a later start resumes from instead of last.ckpt, unchecked."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def build_trainer(config: Config, paths: RunPaths, resume_step: Optional[int],
                  callbacks: Sequence[L.Callback] = (), *, stop: Optional[StopRequest] = None,
                  fingerprint: Optional[str] = None) -> L.Trainer:
    t = config.trainer
    loggers = build_loggers(config, paths, resume_step)
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
        # ProgressLog shows the global step, clips/s and time left (Lightning's bar counts per epoch)
        enable_progress_bar=False,
        enable_checkpointing=False,  # CheckpointEveryNSteps writes last.ckpt
        enable_model_summary=False,
        use_distributed_sampler=False,  # the method's sampler shards and resumes itself
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=loggers,
        callbacks=run_callbacks(config, paths, fingerprint, stop, callbacks),
        plugins=[AtomicCheckpointIO(), *cluster_plugins()],
        default_root_dir=str(paths.root),
    )


@dataclass
class ResumePoint:
    """Where a run starts: the checkpoint to resume from (None: a fresh run), its step and data fingerprint."""

    path: Optional[Path] = None
    step: Optional[int] = None
    record: dict[str, Any] = field(default_factory=dict)


def find_resume_point(paths: RunPaths, config: Config,
                      check: Optional[Callable[[dict[str, Any], Path], None]] = None) -> ResumePoint:
    """The run's last loadable checkpoint, checked against `config` (ConfigError naming a changed key)
    and by `check` (checkpoint, path) when given (what a fine-tuning run adds to the config)."""
    remove_stale_temp_files(paths.checkpoints)
    resume = resolve_resume_checkpoint(paths.checkpoints)
    if resume is None:
        return ResumePoint()
    checkpoint = safe_load(resume, mmap=True)
    check_training_format_version(checkpoint, resume)
    check_resume_config(checkpoint, config, resume)
    if check is not None:
        check(checkpoint, resume)
    if resume.name == PREVIOUS and (paths.checkpoints / LAST).exists():
        # set the bad file aside (only once the run is known to resume: a refusal leaves the folder
        # as it was), else the next save would rotate it over the good previous one
        _set_aside(paths.checkpoints / LAST)
    record = {k: checkpoint[k] for k in (DATA_FINGERPRINT_KEY,) if k in checkpoint}
    return ResumePoint(resume, int(checkpoint.get("global_step", 0)), record)


def pretrain(config: Config, manifest_path: str | os.PathLike, run_dir: str | os.PathLike, *,
             strict: bool = False, allow_data_change: bool = False, callbacks: Sequence[L.Callback] = ()) -> Path:
    """Train `config`'s method on the manifest into `run_dir`, resuming from its last checkpoint.

    Returns the path of the final checkpoint. Raises UsageError when the folder cannot take the run
    (another run holds it, it holds other files, it is not writable), ConfigError (a UsageError) when
    the config differs from the run being resumed, UsageError when the training table does (unless
    `allow_data_change`), CheckpointError when no checkpoint of the run loads, TooManyFailuresError
    past data.max_failures, SampleFailedError on the first bad file if strict, RunDirWriteError when
    the disk refuses a write, RunStopped after SIGTERM or SIGINT (with its checkpoint saved).
    """
    check_accelerator(config)
    paths = RunPaths(Path(run_dir))
    with claim_run_dir(paths.root), StopRequest() as stop:
        return _pretrain(config, str(manifest_path), paths, stop, strict, allow_data_change, callbacks)


def _pretrain(config: Config, manifest_path: str, paths: RunPaths, stop: StopRequest, strict: bool,
              allow_data_change: bool, callbacks: Sequence[L.Callback]) -> Path:
    rank_zero = is_launch_rank_zero()
    point = find_resume_point(paths, config)
    if point.step is not None:
        if point.step >= config.trainer.max_steps:
            log.info("%s is at step %d, trainer.max_steps=%d: nothing to do", point.path, point.step,
                     config.trainer.max_steps)
            return paths.checkpoints / LAST
        log.info("resuming from %s (step %d)", point.path, point.step)
    if rank_zero:  # the other ranks of a job write nothing before rank 0 has checked the folder
        write_run_config(config, paths.config)
        if point.step is not None:
            keep_rows_before(paths.bad_files, point.step)
    L.seed_everything(config.seed, workers=True, verbose=False)
    method = prepare_method(method_class(config.method.name)(config), config)
    # a resumed run keeps its bad_files.csv (the manifest rows were listed when it started)
    table = load_table(manifest_path, file_requirements(method.recipe_class, config),
                       paths.bad_files if point.path is None and rank_zero else None, strict=strict)
    fingerprint = table_fingerprint(table)
    data_changed = point.path is not None and check_resume_data(
        point.record, fingerprint, len(table), manifest_path, paths.root, allow_data_change)
    data = PretrainDataModule(method, table, config, strict=strict, data_changed=data_changed,
                              quarantine=BadFileQuarantine(paths.bad_files, table.paths))
    trainer = build_trainer(config, paths, point.step, callbacks, stop=stop, fingerprint=fingerprint)
    fit(trainer, method, data, point, stop)
    return paths.checkpoints / LAST


def fit(trainer: L.Trainer, method: Any, data: L.LightningDataModule, point: ResumePoint, stop: StopRequest) -> None:
    """trainer.fit from `point`, with a dead loader worker, a --strict bad file and Lightning's own SIGTERM
    turned into avssl's errors; a stop request before or during the fit is RunStopped at the step of
    the last checkpoint."""
    if stop.signum:
        raise RunStopped(stop.signum, point.step or 0)
    try:
        with warnings.catch_warnings():
            for message in QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            trainer.fit(method, datamodule=data, ckpt_path=str(point.path) if point.path is not None else None)
    except SIGTERMException:
        # Lightning's own handler caught a SIGTERM before ours took over (as training started)
        if not stop.signum:
            raise
    except SampleFailedError as err:
        # --strict: a Python error naming the file; from a worker, torch wraps it in the worker's traceback
        raise SampleFailedError(str(err).strip().splitlines()[-1].removeprefix("avssl.data.dataset.SampleFailedError: ")) from None
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
    if stop.signum and trainer.global_step < trainer.max_steps:
        checkpointer = next(c for c in trainer.callbacks if isinstance(c, CheckpointEveryNSteps))
        raise RunStopped(stop.signum, max(checkpointer.saved_step, point.step or 0, 0))


def _worker_death(err: BaseException) -> str:
    """torch's messages about a dead worker, the signal first ("is killed by signal: ...") when known."""
    messages, seen = [], set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if "DataLoader worker" in str(err):
            messages.append(str(err).strip().rstrip("."))
        err = err.__cause__ or err.__context__
    return "; ".join(reversed(messages))


def write_run_config(config: Config, path: Path, extra: Optional[dict[str, Any]] = None) -> None:
    """RUN_DIR/config.yaml: the resolved config and `extra` sections (a fine-tuning run's protocol)."""
    # the header marks the folder as avssl's run folder (see avssl.train.run_dir.is_avssl_run_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with disk_errors(path):
        tmp.write_text(CONFIG_HEADER + "\n" + yaml.safe_dump({**config_to_dict(config), **(extra or {})},
                                                                sort_keys=False))
        os.replace(tmp, path)


def _set_aside(path: Path) -> None:
    target = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, target)
        log.warning("moved the corrupt checkpoint %s to %s", path, target)
    except FileNotFoundError:
        pass  # another rank moved it
