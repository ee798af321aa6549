"""`avssl bench loader`: the windows it records are the recipe's reads, the floor replays them, the
figures and the memory trace have the documented shape."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

from avssl.bench import loader as bench
from avssl.bench import loader_floor as floor
from avssl.bench import loader_memory as memory
from avssl.bench import loader_setup as setup
from avssl.cli import main
from avssl.media import MediaReader


def _args(**overrides) -> argparse.Namespace:
    values = dict(frames=8, size=32, batch=2, repeats=1, seed=0, workers=[0, 1], batches=2, samples=12, memory_workers=1,
                  cache_dir=None, repeat=2, data=["demo"], recipes=["avts"], with_cache=False, memory=False)
    return argparse.Namespace(**{**values, **overrides})


@pytest.fixture(scope="module")
def table(tiny_world):
    clips = sorted(str(p) for p in (tiny_world / "clips").glob("*.mp4"))
    assert len(clips) == 3
    return setup.make_table(clips * 2)  # 6 rows: 3 batches of 2 per epoch


def test_recording_captures_each_read_and_one_open_per_sample(table):
    args = _args()
    loader = setup.make_loader("avts", table, args, workers=0)
    figures, recorder = bench.recorded_run(loader, count=2)
    assert figures["samples"] == 4
    # warm-up batch + 2 timed batches of 2 samples, each opening its file once
    assert len(recorder.opens) == 6
    for path, windows, _ in recorder.opens:
        kinds = sorted(w[0] for w in windows)
        assert kinds == ["audio", "audio", "video"]  # AVTS: clip, sync audio, hard-negative audio
        video = next(w for w in windows if w[0] == "video")
        assert video[2] == pytest.approx(1.0) and video[3] == 8.0 and video[4] == 37  # 8 frames at 8 fps, 32/0.875
    stats = floor.read_stats(recorder, warmup_samples=2)
    assert stats["opens"] == 4 and stats["video_reads_per_open"] == 1.0 and stats["audio_reads_per_open"] == 2.0
    # 25 fps files read at 8 fps: at least 25/8 frames decoded per frame returned, but far from the
    # whole 4 s file (100 frames) per 8-frame clip
    assert 25 / 8 <= stats["video_frames_decoded_per_returned"] < 8


def test_replay_reads_the_same_frames_the_recipe_decoded(table):
    loader = setup.make_loader("avts", table, _args(), workers=0)
    _, recorder = bench.recorded_run(loader, count=1)
    path, windows, _ = recorder.opens[0]
    kind, start, duration, fps, size = next(w for w in windows if w[0] == "video")
    with MediaReader(path) as reader:
        frames = reader.read_video(start, duration, fps=fps, size=size)
    assert frames.shape[:2] == (8, 37)
    assert floor.replay([(path, windows)]) > 0
    assert floor.floor_ms_per_sample([(path, windows)] * 4, processes=2) > 0


def test_bench_recipe_reports_pipeline_floor_and_overhead(table):
    out = bench.bench_recipe("avts", table, _args(), clip_cache=None)
    assert set(out["pipeline"]) == {"0", "1"} and set(out["floor"]) == {"1"}
    for workers in ("0", "1"):
        pipe = out["pipeline"][workers]
        assert pipe["samples"] == 4 and pipe["samples_per_s"] > 0
        expected = 100 * (pipe["ms_per_sample"] / out["floor"]["1"]["ms_per_sample"] - 1)
        assert out["overhead_pct"][workers] == pytest.approx(expected, abs=0.2)


def test_cached_run_serves_every_clip_from_the_cache(table, tmp_path):
    out = bench.bench_cached("avts", table, _args(workers=[0]), str(tmp_path / "clips"))
    served = out["reads"]["served"]
    assert served["video_decode"] == 0 and served["audio_decode"] == 0
    assert served["video_cache"] == 4 and served["audio_cache"] == 8


def test_memory_run_traces_main_and_worker_rss(table):
    out = memory.memory_run("avts", table, _args(samples=12), clip_cache=None)
    assert out["samples"] >= 12 and out["workers"] == 1
    assert len(out["end"]["workers_mb"]) == 1 and out["end"]["workers_mb"][0] > 10
    assert out["end"]["total_mb"] == pytest.approx(out["end"]["main_mb"] + out["end"]["workers_mb"][0], abs=0.2)
    assert out["growth_mb_total"] == pytest.approx(out["end"]["total_mb"] - out["baseline"]["total_mb"], abs=0.2)


def test_rss_reads_this_process():
    with open(f"/proc/{os.getpid()}/status") as f:
        vm = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    assert memory.rss_mb(os.getpid()) == pytest.approx(vm, rel=0.2)
    big = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MB touched
    assert memory.rss_mb(os.getpid()) > vm + 40
    del big


def test_cli_lists_the_loader_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "loader", "--help"])
    assert exit_.value.code == 0
    assert "decode floor" in capsys.readouterr().out
