"""Build encoders by name from plain config values (what a YAML config holds), with named size presets.

Names: video ``r2plus1d_18``, ``r3d_18``, ``mc3_18`` (torchvision's layouts) and ``avid_r2plus1d_18``
(AVID-CMA's R(2+1)D); audio ``resnet18_audio``, ``vgg_audio`` (hyphens are accepted for underscores).
A ``-tiny`` suffix selects the CPU-scale preset (width 16, one block per stage); explicit knobs
override a preset. Every built encoder carries ``config``, the resolved name and knobs that rebuild
it, and ``out_dim``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping

from torch import nn

from avssl.errors import UsageError
from avssl.models.audio import AudioResNet, AudioVGG
from avssl.models.video import VIDEO_ARCHITECTURES, VideoResNet
from avssl.models.video_avid import AVID_R2PLUS1D_NAME, AvidR2Plus1D

# preset name -> knobs; "tiny" is the same architecture at CPU scale
VIDEO_PRESETS: dict[str, dict[str, Any]] = {"tiny": {"width": 16, "layers": [1, 1, 1, 1]}}
AUDIO_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "resnet18_audio": {"tiny": {"width": 16, "layers": [1, 1, 1, 1]}},
    "vgg_audio": {"tiny": {"width": 16, "convs": [1, 1, 1, 1]}},
}
# video encoder name -> its class, called with the knobs (the knobs each accepts: _VIDEO_KNOBS)
_VIDEO_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    **{arch: partial(VideoResNet, arch) for arch in VIDEO_ARCHITECTURES},
    AVID_R2PLUS1D_NAME: AvidR2Plus1D,
}
# encoder name -> the knobs it accepts and the list-valued ones among them
_VIDEO_KNOBS = {**{arch: {"width", "layers", "in_channels", "stage_strides"} for arch in VIDEO_ARCHITECTURES},
                AVID_R2PLUS1D_NAME: {"width", "layers", "in_channels"}}
_AUDIO_KNOBS = {"resnet18_audio": {"width", "layers", "in_channels"}, "vgg_audio": {"width", "convs", "in_channels"}}
_LIST_KNOBS = {"layers", "convs", "stage_strides"}


def video_encoder_names() -> list[str]:
    return sorted(_VIDEO_BUILDERS)


def audio_encoder_names() -> list[str]:
    return sorted(_AUDIO_KNOBS)


def _split_name(name: str) -> tuple[str, str | None]:
    if not isinstance(name, str) or not name:
        raise UsageError(f"encoder name must be a non-empty string, got {name!r}")
    base, preset = name, None
    for candidate in ("tiny",):
        if name.endswith(f"-{candidate}"):
            base, preset = name[: -len(candidate) - 1], candidate
    return base.replace("-", "_"), preset


def _check_knobs(name: str, knobs: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in knobs.items():
        if key not in allowed:
            raise UsageError(f"encoder {name!r} has no option {key!r}; options: {sorted(allowed)}")
        if key in _LIST_KNOBS:
            if (not isinstance(value, (list, tuple)) or not value
                    or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value)):
                raise UsageError(f"encoder {name!r} option {key!r} must be a non-empty list of positive integers, "
                                 f"got {value!r}")
            checked[key] = [int(n) for n in value]
        else:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"encoder {name!r} option {key!r} must be a positive integer, got {value!r}")
            checked[key] = int(value)
    return checked


def build_video_encoder(name: str, **knobs: Any) -> nn.Module:
    """A video encoder ``[B, 3, T, H, W] -> [B, out_dim]`` by name, e.g. ``build_video_encoder("r2plus1d_18")``.

    Knobs: ``width`` (base channels, 64), ``layers`` (blocks per stage, [2, 2, 2, 2]), ``in_channels`` (3),
    and for the VideoResNets ``stage_strides`` (the stride of each stage's first block, [1, 2, 2, 2]).
    Raises ``UsageError`` naming an unknown name or option.
    """
    base, preset = _split_name(name)
    if base not in _VIDEO_BUILDERS:
        raise UsageError(f"unknown video encoder {name!r}; known: {video_encoder_names()} (optionally with -tiny)")
    resolved = dict(VIDEO_PRESETS[preset]) if preset else {}
    resolved.update(_check_knobs(name, knobs, _VIDEO_KNOBS[base]))
    stages = len(resolved.get("layers", (2, 2, 2, 2)))
    if len(resolved.get("stage_strides", [0] * stages)) != stages:
        raise UsageError(f"encoder {name!r} option 'stage_strides' needs one stride per stage ({stages}), "
                         f"got {resolved['stage_strides']!r}")
    return _VIDEO_BUILDERS[base](**resolved)


def build_audio_encoder(name: str, **knobs: Any) -> nn.Module:
    """An audio encoder ``[B, 1, n_mels, frames] -> [B, out_dim]`` by name, e.g. ``build_audio_encoder("vgg_audio")``.

    Knobs: ``width`` (64), ``in_channels`` (1), and ``layers`` (resnet18_audio, [2, 2, 2, 2]) or
    ``convs`` (vgg_audio, [1, 1, 2, 2]). Raises ``UsageError`` naming an unknown name or option.
    """
    base, preset = _split_name(name)
    if base not in _AUDIO_KNOBS:
        raise UsageError(f"unknown audio encoder {name!r}; known: {audio_encoder_names()} (optionally with -tiny)")
    resolved = dict(AUDIO_PRESETS[base][preset]) if preset else {}
    resolved.update(_check_knobs(name, knobs, _AUDIO_KNOBS[base]))
    return AudioResNet(**resolved) if base == "resnet18_audio" else AudioVGG(**resolved)


def build_encoder(config: Mapping[str, Any]) -> nn.Module:
    """Build from a config mapping ``{"name": ..., **knobs}`` (an encoder's ``config`` round-trips)."""
    if not isinstance(config, Mapping) or "name" not in config:
        raise UsageError(f"encoder config must be a mapping with a 'name' key, got {config!r}")
    knobs = {k: v for k, v in config.items() if k != "name"}
    base, _ = _split_name(config["name"])
    if base in _VIDEO_BUILDERS:
        return build_video_encoder(config["name"], **knobs)
    return build_audio_encoder(config["name"], **knobs)


def is_video_encoder_name(name: str) -> bool:
    """True for a video encoder name (with or without preset), False for an audio one; UsageError otherwise."""
    base, _ = _split_name(name)
    if base in _VIDEO_BUILDERS:
        return True
    if base in _AUDIO_KNOBS:
        return False
    raise UsageError(f"unknown encoder {name!r}; known: {video_encoder_names() + audio_encoder_names()}")
