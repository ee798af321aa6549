"""What avssl's checkpoint files hold and how they are read: the training checkpoint's format version,
weights-only loading with errors that name the file, and encoder files (weights + the architecture
config that rebuilds them). No Lightning here: evaluation reads checkpoints through this module.

``save_encoder`` writes ``{"format": "avssl-encoder", "version": 1, "config": {...}, "state_dict": {...}}``.
``load_encoder`` reads an avssl encoder file, a training checkpoint (``{"state_dict": ...}``, as
``avssl pretrain`` writes; its ``avssl_config`` rebuilds the encoder that ``prefix`` names) or a bare
state dict; strips wrapper prefixes, picks the encoder's entries out of a whole-model checkpoint,
and refuses weights of another architecture naming the first differing key.
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
from avssl.models.state_dict import (
    CheckpointMismatchError,
    first_difference,
    select_submodule,
    strip_wrapper_prefixes,
)

log = logging.getLogger(__name__)

ENCODER_FORMAT = "avssl-encoder"
ENCODER_FORMAT_VERSION = 1
# `avssl_format_version` of the training checkpoints `avssl pretrain` writes (the layout of the
# avssl_* keys, the method state and the data position); a reader refuses a newer one
TRAINING_FORMAT_VERSION = 1


def safe_load(path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """torch.load with weights_only=True: tensors and plain containers only, never arbitrary code."""
    return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """A checkpoint file's contents (weights-only); UsageError naming the file when it is missing or
    holds objects other than weights and plain values."""
    if not Path(path).is_file():
        raise UsageError(f"checkpoint {path} does not exist")
    try:
        return safe_load(path, map_location=map_location)
    except pickle.UnpicklingError as err:
        raise UsageError(f"checkpoint {path} holds objects other than weights and plain values, "
                         f"so it is not loaded: {err}") from err


def check_training_format_version(checkpoint: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Refuse a training checkpoint written by a newer avssl (`avssl_format_version` above ours).

    A checkpoint without the key predates it and has the layout of version 1.
    """
    version = checkpoint.get("avssl_format_version", 1)
    if not isinstance(version, int) or version > TRAINING_FORMAT_VERSION:
        raise UsageError(f"checkpoint {path} has avssl_format_version {version!r}: it was written by a newer "
                         f"avssl; this one reads versions up to {TRAINING_FORMAT_VERSION} (upgrade avssl)")


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


def _weights_and_config(payload: Any, path: str | os.PathLike) -> tuple[Mapping[str, torch.Tensor], Mapping | None]:
    if isinstance(payload, Mapping) and payload.get("format") == ENCODER_FORMAT:
        if payload.get("version") != ENCODER_FORMAT_VERSION:
            raise UsageError(f"checkpoint {path} has encoder format version {payload.get('version')!r}; "
                             f"this avssl reads version {ENCODER_FORMAT_VERSION}")
        return payload["state_dict"], payload["config"]
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        check_training_format_version(payload, path)
        return payload["state_dict"], None
    if isinstance(payload, Mapping) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return payload, None
    raise UsageError(f"checkpoint {path} is neither an avssl encoder file, a training checkpoint with a "
                     "'state_dict', nor a state dict")


# prefix of an encoder in a training checkpoint's state dict -> its key under the run config's `model`
RUN_ENCODER_PREFIXES = {"video_encoder": "video", "audio_encoder": "audio"}


def _run_encoder_config(payload: Any, prefix: str | None, path: str | os.PathLike) -> Mapping | None:
    """The architecture config of the encoder ``prefix`` names, from a training checkpoint's
    ``avssl_config`` (``model.video`` / ``model.audio``); None when the payload has no run config."""
    run = payload.get("avssl_config") if isinstance(payload, Mapping) else None
    if not isinstance(run, Mapping) or not isinstance(run.get("model"), Mapping):
        return None
    if prefix is None:
        raise UsageError(f"checkpoint {path} is a training checkpoint with a video and an audio encoder; "
                         "pass prefix='video_encoder' or prefix='audio_encoder'")
    key = RUN_ENCODER_PREFIXES.get(prefix.rstrip("."))
    if key is None:
        raise UsageError(f"checkpoint {path}: prefix {prefix!r} names no encoder of the run; "
                         f"use one of {sorted(RUN_ENCODER_PREFIXES)}")
    return run["model"][key]


def load_encoder(path: str | os.PathLike, encoder: nn.Module | None = None, *, prefix: str | None = None,
                 map_location: str | torch.device = "cpu") -> nn.Module:
    """Load encoder weights from ``path``; returns the encoder (built from the stored config when
    ``encoder`` is None, which needs a file written by ``save_encoder`` or a training checkpoint of
    ``avssl pretrain`` with ``prefix="video_encoder"`` or ``"audio_encoder"``).

    ``prefix`` selects a submodule of a whole-model checkpoint (e.g. ``"video_encoder"``); without it
    the encoder's entries are found automatically when unambiguous. Raises ``CheckpointMismatchError``
    naming the first differing key when the weights belong to another architecture.
    """
    payload = read_checkpoint(path, map_location)
    state, config = _weights_and_config(payload, path)
    if encoder is None:
        if config is None:
            config = _run_encoder_config(payload, prefix, path)
        if config is None:
            raise UsageError(f"checkpoint {path} stores no architecture config; pass the encoder to load into")
        encoder = build_encoder(config)
    target = getattr(encoder, "_orig_mod", encoder)
    expected = target.state_dict()
    state = select_submodule(strip_wrapper_prefixes(state), list(expected), prefix, str(path))
    difference = first_difference(state, expected)
    if difference is not None:
        stored = f" (stored architecture {dict(config)})" if config is not None else ""
        model_config = getattr(target, "config", type(target).__name__)
        raise CheckpointMismatchError(f"checkpoint {path} does not match the encoder {model_config}{stored}: "
                                      f"{difference}")
    target.load_state_dict(state, strict=True)
    log.debug("loaded %d tensors from %s", len(state), path)
    return encoder
