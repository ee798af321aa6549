"""The in-sync vs out-of-sync decisions against a hand computation, and the inputs the evaluation refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avssl.errors import UsageError
from avssl.evaluate.sync import SyncPairs, sync_accuracy, sync_decisions, sync_pairs


class PointMethod(torch.nn.Module):
    """Embeds a 'clip' as the 2-d point it holds, so every distance is known."""

    device = torch.device("cpu")

    def video_input(self, x, train=True):
        return x

    def audio_input(self, x, train=True):
        return x

    def embed_video(self, x):
        return x

    def embed_audio(self, x):
        return x


def test_decisions_against_hand_computation():
    # two files, one window each: rows 0, 1 from file 0, rows 2, 3 from file 1
    video = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [6.0, 5.0]])
    audio = torch.tensor([[0.0, 0.1], [1.0, 0.1], [15.0, 15.0], [9.0, 9.0]])
    shifted = torch.tensor([[1.0, 0.05], [20.0, 20.0]])  # the hard negatives of rows 1 and 3
    pairs = SyncPairs(video, audio, shifted, torch.tensor([0, 0, 1, 1]), np.zeros((4, 2)), windows_per_file=1)
    method = PointMethod().train()
    d = sync_decisions(method, pairs)
    # easy: row i's own audio vs row (i + 2) % 4's audio
    #   row 0: 0.1 vs |(0,0)-(15,15)| = 21.2 -> right;  row 1: 0.1 vs |(1,0)-(9,9)| = 12.0 -> right
    #   row 2: |(5,5)-(15,15)| = 14.1 vs |(5,5)-(0,0.1)| = 7.0 -> wrong;  row 3: 5.0 vs |(6,5)-(1,0.1)| = 7.0 -> right
    assert d["easy"].tolist() == [True, True, False, True]
    # hard: row 1: 0.1 vs |(1,0)-(1,0.05)| = 0.05 -> wrong;  row 3: 5.0 vs |(6,5)-(20,20)| = 20.5 -> right
    assert d["hard"].tolist() == [False, True]
    acc = sync_accuracy(method, pairs)
    assert acc == {"easy": 0.75, "hard": 0.5, "all": pytest.approx(4 / 6), "n_pairs": 6.0}
    assert method.training  # the mode is restored


def test_needs_two_files():
    from avssl.config.bundled import resolve_config_path
    from avssl.methods.configs import load_config

    config = load_config(resolve_config_path("avts-tiny"))
    with pytest.raises(UsageError, match="at least 2 files"):
        sync_pairs(["a.mp4"], [3.0], config)
    with pytest.raises(UsageError, match="too short .* short.mp4"):
        sync_pairs(["long.mp4", "short.mp4"], [3.0, 1.2], config)
