"""Reading a run's config: YAML + `key=value` overrides, validated against the registered methods and
the known encoders (the one way a config is read; ConfigError names the bad key)."""

from __future__ import annotations

import os
from typing import Any

from avssl.config.schema import Config, parse_config, read_config_dict
from avssl.config.typed import ConfigError, require
from avssl.errors import UsageError
from avssl.methods.registry import RegisteredMethods
from avssl.models.factory import is_video_encoder_name


def config_from_dict(data: dict[str, Any]) -> Config:
    """Validate a plain mapping (a YAML config, or the one a checkpoint stores) into a Config."""
    config = parse_config(data, RegisteredMethods())
    check_encoder_names(config)
    return config


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config, apply `key=value` overrides and validate."""
    return config_from_dict(read_config_dict(path, overrides))


def check_encoder_names(config: Config) -> None:
    """`model.video.name` must name a video encoder and `model.audio.name` an audio one."""
    for key, want_video in (("video", True), ("audio", False)):
        name = getattr(config.model, key)["name"]
        try:
            is_video = is_video_encoder_name(name)
        except UsageError as err:
            raise ConfigError(f"config key 'model.{key}.name': {err}") from None
        require(is_video == want_video, f"model.{key}.name", f"must name a {key} encoder, got {name!r}")
