"""Suite-wide test settings and shared fixtures."""

from __future__ import annotations

import pytest
import torch

# One intra-op thread: the suite starts DataLoader workers and DDP processes beside the main one,
# and on a 2-core machine more threads than cores made small-model steps many times slower.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """The tiny demo world (real mp4/wav files with labelled sets), generated once per test session."""
    from avssl.data.synthetic import generate_world, preset

    root = tmp_path_factory.mktemp("tiny_world")
    generate_world(root, preset("tiny", seed=0), scale="tiny", workers=2, progress=False)
    return root
