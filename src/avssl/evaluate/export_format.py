"""The export dir of `avssl export` as a format: its constants, the modules it keeps, the encoders'
input shapes, and reading it back (`avssl.load(DIR)`).

An export dir holds one `<module>.safetensors` per kept module of the method (its state dict with
the module's own key names: `video_encoder.safetensors` has torchvision-style VideoResNet keys),
`config.json` (format, version, the run config, what each file holds, where the weights came from,
the encoders' input shapes) and `README.md` (the model card). Kept: every module of the method with
weights (encoders, projection heads, pretext heads, fusion), except training state: temporal-av's
momentum encoders (`key_video`, `key_audio`) and its feature queue. Loading rebuilds the method
from the config and loads every exported module strictly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from avssl.errors import UsageError

EXPORT_FORMAT = "avssl-export"
EXPORT_VERSION = 1
CONFIG_FILE = "config.json"
# training state, not part of the model a user embeds with: momentum copies and the feature queue
TRAINING_ONLY = ("key_video", "key_audio", "queue")
DATA_FINGERPRINT_KEY = "avssl_data_fingerprint"  # avssl.train.callbacks.DATA_FINGERPRINT_KEY


def safetensors_module():
    """safetensors.torch; UsageError naming the package when it is not installed."""
    try:
        import safetensors.torch as st
    except ImportError:
        raise UsageError("avssl exports need the `safetensors` package: pip install safetensors") from None
    return st


def is_export_dir(path: str | os.PathLike) -> bool:
    """True when `path` is a folder with the config.json of an avssl export."""
    config = Path(path) / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == EXPORT_FORMAT
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def exported_modules(method: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """name -> module for every child of the method with weights, training state left out."""
    return {name: module for name, module in method.named_children()
            if name not in TRAINING_ONLY and module.state_dict()}


def input_shapes(config: Any) -> dict[str, Any]:
    """What the encoders take (batch first): video normalised float [B, 3, T, S, S], audio log-mel
    [B, 1, n_mels, frames], and the preprocessing that makes them from uint8 frames and waveforms."""
    clip, aug, logmel = config.data.clip, config.data.video_augment, config.data.logmel
    samples = round(clip.audio_window * clip.sample_rate)
    return {"video": [3, clip.frames, aug.size, aug.size], "video_fps": clip.fps,
            "video_normalize": {"mean": list(aug.mean), "std": list(aug.std), "scale": "uint8 / 255"},
            "audio_samples": samples, "audio_sample_rate": clip.sample_rate,
            "audio": [1, logmel.n_mels, logmel.num_frames(samples)]}


def read_export_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The config.json of an export dir; UsageError naming the folder when it is not one this avssl reads."""
    path = Path(folder) / CONFIG_FILE
    if not is_export_dir(folder):
        raise UsageError(f"{folder}: not an export of `avssl export` (no {CONFIG_FILE} with format {EXPORT_FORMAT!r})")
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record.get("version"), int) or record["version"] > EXPORT_VERSION:
        raise UsageError(f"{path}: export version {record.get('version')!r} was written by a newer avssl; "
                         f"this one reads versions up to {EXPORT_VERSION}")
    return record


def load_export(folder: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """(method in eval mode on `device`, its Config, {"step", "random_init", "sha256"}) from an export dir."""
    from avssl.methods.configs import config_from_dict
    from avssl.methods.registry import method_class
    from avssl.models.state_dict import first_difference

    record = read_export_config(folder)
    config = config_from_dict(record["config"])
    method = method_class(config.method.name)(config)
    st = safetensors_module()
    children = dict(method.named_children())
    for name, entry in record["modules"].items():
        path = Path(folder) / entry["file"]
        if name not in children or not path.is_file():
            raise UsageError(f"{path}: module {name!r} missing from the export or from the {config.method.name} model")
        state = st.load_file(str(path))
        difference = first_difference(state, children[name].state_dict())
        if difference is not None:
            raise UsageError(f"{path} does not fit the {config.method.name} model's {name}: {difference}")
        children[name].load_state_dict(state, strict=True)
    method.to(device).eval()
    for p in method.parameters():
        p.requires_grad_(False)
    source = record.get("source", {})
    return method, config, {"step": source.get("step"), "random_init": bool(source.get("random_init")),
                            "sha256": source.get("sha256", "")}
