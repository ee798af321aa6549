"""How many samples each file gives per epoch: a long file counts by its length, up to a cap."""

from __future__ import annotations

import numpy as np

from avssl.data.sampling.clips import as_durations


def samples_per_file(durations: np.ndarray, seconds: float, cap: int) -> np.ndarray:
    """int64 [N]: round(duration / seconds) samples per file, at least 1, at most `cap`.

    durations: float seconds [N] (the files the method can use). Halves round up (15 s at 10 s per
    sample gives 2), so the counts follow the durations as closely as whole samples allow.
    """
    if not (np.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds per sample must be a finite number > 0, got {seconds!r}")
    if int(cap) != cap or cap < 1:
        raise ValueError(f"the cap of samples per file must be an integer >= 1, got {cap!r}")
    ratio = as_durations(durations) / float(seconds)
    counts = np.floor(ratio + 0.5 + 1e-9)  # round half up; the epsilon absorbs 1.5 stored as 1.4999...
    return np.clip(counts, 1, int(cap)).astype(np.int64)


def as_counts(counts: np.ndarray | None, length: int) -> np.ndarray:
    """Validate per-file sample counts: int64 [length], every entry >= 1 (None: one sample each)."""
    if counts is None:
        return np.ones(length, dtype=np.int64)
    array = np.asarray(counts)
    if array.shape != (length,):
        raise ValueError(f"counts must have shape ({length},), one per file, got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer) or (array < 1).any():
        raise ValueError("counts must be integers >= 1 (every file gives at least one sample per epoch)")
    return array.astype(np.int64)
