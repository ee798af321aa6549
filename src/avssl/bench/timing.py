"""The timing loop shared by the training benchmarks: warm-up steps, then timed steps, CUDA synchronised."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, ContextManager

import torch


def autocast_for(device: torch.device, precision: str) -> ContextManager:
    """bf16 autocast on `device` for precision "bf16", else a context that changes nothing."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def timed_steps(step: Callable[[], None], warmup: int, steps: int, device: torch.device) -> float:
    """Seconds that `steps` calls of `step` take after `warmup` untimed ones (CUDA synchronised)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return time.perf_counter() - start
