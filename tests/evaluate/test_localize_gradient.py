"""`avssl localize --map gradient`: the sync margin against a hand computation, the shifted windows
that stay inside the file, a map that lies only where the model looks, batches that do not mix
windows, and the verb's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avssl import cli
from avssl.evaluate.av_model import load_av_model
from avssl.evaluate.localize import localize_file
from avssl.evaluate.localize_gradient import gradient_maps, shifted_starts, sync_margins
from localize_support import MotionSensor


@pytest.fixture(autouse=True)
def verbs(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "localize", ("localize", "sound-source heatmaps"))


@pytest.fixture(scope="module")
def clip(tiny_world):
    return str(tiny_world / "clips" / "clip_0001.mp4")


def test_shifted_windows_are_half_a_window_away_and_inside_the_file():
    assert shifted_starts(0.0, 1.0, 10.0) == [0.5]
    assert shifted_starts(5.0, 1.0, 10.0) == [4.5, 5.5]
    assert shifted_starts(9.0, 1.0, 10.0) == [8.5]
    assert shifted_starts(0.0, 1.0, 1.2) == []


def test_sync_margin_is_the_own_score_minus_the_mean_shifted_score():
    video = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=1)
    own = F.normalize(torch.tensor([[0.8, 0.6], [0.0, 1.0]]), dim=1)
    shifted = [F.normalize(torch.tensor([[0.0, 1.0], [-1.0, 0.0]]), dim=1), torch.zeros(0, 2)]
    cosine = sync_margins(video, own, shifted, "cosine")
    # row 0: 0.8 - mean(0, -1); row 1 has no shifted window: its own score, 0.8
    assert cosine.tolist() == pytest.approx([0.8 + 0.5, 0.8])
    distance = sync_margins(video, own, shifted, "neg_distance")
    d_own = ((1 - 0.8) ** 2 + 0.6 ** 2) ** 0.5
    d_shifted = (2 ** 0.5 + 2.0) / 2  # |(1,0)-(0,1)|, |(1,0)-(-1,0)|
    assert distance.tolist() == pytest.approx([d_shifted - d_own, -(0.6 ** 2 + 0.2 ** 2) ** 0.5])


def test_gradient_map_lies_where_the_model_reads_the_pixels_and_nowhere_else():
    clip = torch.zeros(2, 3, 8, 24, 32, dtype=torch.uint8)
    clip[:, :, ::2, 14:18, 20:24] = 200  # a flashing square the model reads
    clip[:, :, 1::2, 2:6, 2:6] = 200  # another one it ignores
    method = MotionSensor((12, 20, 18, 26))
    own = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    shifted = [torch.tensor([[0.0, 1.0]]), torch.zeros(0, 2)]
    maps = gradient_maps(method, clip, own, shifted, "cosine")
    assert maps.shape == (2, 24, 32)
    outside = torch.ones(24, 32, dtype=torch.bool)
    outside[12:20, 18:26] = False
    assert maps[:, outside].abs().max() == 0 and (maps[:, ~outside].amax(dim=1) > 0).all()
    for window in maps:
        row, col = np.unravel_index(int(window.argmax()), window.shape)
        assert 14 <= row < 18 and 20 <= col < 24


def test_windows_of_one_batch_do_not_mix(clip):
    loaded = load_av_model("random:avts-tiny")
    together = localize_file(loaded, clip, stride=0.5, batch_size=7, mode="gradient").maps
    one_by_one = localize_file(loaded, clip, stride=0.5, batch_size=1, mode="gradient").maps
    assert together.shape == (7, 96, 128)
    # float noise only: an untrained model scores its own and the shifted audio almost alike, so the
    # margin's gradient is a small difference of two large ones (about 1 % of the map's top value here);
    # windows that shared batch statistics would differ by the whole map
    assert np.abs(together - one_by_one).max() < 0.05 * together.max()


def test_cli_gradient_maps(clip, tmp_path, capsys):
    out = tmp_path / "grad"
    assert cli.main(["localize", clip, "--model", "random:avts-tiny", "--out", str(out), "--map", "gradient"]) == 0
    assert "input gradients over 37x49 frames" in capsys.readouterr().out
    saved = np.load(out / "maps.npz")
    assert saved["maps"].shape == (4, 96, 128) and str(saved["mode"]) == "gradient"
    assert tuple(saved["input_size"]) == (37, 49)
    assert np.isfinite(saved["maps"]).all() and saved["maps"].min() >= 0 and saved["maps"].std() > 0
    assert cli.main(["localize", clip, "--model", "random:avts-tiny", "--out", str(tmp_path / "o"), "--map", "gradient",
                     "--patch", "8"]) == 2
    assert "--patch applies to --map occlusion or occlusion-contrast, not --map gradient" in capsys.readouterr().err
