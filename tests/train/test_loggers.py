"""trainer.logger: metrics.csv always, the listed loggers besides it, the choice logged at INFO, and a
listed logger whose package is not installed refused naming the key and the pip extra."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from train_support import tiny

from avssl.config.typed import ConfigError
from avssl.train import loggers
from avssl.train.csv_logger import RunCSVLogger
from avssl.train.engine import pretrain
from avssl.train.resume import RunPaths


def without(*modules):
    real = importlib.util.find_spec
    return lambda name, *args, **kwargs: None if name in modules else real(name, *args, **kwargs)


def test_csv_by_default_and_the_choice_logged_at_info(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="avssl.train.loggers"):
        built = loggers.build_loggers(tiny(), RunPaths(tmp_path), None)
    assert [type(b) for b in built] == [RunCSVLogger]
    assert any(r.levelno == logging.INFO and r.getMessage() == "metrics go to metrics.csv" for r in caplog.records)


@pytest.mark.parametrize("name", ["tensorboard", "wandb", "mlflow"])
def test_a_logger_whose_package_is_missing_names_the_key_and_the_extra(name, tmp_path, monkeypatch):
    monkeypatch.setattr(loggers.importlib.util, "find_spec", without(name))
    with pytest.raises(ConfigError) as err:
        loggers.build_loggers(tiny(**{"trainer.logger": f"[csv,{name}]"}), RunPaths(tmp_path), None)
    assert "trainer.logger" in str(err.value) and f"pip install 'avssl[{name}]'" in str(err.value)


def test_pretrain_refuses_a_missing_logger_before_training(tmp_path, manifest, monkeypatch):
    monkeypatch.setattr(loggers.importlib.util, "find_spec", without("wandb"))
    with pytest.raises(ConfigError, match=r"trainer.logger.*avssl\[wandb\]"):
        pretrain(tiny(**{"trainer.logger": "wandb", "trainer.max_steps": 1}), manifest, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_the_extras_are_declared_and_not_in_dev():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for name, (module, extra) in loggers.PACKAGES.items():
        assert any(req.startswith(module) for req in extras[extra]), name
        assert not any(req.startswith(module) for req in extras["dev"]), name
