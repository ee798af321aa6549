"""A fine-tuning run without the command line: the config of a recipe on a pretrained model, its
splits, and each split trained and tested (what `avssl finetune` runs, and `avssl bench learn`'s
supervised reference)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def finetune_setup(checkpoint: str, recipe: str, overrides: list[str]) -> tuple[Any, Any, Any]:
    """(pretrained model, run config, finetune section) of `recipe` (a bundled name or a YAML file) on
    `checkpoint` (or random:CONFIG) with key=value overrides; ConfigError / UsageError on bad input."""
    from avssl.config.bundled import resolve_recipe_path
    from avssl.config.finetune import FinetuneSection, finetune_config_dict, read_recipe
    from avssl.config.schema import config_to_dict
    from avssl.config.typed import from_dict
    from avssl.evaluate.model_loading import load_model
    from avssl.methods.configs import config_from_dict

    loaded = load_model(checkpoint, "cpu")
    plain, section = finetune_config_dict(config_to_dict(loaded.config), read_recipe(resolve_recipe_path(recipe)),
                                          overrides)
    return loaded, config_from_dict(plain), from_dict(FinetuneSection, section, "finetune")


def finetune_splits(manifests: list[str], config: Any, section: Any) -> list[Any]:
    """The run's splits (avssl.train.finetune_data.read_splits), checked before anything trains."""
    from avssl.train.finetune import requirements_of
    from avssl.train.finetune_data import read_splits

    return read_splits(list(manifests), section, requirements_of(config, section), config.data.batch_size)


def train_and_test(config: Any, section: Any, split: Any, run_dir: Path, state: Any, checkpoint: str,
                   device: str, strict: bool = False) -> dict | None:
    """Train one split into run_dir (resumed, or not trained again when finished) and test it
    (clip-averaged top-1, cached in run_dir/test.json); None on a DDP rank other than 0."""
    from avssl.evaluate.features import file_sha256
    from avssl.evaluate.finetune import clip_averaged_accuracy
    from avssl.evaluate.report import write_json
    from avssl.methods.finetune import classifier_kind
    from avssl.models.device import resolve_device
    from avssl.train.finetune import finetune_split
    from avssl.train.run_dir import is_launch_rank_zero

    trained = finetune_split(config, section, split, run_dir, state, checkpoint, strict=strict)
    if not is_launch_rank_zero():
        return None
    cached = run_dir / "test.json"
    if not trained.trained_now and cached.is_file():
        result = json.loads(cached.read_text())
        if result.get("step") == trained.step:
            log.info("%s: top-1 %.4f (tested already, %s)", split.name, result["top1"], cached)
            return result
    chosen = "cpu" if config.trainer.accelerator == "cpu" else resolve_device(device)
    workers = min(config.data.num_workers, 4)
    result = clip_averaged_accuracy(trained.model, split.test, config, section.clips_per_video, chosen, workers,
                                    desc=f"{split.name} test")
    result = {"split": split.name, "manifest": os.path.abspath(split.manifest),
              "manifest_sha256": file_sha256(split.manifest), "run_dir": str(run_dir),
              "model": classifier_kind(config, section), "step": trained.step, "n_train": len(split.train), **result}
    write_json(result, str(cached))
    log.info("%s: top-1 %.4f on %d test files", split.name, result["top1"], result["n_test"])
    return result
