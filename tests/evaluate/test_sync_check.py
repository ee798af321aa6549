"""avssl sync-check: the offset search on oracle embeddings (sign, confidence), the verb's JSON and
PNG on demo-world files, and bad input (no audio, corrupt, another architecture's checkpoint)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avssl import cli
from avssl.config.schema import config_to_dict
from avssl.errors import UsageError
from avssl.evaluate.av_model import load_av_model
from avssl.evaluate.model_loading import build_random
from avssl.evaluate.sync_check import (
    aggregate,
    estimate_offset,
    grid_count,
    offset_steps,
    output_names,
    score_matrix,
    score_noise,
)
from avssl.media import write_media
from avssl.config.bundled import resolve_config_path
from avssl.methods.configs import load_config

FPS = 25.0


@pytest.fixture(autouse=True)
def verbs(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "sync-check", ("sync_check", "estimate audio-video offsets"))


def oracle_offset(shift_frames: int, kind: str = "cosine", max_offset: float = 2.0):
    """The search on embeddings where what is seen at frame t is heard at frame t + shift_frames."""
    torch.manual_seed(0)
    n = 200
    content = F.normalize(torch.randn(n + 200, 16), dim=1)  # one random unit vector per moment
    video_frames = np.arange(0, 150, 5)
    video = content[video_frames + 100]
    audio = content[np.arange(n) - shift_frames + 100]  # audio window j holds the moment j - shift
    steps = offset_steps(max_offset, FPS)
    scores, counts = aggregate(score_matrix(video, audio, video_frames, steps, kind))
    best, confidence, rival = estimate_offset(steps / FPS, scores, exclusion=1.0)
    return steps[best], confidence, counts


@pytest.mark.parametrize("shift", [7, -11, 0, 45])
@pytest.mark.parametrize("kind", ["cosine", "neg_distance"])
def test_oracle_embeddings_give_the_shift_with_audio_late_positive(shift, kind):
    frames, confidence, _ = oracle_offset(shift, kind)
    assert frames == shift
    assert confidence > 3


def test_offsets_off_the_audio_grid_are_left_out_of_the_mean():
    _, _, counts = oracle_offset(0)
    steps = offset_steps(2.0, FPS)
    # video windows start on frames 0..145; audio windows exist on frames 0..199
    expected = [int(((np.arange(0, 150, 5) + k >= 0) & (np.arange(0, 150, 5) + k < 200)).sum()) for k in steps]
    assert counts.tolist() == expected
    assert counts[0] < counts[len(steps) // 2]


def test_confidence_is_the_margin_over_the_best_distant_offset_in_units_of_jitter():
    offsets = np.arange(-10, 11) / 10.0
    scores = 0.01 * np.resize([1.0, -1.0], 21)  # jitter: neighbours differ by 0.02
    scores[10], scores[11], scores[2] = 1.0, 0.9, 0.4  # peak at 0, its neighbour, a distant rival at -0.8
    scores[0] = np.nan
    best, confidence, rival = estimate_offset(offsets, scores, exclusion=0.5)
    assert offsets[best] == 0.0 and offsets[rival] == pytest.approx(-0.8)
    assert score_noise(scores) == pytest.approx(1.4826 * 0.02 / np.sqrt(2))
    assert confidence == pytest.approx(0.6 / score_noise(scores))
    # a smooth trend over the range does not make the jitter larger
    trend = scores + np.linspace(0, 0.1, 21)
    assert score_noise(trend) == pytest.approx(score_noise(scores), rel=0.3)
    assert estimate_offset(offsets, np.ones(21), exclusion=0.5)[1] == 0.0
    assert estimate_offset(offsets, scores, exclusion=5.0)[1:] == (math.inf, None)


def test_grid_and_steps():
    assert offset_steps(2.0, 25).tolist() == list(range(-50, 51))
    assert len(offset_steps(1.0, 29.97)) == 2 * 29 + 1
    assert grid_count(4.0, 25, 1.0) == 76  # starts 0 .. 3.0 s
    assert grid_count(0.5, 25, 1.0) == 0
    assert output_names(["a/x.mp4", "b/x.mp4", "y.mov"]) == ["x", "x-2", "y"]


@pytest.fixture(scope="module")
def clip(tiny_world):
    return str(tiny_world / "clips" / "clip_0000.mp4")


def test_cli_writes_json_and_png_per_file(clip, tmp_path, capsys):
    out = tmp_path / "sync"
    code = cli.main(["sync-check", clip, "--model", "random:avts-tiny", "--out", str(out), "--max-offset", "1.0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "clip_0000.mp4: offset" in printed and "confidence" in printed
    result = json.loads((out / "clip_0000.json").read_text())
    assert (out / "clip_0000.png").stat().st_size > 1000
    offsets = np.array(result["offsets_seconds"])
    assert len(offsets) == 51 and offsets[0] == pytest.approx(-1.0) and offsets[-1] == pytest.approx(1.0)
    assert np.allclose(np.diff(offsets), 1 / FPS)
    scores = np.array([np.nan if s is None else s for s in result["scores"]])
    assert len(scores) == len(offsets) == len(result["windows"])
    assert result["offset_seconds"] == pytest.approx(offsets[np.nanargmax(scores)])
    assert result["offset_frames"] == round(result["offset_seconds"] * FPS)
    assert result["score"] == "neg_distance" and np.all(scores[np.isfinite(scores)] <= 0)
    assert result["confidence"] >= 0 and result["confident"] == (result["confidence"] >= 10.0)
    # a 4 s clip with 1 s windows every 0.2 s: 16 windows in sync, fewer at the edges of the range
    assert result["windows"][25] == 16 and result["windows"][0] < 16


def test_not_confident_is_said_plainly(clip, capsys):
    code = cli.main(["sync-check", clip, "--model", "random:avts-tiny", "--threshold", "1e9"])
    assert code == 0
    assert "NOT CONFIDENT" in capsys.readouterr().out


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, clip):
    folder = tmp_path_factory.mktemp("bad")
    silent = str(folder / "silent.mp4")
    write_media(silent, np.zeros((50, 64, 64, 3), np.uint8), fps=25)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(open(clip, "rb").read()[:3000])
    return silent, str(corrupt)


def test_bad_files_are_reported_by_name_and_skipped(clip, bad_files, tmp_path, capsys):
    silent, corrupt = bad_files
    out = tmp_path / "out"
    assert cli.main(["sync-check", silent, clip, corrupt, "--model", "random:avts-tiny", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "silent.mp4" in captured.err and "no audio" in captured.err
    assert "corrupt.mp4" in captured.err and "2 of 3" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["clip_0000.json", "clip_0000.png"]
    assert cli.main(["sync-check", silent, clip, "--model", "random:avts-tiny", "--strict"]) == 1
    assert cli.main(["sync-check", corrupt, "--model", "random:avts-tiny"]) == 1


def test_a_checkpoint_of_another_architecture_is_a_usage_error_naming_it(clip, tmp_path, capsys):
    avts = load_config(resolve_config_path("avts-tiny"))
    nce_weights = build_random(load_config(resolve_config_path("av-nce-tiny"))).state_dict()  # embed_dim 32, avts-tiny has 64
    ckpt = tmp_path / "mixed.ckpt"
    torch.save({"avssl_config": config_to_dict(avts), "state_dict": nce_weights}, ckpt)
    with pytest.raises(UsageError, match="mixed.ckpt.*(architecture|missing)"):
        load_av_model(str(ckpt))
    assert cli.main(["sync-check", clip, "--model", str(ckpt)]) == 2
    assert "mixed.ckpt" in capsys.readouterr().err
    not_a_checkpoint = tmp_path / "notes.ckpt"
    not_a_checkpoint.write_text("hello")
    assert cli.main(["sync-check", clip, "--model", str(not_a_checkpoint)]) == 2
    assert "notes.ckpt" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--max-offset", "0"), ("--hop", "-1"), ("--batch-size", "0")])
def test_bad_options_exit_2_naming_them(clip, option, value, capsys):
    assert cli.main(["sync-check", clip, "--model", "random:avts-tiny", option, value]) == 2
    assert option in capsys.readouterr().err


def test_audio_windows_are_read_a_batch_span_at_a_time(tmp_path):
    """The windows are the slices of one read of the whole track (on lossless PCM audio, exactly),
    but no read holds more than one batch's span: a long film's track never sits in memory."""
    from avssl.data.clip_io import read_audio_clip
    from avssl.evaluate.sync_check import audio_windows
    from avssl.media import MediaReader

    rate, fps = 16000, 25.0
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 6 * rate).astype(np.float32)
    path = write_media(tmp_path / "pcm.avi", np.zeros((150, 32, 32, 3), np.uint8), fps, audio, rate)
    clip = load_config(resolve_config_path("avts-tiny")).data.clip
    with MediaReader(path) as reader:
        duration = float(reader.info.duration)
        count = grid_count(duration, fps, clip.audio_window)
        track = torch.cat([read_audio_clip(reader, 0.0, duration, rate), torch.zeros(rate)])
        reads = []
        original = reader.read_audio
        reader.read_audio = lambda start, seconds, **kw: reads.append(seconds) or original(start, seconds, **kw)
        windows = torch.cat(list(audio_windows(reader, duration, fps, count, clip, batch_size=8)))
    expected = torch.stack([track[int(round(j / fps * rate)):][:rate] for j in range(count)])
    assert windows.shape == (count, rate) and torch.equal(windows, expected)
    assert len(reads) == math.ceil(count / 8) and max(reads) <= 7 / fps + clip.audio_window + 1e-9
