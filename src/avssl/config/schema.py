"""The root config of a pretraining run: model, data, method, optimiser, trainer; load and save.

A run's config is one YAML file (configs/<method>.yaml) plus dotted overrides. `method.name` picks
the method, whose own parameter dataclass (registered in avssl.methods.registry) validates the rest
of the `method` section.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import yaml

from avssl.config.overrides import apply_overrides, read_yaml
from avssl.config.trainer import OnlineProbeConfig, OptimConfig, TrainerConfig
from avssl.config.typed import ConfigError, from_dict, nearest, require, to_dict
from avssl.data.features import LogMelConfig
from avssl.data.transforms import AudioAugmentConfig, VideoAugmentConfig


@dataclass
class ClipConfig:
    """One training clip: `frames` video frames sampled at `fps` (so frames / fps seconds) and the
    audio of `audio_seconds` (default: the same window as the video) at `sample_rate`. The frame
    size is `data.video_augment.size`."""

    frames: int = 16
    fps: float = 25.0
    audio_seconds: Optional[float] = None
    sample_rate: int = 16000

    @property
    def video_seconds(self) -> float:
        return self.frames / self.fps

    @property
    def audio_window(self) -> float:
        return self.audio_seconds if self.audio_seconds is not None else self.video_seconds

    def validate(self, where: str) -> None:
        require(self.frames > 0, f"{where}.frames", f"must be positive, got {self.frames}")
        require(self.fps > 0, f"{where}.fps", f"must be positive, got {self.fps}")
        require(self.sample_rate > 0, f"{where}.sample_rate", f"must be positive, got {self.sample_rate}")
        require(self.audio_seconds is None or self.audio_seconds > 0, f"{where}.audio_seconds", "must be positive")


@dataclass
class DataConfig:
    """Loading: batch, workers, decoder backend, failure policy, clip shape, features, augmentations.

    `cache_dir`: a folder written by `avssl cache audio` / `avssl cache frames` for this clip config
    (sample rate; fps and decode size); clips it holds are read from it instead of being decoded.
    """

    batch_size: int = 32
    num_workers: int = 4
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2
    backend: Literal["pyav", "torchcodec"] = "pyav"
    max_failures: int = 100
    cache_dir: Optional[str] = None
    clip: ClipConfig = field(default_factory=ClipConfig)
    logmel: LogMelConfig = field(default_factory=LogMelConfig)
    video_augment: VideoAugmentConfig = field(default_factory=VideoAugmentConfig)
    audio_augment: AudioAugmentConfig = field(default_factory=AudioAugmentConfig)

    def validate(self, where: str) -> None:
        require(self.batch_size > 0, f"{where}.batch_size", f"must be positive, got {self.batch_size}")
        require(self.num_workers >= 0, f"{where}.num_workers", f"must be >= 0, got {self.num_workers}")
        require(self.prefetch_factor > 0, f"{where}.prefetch_factor", "must be positive")
        require(self.max_failures >= 0, f"{where}.max_failures", f"must be >= 0, got {self.max_failures}")
        require(self.cache_dir is None or os.path.isdir(self.cache_dir), f"{where}.cache_dir",
                f"{self.cache_dir!r} is not a folder (build one with `avssl cache audio|frames`)")
        require(self.logmel.sample_rate == self.clip.sample_rate, f"{where}.logmel.sample_rate",
                f"({self.logmel.sample_rate}) must equal {where}.clip.sample_rate ({self.clip.sample_rate})")


@dataclass
class ModelConfig:
    """Encoders by name with their knobs (see avssl.models.factory) and the projection heads."""

    video: dict[str, Any] = field(default_factory=lambda: {"name": "r2plus1d_18"})
    audio: dict[str, Any] = field(default_factory=lambda: {"name": "resnet18_audio"})
    embed_dim: int = 128
    projection_hidden: int = 512
    projection_layers: int = 2
    projection_bn: bool = True

    def validate(self, where: str) -> None:
        from avssl.models.factory import is_video_encoder_name

        for key, want_video in (("video", True), ("audio", False)):
            spec = getattr(self, key)
            require("name" in spec, f"{where}.{key}.name", "is required (an encoder name)")
            try:
                is_video = is_video_encoder_name(spec["name"])
            except ValueError as err:
                raise ConfigError(f"config key '{where}.{key}.name': {err}") from None
            require(is_video == want_video, f"{where}.{key}.name",
                    f"must name a {key} encoder, got {spec['name']!r}")
        require(self.embed_dim > 0, f"{where}.embed_dim", "must be positive")
        require(self.projection_layers > 0, f"{where}.projection_layers", "must be positive")


@dataclass
class MethodSpec:
    """`method.name` and that method's parameters (its registered dataclass)."""

    name: str
    params: Any


@dataclass
class Config:
    """Everything a pretraining run needs besides the manifest and the output folder.

    `method` is always set by `config_from_dict`; it is optional here only so that the other
    sections can be validated by the generic loader first.
    """

    method: Optional[MethodSpec] = None
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    probe: OnlineProbeConfig = field(default_factory=OnlineProbeConfig)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a plain mapping (YAML) into a Config; ConfigError names the first bad key."""
    from avssl.methods.registry import method_names, params_class

    data = dict(data)
    method = data.pop("method", None)
    if not isinstance(method, dict) or "name" not in method:
        raise ConfigError(f"config key 'method.name' is required; one of {method_names()}")
    method = dict(method)
    name = method.pop("name")
    if name not in method_names():
        hint = nearest(str(name), method_names())
        raise ConfigError(f"config key 'method.name': unknown method {name!r}"
                          + (f"; did you mean '{hint}'?" if hint else "") + f" (known: {', '.join(method_names())})")
    params = from_dict(params_class(name), method, "method")
    return dataclasses.replace(from_dict(Config, data), method=MethodSpec(name, params))


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config, apply `key=value` overrides and validate. ConfigError names the bad key."""
    return config_from_dict(apply_overrides(read_yaml(path), list(overrides)))


def config_to_dict(config: Config) -> dict[str, Any]:
    """The plain form saved in RUN_DIR/config.yaml and in every checkpoint."""
    out = to_dict(config)
    out["method"] = {"name": config.method.name, **to_dict(config.method.params)}
    return out


def save_config(config: Config, path: str | os.PathLike) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(config_to_dict(config), f, sort_keys=False)
