"""Fine-tuning one split on pretraining's engine: the run folder OUT/splitN (lock, config.yaml,
checkpoints/last.ckpt, metrics.csv, bad_files.csv), resume after a crash or a signal, the failure
policy, DDP and mixed precision, all through avssl.train.engine. The model is one of
avssl.methods.finetune; its training sample the recipe it names, with the split's labels."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import lightning as L
import torch

from avssl.config.finetune import FinetuneSection
from avssl.config.schema import Config
from avssl.config.typed import ConfigError, to_dict
from avssl.data.recipes.finetune import LabelledTable
from avssl.methods.finetune import build_classifier, classifier_class
from avssl.train.bad_files import BadFileQuarantine, keep_rows_before, write_bad_rows
from avssl.train.checkpoint_format import safe_load
from avssl.train.data import PretrainDataModule
from avssl.train.engine import build_trainer, check_accelerator, find_resume_point, fit, write_run_config
from avssl.train.finetune_data import SplitData, labelled_fingerprint
from avssl.train.resume import RunPaths, check_resume_data, config_differences, flatten
from avssl.train.run_dir import claim_run_dir, is_launch_rank_zero
from avssl.train.signals import StopRequest
from avssl.train.table import FileRequirements, file_requirements

log = logging.getLogger(__name__)

FINETUNE_KEY = "avssl_finetune"  # the checkpoint key of the run's finetune section


@dataclass
class SplitRun:
    """A trained split: the model (trained, or read back from the finished run's checkpoint), its step."""

    model: Any
    step: int
    trained_now: bool


class LabelledRecipes:
    """What avssl.train.data.build_loader asks of a method, `recipe(table)`, for a fine-tuning model:
    its training sample over the split's training table with the split's labels."""

    def __init__(self, recipe_class: type, config: Config, labels: Any) -> None:
        self.recipe_class, self.config, self.labels = recipe_class, config, labels

    def recipe(self, table: Any) -> Any:
        return self.recipe_class(LabelledTable(table, self.labels), self.config, train=True)


class FinetuneRecord(L.Callback):
    """Puts the run's finetune section into every checkpoint (a resume compares it)."""

    def __init__(self, section: FinetuneSection) -> None:
        self.section = to_dict(section)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[FINETUNE_KEY] = self.section


def check_resume_section(checkpoint: Mapping[str, Any], section: FinetuneSection, path: Path) -> None:
    """ConfigError naming the first finetune.* key that differs from the run being resumed."""
    saved = {"finetune": checkpoint.get(FINETUNE_KEY) or {}}
    new = {"finetune": to_dict(section)}
    changed = config_differences(saved, new)
    if changed:
        key = changed[0]
        raise ConfigError(f"config key '{key}' differs from the run being resumed in {path.parent.parent} "
                          f"({flatten(saved).get(key, '<absent>')!r} -> {flatten(new).get(key, '<absent>')!r}); "
                          "use a new --out folder to fine-tune with other settings")


def requirements_of(config: Config, section: FinetuneSection) -> FileRequirements:
    """What the model's training sample needs of a file (streams, seconds, frame rate)."""
    return file_requirements(classifier_class(config, section).recipe_class, config)


def finetune_split(config: Config, section: FinetuneSection, split: SplitData, run_dir: str | Path,
                   pretrained: Mapping[str, torch.Tensor], source: str, *, strict: bool = False,
                   callbacks: Sequence[L.Callback] = ()) -> SplitRun:
    """Train split `split` into `run_dir` from the `pretrained` weights (a state dict; `source` names it
    in errors), resuming from the folder's last checkpoint. Raises what avssl.train.engine.pretrain
    raises (UsageError for a folder in use or a changed config or table, RunStopped after a signal, ...)."""
    check_accelerator(config)
    paths = RunPaths(Path(run_dir))
    with claim_run_dir(paths.root), StopRequest() as stop:
        return _finetune_split(config, section, split, paths, pretrained, source, stop, strict, callbacks)


def _finetune_split(config: Config, section: FinetuneSection, split: SplitData, paths: RunPaths,
                    pretrained: Mapping[str, torch.Tensor], source: str, stop: StopRequest, strict: bool,
                    callbacks: Sequence[L.Callback]) -> SplitRun:
    point = find_resume_point(paths, config, lambda ckpt, path: check_resume_section(ckpt, section, path))
    L.seed_everything(config.seed, workers=True, verbose=False)
    model = build_classifier(config, section, len(split.class_names), split.class_names)
    if point.step is not None and point.step >= config.trainer.max_steps:
        log.info("%s is at step %d, trainer.max_steps=%d: trained already", point.path, point.step,
                 config.trainer.max_steps)
        model.load_state_dict(safe_load(point.path)["state_dict"])
        return SplitRun(model, point.step, trained_now=False)
    loaded = model.load_pretrained(pretrained, source)
    log.info("%s: %s from %s, %d training files, %d classes%s", paths.root.name, ", ".join(loaded), source,
             len(split.train), len(split.class_names), f"; resuming at step {point.step}" if point.step else "")
    _prepare_folder(config, section, split, paths, point.step)
    fingerprint = labelled_fingerprint(split.train)
    if point.path is not None:
        check_resume_data(point.record, fingerprint, len(split.train), split.manifest, paths.root, False)
    table = split.train.table
    data = PretrainDataModule(LabelledRecipes(model.recipe_class, config, split.train.labels), table, config,
                              strict=strict, quarantine=BadFileQuarantine(paths.bad_files, table.paths))
    trainer = build_trainer(config, paths, point.step, [FinetuneRecord(section), *callbacks], stop=stop,
                            fingerprint=fingerprint)
    fit(trainer, model, data, point, stop)
    return SplitRun(model, trainer.global_step, trained_now=True)


def _prepare_folder(config: Config, section: FinetuneSection, split: SplitData, paths: RunPaths,
                    resume_step: Optional[int]) -> None:
    """config.yaml (with the finetune section), and bad_files.csv: the manifest's training rows the
    model cannot use on a fresh run, the rows of steps after the checkpoint dropped on a resume."""
    if not is_launch_rank_zero():
        return  # the other ranks of a job write nothing to the run folder
    write_run_config(config, paths.config, {"finetune": to_dict(section)})
    if resume_step is not None:
        keep_rows_before(paths.bad_files, resume_step)
    elif split.left_out:
        write_bad_rows(paths.bad_files, ([p, reason, "", ""] for p, reason in split.left_out))
    else:
        paths.bad_files.unlink(missing_ok=True)
