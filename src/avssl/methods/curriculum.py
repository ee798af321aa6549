"""The AVTS curriculum: from easy negatives only to a mix with hard (same-video, shifted) negatives.

A pure function of the optimisation step, so a resumed run is on the same schedule without any
state to restore; `state_dict` still records where the schedule stands for the checkpoint's reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HardNegativeCurriculum:
    """Share of negatives that are hard at a step: 0 before `easy_steps`, then rising linearly over
    `ramp_steps` to `final_hard_share` (AVTS: about one hard negative for three easy ones, 0.25)."""

    easy_steps: int
    final_hard_share: float
    ramp_steps: int = 0

    def __post_init__(self) -> None:
        if self.easy_steps < 0 or self.ramp_steps < 0 or not 0 <= self.final_hard_share <= 1:
            raise ValueError(f"bad curriculum: {self}")

    def hard_share(self, step: int) -> float:
        if step < self.easy_steps:
            return 0.0
        if self.ramp_steps == 0:
            return self.final_hard_share
        progress = min(1.0, (step - self.easy_steps + 1) / self.ramp_steps)
        return self.final_hard_share * progress

    def state_dict(self, step: int) -> dict[str, Any]:
        return {"step": int(step), "hard_share": self.hard_share(step)}
