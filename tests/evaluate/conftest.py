"""Shared helpers for the evaluation tests: random features with a class signal."""

from __future__ import annotations

import numpy as np
import pytest


def clustered(labels, dim=16, spread=1.0, seed=0):
    """float32 [N, dim]: one random centre per label plus unit Gaussian noise times `spread`."""
    rng = np.random.default_rng(seed)
    names = sorted(set(labels))
    centres = {name: rng.normal(0, 1.5, dim) for name in names}
    return np.stack([centres[v] + spread * rng.normal(0, 1, dim) for v in labels]).astype(np.float32)


@pytest.fixture
def make_clustered():
    return clustered
