"""The torch device a verb runs on: `auto` is the best one available (CUDA, else Apple's MPS, else the
CPU), the choice pretraining's Lightning accelerator "auto" makes; a named device is checked here so
that a missing GPU is a usage error naming the option, not a CUDA traceback."""

from __future__ import annotations

import torch

from avssl.errors import UsageError

AUTO = "auto"
DEVICE_HELP = "auto (default: cuda when available, else mps, else cpu), cpu, cuda or cuda:N, mps"


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def best_device() -> str:
    """"cuda" when a CUDA device is visible, else "mps" when Apple's Metal backend is, else "cpu"."""
    if torch.cuda.is_available():
        return "cuda"
    if mps_available():
        return "mps"
    return "cpu"


def resolve_device(name: str | None, option: str = "--device") -> str:
    """`name` ("auto" or None: best_device()) as a device string this machine has; a UsageError naming
    `option` for an unknown device or one that is not available here."""
    if name is None or name == AUTO:
        return best_device()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"{option} {name}: not a torch device; use {DEVICE_HELP}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{option} {name}: CUDA is not available here (use {option} cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"{option} {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not mps_available():
        raise UsageError(f"{option} {name}: Apple's MPS backend is not available here (use {option} cpu or auto)")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"{option} {name}: unsupported device type {device.type!r}; use {DEVICE_HELP}")
    return str(device)
