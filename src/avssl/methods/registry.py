"""Method names -> their LightningModule class (whose `Params` validates the `method` config section),
imported on first use."""

from __future__ import annotations

import importlib
from typing import Sequence

# method name -> "module under avssl.methods:class"
METHODS: dict[str, str] = {
    "avts": "avts:AVTS",
    "temporal-av": "temporal_av:TemporalAV",
    "movie-nce": "movie_nce:MovieNCE",
    "avcl": "avcl:AVCL",
    "av-nce": "av_nce:AVNCE",
}


def method_names() -> list[str]:
    return list(METHODS)


def method_class(name: str) -> type:
    """The LightningModule class that trains method `name`."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {method_names()}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(f"avssl.methods.{module}"), cls)


def params_class(name: str) -> type:
    """The dataclass that validates the `method` section of a config for method `name`."""
    return method_class(name).Params


class RegisteredMethods:
    """The methods of this registry as avssl.config.schema.MethodCatalogue (what a config may name)."""

    def names(self) -> Sequence[str]:
        return method_names()

    def params_class(self, name: str) -> type:
        return params_class(name)
