"""Save and load encoder weights together with the architecture config that rebuilds them.

``save_encoder`` writes ``{"format": "avssl-encoder", "version": 1, "config": {...}, "state_dict": {...}}``.
``load_encoder`` reads with ``torch.load(weights_only=True)`` (no arbitrary code runs) an avssl encoder
file, a training checkpoint (``{"state_dict": ...}``, as Lightning writes) or a bare state dict; strips
wrapper prefixes (``module.`` from DDP, ``_orig_mod.`` from torch.compile, ``model.`` from Lightning
wrappers), picks the encoder's entries out of a whole-model checkpoint, and refuses weights of another
architecture with a message naming the first differing key.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from avssl.errors import UsageError
from avssl.models.factory import build_encoder

logger = logging.getLogger(__name__)

ENCODER_FORMAT = "avssl-encoder"
ENCODER_FORMAT_VERSION = 1
# `avssl_format_version` of the training checkpoints `avssl pretrain` writes (the layout of the
# avssl_* keys, the method state and the data position); a reader refuses a newer one
TRAINING_FORMAT_VERSION = 1
_LEADING_WRAPPERS = ("module.", "model.", "_orig_mod.")


class CheckpointMismatchError(UsageError):
    """The checkpoint's weights do not fit the encoder's architecture; the message names the first differing key."""


def save_encoder(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Write ``encoder``'s weights (on CPU) and its ``config`` to ``path``, atomically."""
    encoder = getattr(encoder, "_orig_mod", encoder)  # a torch.compile wrapper holds the real module
    config = getattr(encoder, "config", None)
    if not isinstance(config, Mapping) or "name" not in config:
        raise UsageError(f"cannot save {type(encoder).__name__} to {path}: it has no architecture `config` "
                         "(build it with build_video_encoder / build_audio_encoder)")
    payload = {
        "format": ENCODER_FORMAT,
        "version": ENCODER_FORMAT_VERSION,
        "config": dict(config),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop leading ``module.``/``model.``/``_orig_mod.`` (repeatedly) and inner ``_orig_mod.`` segments."""
    stripped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new_key = key.replace("._orig_mod.", ".")
        changed = True
        while changed:
            changed = False
            for prefix in _LEADING_WRAPPERS:
                if new_key.startswith(prefix):
                    new_key, changed = new_key[len(prefix):], True
        stripped[new_key] = value
    return stripped


def select_submodule(state_dict: Mapping[str, torch.Tensor], reference_keys: list[str], prefix: str | None,
                     path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.`` (prefix removed). With ``prefix=None``: the whole dict when the
    reference keys are at top level, else the entries under the one prefix that holds the reference's
    first key; several such prefixes (e.g. an encoder and its momentum copy) need an explicit prefix."""
    if prefix is not None:
        prefix = prefix.rstrip(".")
        for candidate in (prefix, *(prefix[len(w):] for w in _LEADING_WRAPPERS if prefix.startswith(w))):
            selected = {k[len(candidate) + 1:]: v for k, v in state_dict.items() if k.startswith(candidate + ".")}
            if selected:
                return selected
        raise UsageError(f"checkpoint {path} has no weights under prefix {prefix!r}")
    if not reference_keys or reference_keys[0] in state_dict:
        return dict(state_dict)
    first = reference_keys[0]
    candidates = sorted({k[: -len(first) - 1] for k in state_dict if k.endswith("." + first)})
    if len(candidates) > 1:
        raise UsageError(f"checkpoint {path} holds several encoders {candidates}; pass prefix= to choose one")
    if len(candidates) == 1:
        return select_submodule(state_dict, reference_keys, candidates[0], path)
    return dict(state_dict)


def first_difference(state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> str | None:
    """A description of the first key (in the model's order) that is missing, extra or of another shape."""
    for key, value in expected.items():
        if key not in state_dict:
            return f"first differing key {key!r}: missing from the checkpoint"
        if tuple(state_dict[key].shape) != tuple(value.shape):
            return (f"first differing key {key!r}: shape {list(state_dict[key].shape)} in the checkpoint, "
                    f"{list(value.shape)} in the model")
    for key in state_dict:
        if key not in expected:
            return f"first differing key {key!r}: in the checkpoint but not in the model"
    return None


def check_training_format_version(checkpoint: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Refuse a training checkpoint written by a newer avssl (`avssl_format_version` above ours).

    A checkpoint without the key predates it and has the layout of version 1.
    """
    version = checkpoint.get("avssl_format_version", 1)
    if not isinstance(version, int) or version > TRAINING_FORMAT_VERSION:
        raise UsageError(f"checkpoint {path} has avssl_format_version {version!r}: it was written by a newer "
                         f"avssl; this one reads versions up to {TRAINING_FORMAT_VERSION} (upgrade avssl)")


def _read(path: str | os.PathLike, map_location: str | torch.device) -> Any:
    if not Path(path).is_file():
        raise UsageError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UsageError(f"checkpoint {path} holds objects other than weights and plain values, "
                         f"so it is not loaded: {err}") from err


def load_encoder(path: str | os.PathLike, encoder: nn.Module | None = None, *, prefix: str | None = None,
                 map_location: str | torch.device = "cpu") -> nn.Module:
    """Load encoder weights from ``path``; returns the encoder (built from the stored config when
    ``encoder`` is None, which needs a file written by ``save_encoder``).

    ``prefix`` selects a submodule of a whole-model checkpoint (e.g. ``"video_encoder"``); without it
    the encoder's entries are found automatically when unambiguous. Raises ``CheckpointMismatchError``
    naming the first differing key when the weights belong to another architecture.
    """
    payload = _read(path, map_location)
    config: Mapping[str, Any] | None = None
    if isinstance(payload, Mapping) and payload.get("format") == ENCODER_FORMAT:
        if payload.get("version") != ENCODER_FORMAT_VERSION:
            raise UsageError(f"checkpoint {path} has encoder format version {payload.get('version')!r}; "
                             f"this avssl reads version {ENCODER_FORMAT_VERSION}")
        config, state = payload["config"], payload["state_dict"]
    elif isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        check_training_format_version(payload, path)
        state = payload["state_dict"]
    elif isinstance(payload, Mapping) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        state = payload
    else:
        raise UsageError(f"checkpoint {path} is neither an avssl encoder file, a training checkpoint with a "
                         "'state_dict', nor a state dict")
    if encoder is None:
        if config is None:
            raise UsageError(f"checkpoint {path} stores no architecture config; pass the encoder to load into")
        encoder = build_encoder(config)
    target = getattr(encoder, "_orig_mod", encoder)
    expected = target.state_dict()
    state = select_submodule(strip_wrapper_prefixes(state), list(expected), prefix, path)
    difference = first_difference(state, expected)
    if difference is not None:
        stored = f" (stored architecture {dict(config)})" if config is not None else ""
        model_config = getattr(target, "config", type(target).__name__)
        raise CheckpointMismatchError(f"checkpoint {path} does not match the encoder {model_config}{stored}: "
                                      f"{difference}")
    target.load_state_dict(state, strict=True)
    logger.debug("loaded %d tensors from %s", len(state), path)
    return encoder
