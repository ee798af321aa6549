"""Build typed dataclass configs from plain dicts (YAML), naming the bad key and its nearest valid one.

Supported field types: bool, int, float, str, Literal[...], Optional[X], list[X], tuple[X, ...],
dict[str, X] and nested dataclasses. Validation happens once, on load; code after that reads typed
attributes and never a raw dict.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union

from avssl.errors import UsageError


class ConfigError(UsageError):
    """A config value is unknown, mistyped or out of range; the message names the dotted key."""


def nearest(name: str, choices: typing.Iterable[str]) -> str | None:
    """The closest valid name to a mistyped one, or None when nothing is close."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return match[0] if match else None


def unknown_key_error(key: str, choices: typing.Iterable[str], where: str) -> ConfigError:
    choices = list(choices)
    hint = nearest(key.rsplit(".", 1)[-1], choices)
    msg = f"unknown config key '{key}'"
    if hint:
        msg += f"; did you mean '{_join(where, hint)}'?"
    msg += f" (valid keys here: {', '.join(sorted(choices))})"
    return ConfigError(msg)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Instantiate dataclass `cls` from `data` (a dict), checking every key and value type."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{where or '<root>'}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise unknown_key_error(_join(where, str(key)), fields, where)
    kwargs = {name: convert(hints[name], data[name], _join(where, name)) for name in fields if name in data}
    try:
        obj = cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, UsageError) as err:
        raise ConfigError(f"config section '{where or '<root>'}': {err}") from err
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate(where)
    return obj


def convert(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against type `tp` and convert it (int -> float, list -> tuple, dict -> dataclass)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return convert(option, value, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"config key '{key}': {value!r} fits none of {args}")
    if origin is Literal:
        if value not in args:
            hint = nearest(str(value), [str(a) for a in args])
            extra = f"; did you mean '{hint}'?" if hint else ""
            raise ConfigError(f"config key '{key}' must be one of {list(args)}, got {value!r}{extra}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        item_tp = args[0] if args else Any
        items = [convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping, got {value!r}")
        value_tp = args[1] if args else Any
        return {str(k): convert(value_tp, v, _join(key, str(k))) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at '{key}'")


def to_dict(obj: Any) -> Any:
    """The plain-data form of a config (dicts, lists, scalars), as saved in YAML and checkpoints."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def require(condition: bool, key: str, message: str) -> None:
    """Raise a ConfigError naming `key` unless `condition` holds (used by `validate` methods)."""
    if not condition:
        raise ConfigError(f"config key '{key}' {message}")
