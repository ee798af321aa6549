"""Config sections for optimisation and the trainer (method-independent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from avssl.config.typed import ConfigError, nearest, require

# experiment loggers a run may write to besides RUN_DIR/metrics.csv (always written), each with the
# pip extra of avssl that installs its package: `pip install 'avssl[tensorboard]'`
LOGGERS = ("csv", "tensorboard", "wandb", "mlflow")


@dataclass
class OptimConfig:
    """Optimiser and LR schedule: linear warm-up then cosine decay to `lr * min_lr_ratio`.

    Weight decay applies to weights of convolutions and linear layers only, never to norms or biases.
    """

    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    betas: tuple[float, ...] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01

    def validate(self, where: str) -> None:
        require(self.lr > 0, f"{where}.lr", f"must be positive, got {self.lr}")
        require(self.weight_decay >= 0, f"{where}.weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(self.warmup_steps >= 0, f"{where}.warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        require(0 <= self.min_lr_ratio <= 1, f"{where}.min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        require(len(self.betas) == 2, f"{where}.betas", f"must hold two numbers, got {list(self.betas)}")


@dataclass
class TrainerConfig:
    """What Lightning's Trainer gets, plus avssl's own checkpoint and speed options."""

    max_steps: int = 1000
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: Union[int, str] = "auto"
    num_nodes: int = 1
    strategy: Literal["auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true"] = "auto"
    precision: Literal["auto", "32", "32-true", "bf16-mixed", "16-mixed"] = "auto"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float = 0.0
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 100
    sync_batchnorm: bool = False
    compile: bool = False
    channels_last_3d: bool = False
    progress_bar: bool = True
    deterministic: bool = False
    # where the metrics go: a list of LOGGERS (one name is read as a list of one); csv is always written
    logger: Union[list[str], str] = field(default_factory=lambda: ["csv"])

    def __post_init__(self) -> None:
        if isinstance(self.logger, str):
            self.logger = [self.logger]

    def validate(self, where: str) -> None:
        check_loggers(self.logger, f"{where}.logger")
        require(self.max_steps > 0, f"{where}.max_steps", f"must be positive, got {self.max_steps}")
        require(self.num_nodes > 0, f"{where}.num_nodes", f"must be positive, got {self.num_nodes}")
        require(self.accumulate_grad_batches > 0, f"{where}.accumulate_grad_batches",
                f"must be positive, got {self.accumulate_grad_batches}")
        require(self.gradient_clip_val >= 0, f"{where}.gradient_clip_val", "must be >= 0 (0 disables clipping)")
        require(self.log_every_n_steps > 0, f"{where}.log_every_n_steps", "must be positive")
        require(self.checkpoint_every_n_steps > 0, f"{where}.checkpoint_every_n_steps", "must be positive")
        if isinstance(self.devices, str):
            require(self.devices == "auto" or self.devices.replace(",", "").isdigit(), f"{where}.devices",
                    f"must be 'auto', a count or a list like '0,1', got {self.devices!r}")
        else:
            require(self.devices > 0, f"{where}.devices", f"must be positive, got {self.devices}")


def check_loggers(names: list[str], key: str) -> None:
    """ConfigError naming `key` (and the nearest valid name) for a name not in LOGGERS or given twice."""
    for i, name in enumerate(names):
        if name not in LOGGERS:
            hint = nearest(str(name), LOGGERS)
            raise ConfigError(f"config key '{key}': unknown logger {name!r}" + (f"; did you mean '{hint}'?" if hint else "")
                              + f" (one or more of {', '.join(LOGGERS)})")
        if name in names[:i]:
            raise ConfigError(f"config key '{key}': {name!r} is listed twice")


@dataclass
class OnlineProbeConfig:
    """Optional kNN probe on detached features of a small labelled manifest, run during pretraining."""

    manifest: Optional[str] = None
    every_n_steps: int = 100
    k: int = 5
    modality: Literal["video", "audio"] = "video"

    def validate(self, where: str) -> None:
        require(self.every_n_steps > 0, f"{where}.every_n_steps", "must be positive")
        require(self.k > 0, f"{where}.k", "must be positive")
