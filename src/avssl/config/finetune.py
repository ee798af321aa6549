"""Fine-tuning recipes (configs/finetune/*.yaml): the protocol an `avssl finetune` run follows, and how
its sections combine with the pretrained model's config into the run's config.

A recipe has the sections `finetune` (the protocol: model, what trains, the test, the splits), `seed`,
`data`, `optim` and `trainer`. The run's config keeps the model's `method` and `model` (the network
being fine-tuned) and its `data` (clip, log-mel, normalisation: the input it was trained on) updated
by the recipe's `data` keys; `optim`, `trainer` and `seed` are the recipe's alone (what it leaves out
takes the schema defaults, never the pretraining run's values); the online probe is off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from avssl.config.overrides import apply_overrides, read_yaml
from avssl.config.typed import ConfigError, nearest, require, unknown_key_error

RECIPE_SECTIONS = ("finetune", "seed", "data", "optim", "trainer")
# the short `key=value` names of earlier versions of `avssl finetune` -> the dotted key they set
SHORT_KEYS = {
    "max_steps": "trainer.max_steps", "batch_size": "data.batch_size", "num_workers": "data.num_workers",
    "lr": "optim.lr", "weight_decay": "optim.weight_decay", "dropout": "finetune.dropout",
    "label_smoothing": "finetune.label_smoothing", "clips_per_video": "finetune.clips_per_video",
    "model": "finetune.model", "mode": "finetune.mode",
}


@dataclass
class FinetuneSection:
    """The `finetune` section of a recipe.

    `model`: video (the video encoder + a linear head), audio (the audio encoder + a linear head), av
    (the AVCL audio-visual classifier; needs an avcl model), auto (av for an avcl model, else video).
    `mode`: full (every weight trains) or linear (the encoder is frozen, in eval mode: only the head
    trains). `clips_per_video`: test clips spread uniformly over each test file, their logits averaged.
    `splits`: how many --data manifests the protocol has (UCF101/HMDB51: 3; 0: any number).
    `folds`: the folds to run when one --data manifest holds every fold in its `split` column (ESC-50:
    [1, 2, 3, 4, 5]); run k tests on fold folds[k] and trains on every other fold.
    """

    model: Literal["auto", "video", "audio", "av"] = "auto"
    mode: Literal["full", "linear"] = "full"
    dropout: float = 0.5
    label_smoothing: float = 0.0
    clips_per_video: int = 10
    splits: int = 0
    folds: list[int] = field(default_factory=list)

    def validate(self, where: str) -> None:
        require(0 <= self.dropout < 1, f"{where}.dropout", f"must be in [0, 1), got {self.dropout}")
        require(0 <= self.label_smoothing < 1, f"{where}.label_smoothing", "must be in [0, 1)")
        require(self.clips_per_video > 0, f"{where}.clips_per_video", "must be positive")
        require(self.splits >= 0, f"{where}.splits", "must be >= 0 (0: any number of --data manifests)")
        require(all(f > 0 for f in self.folds) and len(set(self.folds)) == len(self.folds), f"{where}.folds",
                f"must be distinct fold numbers >= 1, got {self.folds}")
        require(not (self.folds and self.splits), f"{where}.folds",
                "and finetune.splits exclude each other (folds: one manifest; splits: one manifest per split)")
        require(not (self.model == "av" and self.mode == "linear"), f"{where}.mode",
                "linear needs a single encoder (finetune.model=video or audio); the av classifier trains whole")


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """A recipe YAML as a mapping; ConfigError naming the file for a section it cannot have."""
    data = read_yaml(path)
    for key in data:
        if key not in RECIPE_SECTIONS:
            raise ConfigError(f"{path}: {unknown_key_error(str(key), RECIPE_SECTIONS, '')}")
    return data


def expand_short_keys(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """`max_steps=50` -> `trainer.max_steps=50` (SHORT_KEYS); dotted keys and `seed` pass as given. A
    mistyped short key is a ConfigError with the nearest valid one."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if sep and "." not in key and key != "seed":
            if key not in SHORT_KEYS:
                hint = nearest(key, [*SHORT_KEYS, "seed"])
                raise ConfigError(f"unknown option '{key}'" + (f"; did you mean '{hint}'?" if hint else "")
                                  + f" (short options: {', '.join(SHORT_KEYS)}, seed; or a dotted config key "
                                  "such as trainer.max_steps or finetune.mode)")
            item = f"{SHORT_KEYS[key]}={value}"
        out.append(item)
    return out


def finetune_config_dict(model: dict[str, Any], recipe: dict[str, Any],
                         overrides: list[str] | tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run's config as a plain mapping, the recipe's finetune section) from the pretrained model's
    plain config, the recipe and `key=value` overrides (short keys expanded); validated later."""
    data = {k: v for k, v in model.get("data", {}).items() if k != "cache_dir"}  # a cache of other files
    merged = {
        "method": model["method"], "model": model["model"], "seed": recipe.get("seed", 0),
        "data": _deep_update(data, recipe.get("data") or {}),
        "optim": recipe.get("optim") or {}, "trainer": recipe.get("trainer") or {},
        "finetune": recipe.get("finetune") or {},
    }
    merged = apply_overrides(merged, expand_short_keys(overrides))
    section = merged.pop("finetune")
    return merged, section


def _deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = value
    return out
