"""A momentum (exponential moving average) copy of a module: MoCo's key encoder."""

from __future__ import annotations

import copy

import torch
from torch import nn


class MomentumEncoder(nn.Module):
    """A copy of `online` whose weights follow it slowly: after each update,
    theta_key <- momentum * theta_key + (1 - momentum) * theta_online; buffers (batch-norm statistics)
    are copied. It never takes a gradient. Keys from it change little from step to step, so keys
    computed at different steps (a queue) stay comparable (He et al., MoCo, 2020)."""

    def __init__(self, online: nn.Module, momentum: float) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.module = copy.deepcopy(online)
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, online: nn.Module) -> None:
        """Move the copy towards `online` (same architecture)."""
        for key, value in zip(self.module.parameters(), online.parameters()):
            key.mul_(self.momentum).add_(value.detach(), alpha=1.0 - self.momentum)
        for key, value in zip(self.module.buffers(), online.buffers()):
            key.copy_(value)

    @torch.no_grad()
    def forward(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - the wrapped module's signature
        return self.module(*args, **kwargs)
