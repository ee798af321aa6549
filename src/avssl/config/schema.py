"""The root config of a pretraining run: model, data, method, optimiser, trainer; load and save.

A run's config is one YAML file (configs/<method>.yaml) plus dotted overrides. `method.name` picks
the method, whose own parameter dataclass validates the rest of the `method` section. This module
does not know the methods: the caller hands the loader a `MethodCatalogue` (avssl.methods.registry
passes its own, and checks the encoder names against avssl.models), so config/ imports nothing above it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, Sequence

import yaml

from avssl.config.data import DataConfig
from avssl.config.overrides import apply_overrides, read_yaml
from avssl.config.trainer import OnlineProbeConfig, OptimConfig, TrainerConfig
from avssl.config.typed import ConfigError, from_dict, nearest, require, to_dict


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
        for key in ("video", "audio"):
            require("name" in getattr(self, key), f"{where}.{key}.name", "is required (an encoder name)")
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


class MethodCatalogue(Protocol):
    """The methods a config may name: their names and the dataclass of each one's `method` section."""

    def names(self) -> Sequence[str]: ...

    def params_class(self, name: str) -> type: ...


def parse_config(data: dict[str, Any], methods: MethodCatalogue) -> Config:
    """Validate a plain mapping (YAML) into a Config; ConfigError names the first bad key."""
    data = dict(data)
    method = data.pop("method", None)
    names = list(methods.names())
    if not isinstance(method, dict) or "name" not in method:
        raise ConfigError(f"config key 'method.name' is required; one of {names}")
    method = dict(method)
    name = method.pop("name")
    if name not in names:
        hint = nearest(str(name), names)
        raise ConfigError(f"config key 'method.name': unknown method {name!r}"
                          + (f"; did you mean '{hint}'?" if hint else "") + f" (known: {', '.join(names)})")
    params = from_dict(methods.params_class(name), method, "method")
    return dataclasses.replace(from_dict(Config, data), method=MethodSpec(name, params))


def read_config_dict(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """A YAML config as a plain mapping with `key=value` overrides applied (validated later)."""
    return apply_overrides(read_yaml(path), list(overrides))


def config_to_dict(config: Config) -> dict[str, Any]:
    """The plain form saved in RUN_DIR/config.yaml and in every checkpoint."""
    out = to_dict(config)
    out["method"] = {"name": config.method.name, **to_dict(config.method.params)}
    return out


def save_config(config: Config, path: str | os.PathLike) -> None:
    with open(path, "w") as f:
        yaml.safe_dump(config_to_dict(config), f, sort_keys=False)
