"""A projection head that collapses, caught while it trains.

A head whose hidden units have all died gives its bias, the same vector, for most inputs: the loss
can still move, but the joint space holds nothing. Such rows repeat each other exactly (a spread
statistic does not show it: in the letters run that collapsed, the batch spread of the video
embeddings was as high as a healthy AVTS's, docs/benchmarks.md), so what is counted is the share of
a batch's rows that repeat another row exactly. Every method logs it as `train/repeated_<name>` and
warns once per run and name when half a batch or more repeats.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

REPEATED_WARN_SHARE = 0.5  # distinct clips give distinct float vectors: half a batch equal is a collapse


def repeated_share(rows: torch.Tensor) -> float:
    """The share of the rows of `rows` [B, ...] that equal an earlier row exactly (0 for distinct rows,
    (B - 1) / B when all are one vector)."""
    if len(rows) == 0:
        return 0.0
    flat = rows.detach().flatten(1)
    return 1.0 - torch.unique(flat, dim=0).shape[0] / len(flat)


class CollapseWatch:
    """Warns once per name when a batch's repeated share reaches REPEATED_WARN_SHARE."""

    def __init__(self) -> None:
        self.warned: set[str] = set()

    def check(self, name: str, rows: torch.Tensor, step: int) -> float:
        share = repeated_share(rows)
        if share >= REPEATED_WARN_SHARE and name not in self.warned and len(rows) >= 4:
            self.warned.add(name)
            log.warning("step %d: %.0f %% of the batch's %s embeddings repeat another row exactly: the %s "
                        "projection head has collapsed onto a few vectors (dead units) and its joint space "
                        "carries nothing (train/repeated_%s in metrics.csv follows it)",
                        step, 100 * share, name, name, name)
        return share
