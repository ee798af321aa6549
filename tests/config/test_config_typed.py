"""The typed config loader: every bad key or value is refused with its dotted name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from avssl.config.overrides import apply_overrides, read_yaml
from avssl.config.typed import ConfigError, from_dict, require, to_dict


@dataclass
class Inner:
    batch_size: int = 4
    lr: float = 0.1
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)
    path: Optional[str] = None

    def validate(self, where: str) -> None:
        require(self.batch_size > 0, f"{where}.batch_size", f"must be positive, got {self.batch_size}")


@dataclass
class Outer:
    seed: int = 0
    data: Inner = field(default_factory=Inner)
    flag: bool = False


def test_defaults_and_conversion():
    cfg = from_dict(Outer, {"seed": 3, "data": {"lr": 1, "sizes": [4, 5], "path": "x"}})
    assert cfg.seed == 3
    assert cfg.data.lr == 1.0 and isinstance(cfg.data.lr, float)
    assert cfg.data.sizes == (4, 5)
    assert cfg.data.batch_size == 4
    assert to_dict(cfg) == {"seed": 3, "flag": False,
                            "data": {"batch_size": 4, "lr": 1.0, "mode": "a", "sizes": [4, 5], "path": "x"}}


def test_unknown_key_names_it_and_the_nearest_valid_one():
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, {"data": {"batch_sise": 8}})
    assert "'data.batch_sise'" in str(err.value)
    assert "did you mean 'data.batch_size'" in str(err.value)


@pytest.mark.parametrize("data, key", [
    ({"seed": "zero"}, "'seed' must be an integer"),
    ({"seed": True}, "'seed' must be an integer"),
    ({"flag": 1}, "'flag' must be true or false"),
    ({"data": {"mode": "c"}}, "'data.mode' must be one of"),
    ({"data": {"sizes": [1, "x"]}}, "'data.sizes[1]' must be an integer"),
    ({"data": {"batch_size": -2}}, "'data.batch_size' must be positive"),
    ({"data": 5}, "'data' must be a mapping"),
])
def test_bad_values_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        from_dict(Outer, data)


def test_overrides_set_nested_values_parsed_as_yaml():
    out = apply_overrides({"data": {"batch_size": 4}}, ["data.batch_size=8", "flag=true", "data.sizes=[3, 4]"])
    cfg = from_dict(Outer, out)
    assert cfg.data.batch_size == 8 and cfg.flag is True and cfg.data.sizes == (3, 4)


def test_override_of_unknown_key_is_refused_on_load():
    out = apply_overrides({}, ["dta.batch_size=8"])
    with pytest.raises(ConfigError, match="did you mean 'data'"):
        from_dict(Outer, out)


def test_malformed_override_and_files(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["data.batch_size"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        read_yaml(bad)
