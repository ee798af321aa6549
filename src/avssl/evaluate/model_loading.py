"""The model an evaluation runs: a pretraining checkpoint rebuilt from its stored config, or
`random:CONFIG`, a freshly initialised model of the same architecture (the baseline)."""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from dataclasses import dataclass
from typing import Any

import torch

from avssl.config.bundled import resolve_config_path
from avssl.config.overrides import apply_overrides
from avssl.config.schema import Config
from avssl.errors import UsageError
from avssl.methods.configs import config_from_dict, load_config
from avssl.train.checkpoint_format import check_training_format_version, safe_load

log = logging.getLogger(__name__)

RANDOM_PREFIX = "random:"


@dataclass
class LoadedModel:
    """A method in eval mode on `device`, its config, and where it came from (`checkpoint` or `random:...`)."""

    method: Any
    config: Config
    source: str
    step: int | None
    random_init: bool


def build_random(config: Config) -> Any:
    """The config's method with weights drawn from a generator seeded by `config.seed`: two calls give
    identical weights, whatever the global RNG state was (the global state is restored after)."""
    from avssl.methods.registry import method_class

    state = torch.get_rng_state()
    try:
        torch.manual_seed(config.seed)
        return method_class(config.method.name)(config)
    finally:
        torch.set_rng_state(state)


def load_model(checkpoint: str, device: str | torch.device = "cpu",
               overrides: list[str] | tuple[str, ...] = ()) -> LoadedModel:
    """`checkpoint` = a `last.ckpt` of `avssl pretrain` (loaded with weights_only=True, the method
    rebuilt from its `avssl_config`), or `random:CONFIG` (bundled name or YAML path)."""
    if checkpoint.startswith(RANDOM_PREFIX):
        config = load_config(resolve_config_path(checkpoint[len(RANDOM_PREFIX):]), list(overrides))
        method, step, random_init = build_random(config), None, True
    else:
        method, config, step = _load_checkpoint(checkpoint, overrides)
        random_init = False
    method.to(device).eval()
    for p in method.parameters():
        p.requires_grad_(False)
    return LoadedModel(method, config, checkpoint, step, random_init)


def _load_checkpoint(path: str, overrides) -> tuple[Any, Config, int | None]:
    from avssl.methods.registry import method_class

    if not os.path.isfile(path):
        raise UsageError(f"--checkpoint {path}: file not found (or give random:CONFIG for the baseline)")
    try:
        payload = safe_load(path)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            pickle.UnpicklingError, zipfile.BadZipFile) as err:
        # a text file or other bytes make torch's unpickler fail in many ways (KeyError for a text file)
        reason = str(err).splitlines()[0] if str(err) else "unreadable"
        raise UsageError(f"--checkpoint {path}: not a loadable checkpoint ({type(err).__name__}: {reason})") from None
    if not isinstance(payload, dict) or "avssl_config" not in payload or "state_dict" not in payload:
        raise UsageError(f"--checkpoint {path}: not a checkpoint of `avssl pretrain` (no avssl_config/state_dict)")
    check_training_format_version(payload, path)
    config = config_from_dict(apply_overrides(payload["avssl_config"], list(overrides)))
    if payload.get("avssl_task") == "finetune":
        from avssl.methods.finetune import classifier_from_checkpoint

        method = classifier_from_checkpoint(config, payload)
    else:
        method = method_class(config.method.name)(config)
    _check_shapes(method, payload["state_dict"], path, config.method.name)
    missing, unexpected = method.load_state_dict(payload["state_dict"], strict=False)
    if missing:
        raise UsageError(f"--checkpoint {path}: weights missing for the {config.method.name} model, "
                         f"first {missing[0]!r} ({len(missing)} in all)")
    if unexpected:
        log.warning("%s: %d checkpoint tensors unused by the model, first %r", path, len(unexpected), unexpected[0])
    return method, config, payload.get("global_step")


def _check_shapes(method: Any, state_dict: Any, path: str, name: str) -> None:
    """UsageError naming the first tensor whose shape differs from the model's (torch would raise a
    RuntimeError listing them all): weights of another architecture or config."""
    if not isinstance(state_dict, dict):
        raise UsageError(f"--checkpoint {path}: 'state_dict' is a {type(state_dict).__name__}, not a mapping of tensors")
    own = method.state_dict()
    for key, value in state_dict.items():
        if key in own and (not isinstance(value, torch.Tensor) or value.shape != own[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise UsageError(f"--checkpoint {path}: {key!r} is {shape} in the file but {tuple(own[key].shape)} in "
                             f"the {name} model its config describes: the weights do not fit the architecture")


def model_identity(checkpoint: str, space: str, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """What identifies the features a model gives, for features files: the checkpoint's content hash
    (or `random:CONFIG` and its config overrides, e.g. its seed) and the feature space; the same
    weights copied elsewhere keep their identity."""
    import hashlib

    if checkpoint.startswith(RANDOM_PREFIX):
        return " ".join([checkpoint, *overrides]) + f"; space={space}"
    digest = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"checkpoint sha256={digest.hexdigest()[:16]}; space={space}"
