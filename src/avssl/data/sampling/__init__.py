"""Clip sampling: which windows of which files make a sample, deterministic from (seed, epoch, index).

windows: window spec and draws inside one file; clips: per-video sampler (sync pairs, hard
negatives); per_file: how many samples a file gives per epoch (by its length); distributed: DDP
index sampler with mid-epoch resume; hierarchical: movies-then-clips batch sampler for long-form
content.
"""

from avssl.data.sampling.clips import ClipSampler
from avssl.data.sampling.distributed import ResumableDistributedSampler
from avssl.data.sampling.hierarchical import (
    BatchPlan,
    HierarchicalBatchSampler,
    plan_batch,
)
from avssl.data.sampling.per_file import samples_per_file
from avssl.data.sampling.windows import (
    ClipPair,
    WindowSpec,
    evenly_spaced_starts,
    grid_draw,
    hard_audio_fits,
    hard_audio_start,
    rng_for,
    sync_start,
    window_capacities,
    window_capacity,
    window_starts,
)

__all__ = [
    "BatchPlan",
    "ClipPair",
    "ClipSampler",
    "HierarchicalBatchSampler",
    "ResumableDistributedSampler",
    "WindowSpec",
    "evenly_spaced_starts",
    "grid_draw",
    "hard_audio_fits",
    "hard_audio_start",
    "plan_batch",
    "rng_for",
    "samples_per_file",
    "sync_start",
    "window_capacities",
    "window_capacity",
    "window_starts",
]
