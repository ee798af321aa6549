"""The experiment loggers of a run, chosen by `trainer.logger`: RUN_DIR/metrics.csv always, and
TensorBoard, Weights & Biases or MLflow when listed (each an optional extra of avssl; a listed logger
whose package is missing is a ConfigError naming the key and the extra to install)."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from typing import Any, Optional

from avssl.config.schema import Config
from avssl.config.typed import ConfigError
from avssl.train.csv_logger import RunCSVLogger
from avssl.train.resume import RunPaths

log = logging.getLogger(__name__)

# logger name -> (the module it needs, the pip extra of avssl that installs it)
PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}


def check_logger_packages(names: list[str]) -> None:
    """ConfigError naming trainer.logger and the pip extra for the first listed logger not installed."""
    for name in names:
        if name not in PACKAGES:
            continue
        module, extra = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"config key 'trainer.logger' lists {name!r}, but the {module!r} package is not "
                              f"installed: pip install 'avssl[{extra}]' (or remove {name!r} from trainer.logger)")


def build_loggers(config: Config, paths: RunPaths, resume_step: Optional[int]) -> list[Any]:
    """RunCSVLogger (RUN_DIR/metrics.csv, kept across resumes) and the other loggers trainer.logger lists."""
    names = list(config.trainer.logger)
    check_logger_packages(names)
    loggers: list[Any] = [RunCSVLogger(paths.root, resume_step)]
    for name in names:
        if name != "csv":
            loggers.append(_external_logger(name, paths))
    log.info("metrics go to %s", ", ".join(["metrics.csv"] + [_where(n, paths) for n in names if n != "csv"]))
    return loggers


def run_id(paths: RunPaths) -> str:
    """A stable id of the run folder: a resumed run continues the same W&B run."""
    return hashlib.sha256(os.path.abspath(paths.root).encode("utf-8")).hexdigest()[:16]


def _external_logger(name: str, paths: RunPaths) -> Any:
    if name == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(str(paths.root), name="tensorboard", version="")
    if name == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        return WandbLogger(project=os.environ.get("WANDB_PROJECT", "avssl"), name=paths.root.name,
                           save_dir=str(paths.root), id=run_id(paths), resume="allow")
    from lightning.pytorch.loggers import MLFlowLogger

    # MLFLOW_TRACKING_URI (a server) wins; otherwise a file store inside the run folder
    return MLFlowLogger(experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", "avssl"), run_name=paths.root.name,
                        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"), save_dir=str(paths.root / "mlruns"))


def _where(name: str, paths: RunPaths) -> str:
    if name == "tensorboard":
        return f"TensorBoard ({paths.root / 'tensorboard'})"
    if name == "wandb":
        return f"Weights & Biases (project {os.environ.get('WANDB_PROJECT', 'avssl')}, run {paths.root.name})"
    return f"MLflow ({os.environ.get('MLFLOW_TRACKING_URI') or paths.root / 'mlruns'})"
