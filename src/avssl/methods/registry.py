"""Method names -> their parameter dataclass and their LightningModule, imported on first use."""

from __future__ import annotations

import importlib
from typing import Any

# method name -> module under avssl.methods; the module defines `Params` and `Method`
METHODS: dict[str, str] = {
    "avts": "avts",
    "temporal-av": "temporal_av",
    "movie-nce": "movie_nce",
    "avcl": "avcl",
}


def method_names() -> list[str]:
    return list(METHODS)


def _module(name: str) -> Any:
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {method_names()}")
    return importlib.import_module(f"avssl.methods.{METHODS[name]}")


def params_class(name: str) -> type:
    """The dataclass that validates the `method` section of a config for method `name`."""
    return _module(name).Params


def method_class(name: str) -> type:
    """The LightningModule class that trains method `name`."""
    return _module(name).Method
