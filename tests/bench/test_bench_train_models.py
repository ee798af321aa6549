"""`avssl bench train`: the model builder and the timed loop on a tiny input."""

from __future__ import annotations

import json

import pytest

from avssl.bench.train import build_bench_model
from avssl.cli import main
from avssl.models import build_video_encoder


def test_bench_model_shapes() -> None:
    model, make_input = build_bench_model("resnet18_audio-tiny", frames=4, size=32, mel_bins=40, mel_frames=30)
    assert make_input(2).shape == (2, 1, 40, 30)
    assert model(make_input(2)).shape == (2, 400)
    _, make_video = build_bench_model("mc3_18-tiny", frames=4, size=32, mel_bins=40, mel_frames=30)
    assert make_video(3).shape == (3, 3, 4, 32, 32)


def test_cli_reports_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "train", "--model", "r2plus1d_18-tiny", "--frames", "4", "--size", "32", "--batch", "2",
                 "--steps", "1", "--warmup", "0", "--precision", "bf16", "--channels-last"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clips_per_s"] > 0 and result["input_shape"] == [3, 4, 32, 32]
    trunk = sum(p.numel() for p in build_video_encoder("r2plus1d_18-tiny").parameters())
    assert result["parameters"] == trunk + 128 * 400 + 400  # tiny trunk (128-d) + 400-class head
    assert main(["bench", "train", "--model", "r2plus1d_18-tiny", "--batch", "0"]) == 2
