"""Per-window embedding of a file (avssl.evaluate.windows): window starts on the frame grid, the
windows' clips equal the evaluation clips read one by one, long windows average their clips, and
memory stays flat on a long file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.errors import UsageError
from avssl.evaluate.pretrained import PretrainedModel
from avssl.evaluate.windows import plan_windows, read_video_clips
from avssl.media import MediaReader, NoAudioStreamError
from use_support import tiny_config, write_av, write_long_av


@pytest.fixture(scope="module")
def model():
    config = tiny_config()
    from avssl.evaluate.model_loading import build_random

    return PretrainedModel(build_random(config).eval(), config, "random:test", random_init=True)


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    return write_av(tmp_path_factory.mktemp("windows") / "a.mp4", 3.2, fps=25.0)


def test_window_starts_are_multiples_of_the_stride_on_the_frame_grid():
    config = tiny_config()  # clip: 4 frames at 8 fps = 0.5 s
    plan = plan_windows(config, "video")
    assert (plan.window, plan.stride_frames, plan.clip_offsets) == (0.5, 4, (0,))
    assert plan.starts(3.2).tolist() == [i * 0.5 for i in range(6)]  # floor((3.2 - 0.5) / 0.5) + 1
    plan = plan_windows(config, "video", window=1.0, stride=0.375)
    assert plan.clip_offsets == (0, 4)  # two clips of 0.5 s fill a 1 s window
    starts = plan.starts(3.2)
    assert starts.tolist() == [i * 3 / 8 for i in range(6)]  # floor((3.2 - 1.0) * 8 / 3) + 1
    assert plan_windows(config, "video").starts(0.3).tolist() == [0.0]  # shorter than a window: one at 0
    audio = tiny_config(overrides=("data.clip.audio_seconds=0.96",))
    plan = plan_windows(audio, "audio")  # 0.96 s is 7.68 frames at 8 fps: the stride rounds up to 8
    assert (plan.window, plan.stride) == (0.96, 1.0) and plan.starts(3.0).tolist() == [0.0, 1.0, 2.0]
    assert plan_windows(audio, "both").window == 1.0  # the longer of the 1 s video and 0.96 s audio clips
    for window, stride, option in ((0.25, None, "--window"), (1.0, 0.3, "--stride"), (None, 0.0, "--stride")):
        with pytest.raises(UsageError, match=option):
            plan_windows(config, "video", window=window, stride=stride)


def test_chunked_clips_equal_clips_read_one_by_one(clip_file):
    config = tiny_config()
    c, aug = config.data.clip, config.data.video_augment
    with MediaReader(clip_file) as reader:
        chunk = read_video_clips(reader, [0, 2, 4, 9, 20], config)
        single = [read_video_clip(reader, k / c.fps, c.frames, c.fps, aug, None) for k in (0, 2, 4, 9, 20)]
    assert chunk.dtype == torch.uint8 and chunk.shape == (5, 3, 4, 16, 16)
    for got, want in zip(chunk, single):
        assert torch.equal(got, want)


def test_file_windows_match_the_model_on_each_window(model, clip_file):
    emb = model.embed_video(clip_file, batch=4)
    c, aug = model.config.data.clip, model.config.data.video_augment
    assert emb.starts.tolist() == [i * 0.5 for i in range(6)] and emb.ends.tolist() == [i * 0.5 + 0.5 for i in range(6)]
    with MediaReader(clip_file) as reader:
        clips = torch.stack([read_video_clip(reader, s, c.frames, c.fps, aug, None) for s in emb.starts])
        waves = torch.stack([read_audio_clip(reader, s, c.audio_window, c.sample_rate) for s in emb.starts])
    np.testing.assert_allclose(emb.vectors, model.embed_video(clips).numpy(), atol=1e-5)
    audio = model.embed_audio(clip_file, space="joint")
    np.testing.assert_allclose(audio.vectors, model.embed_audio(waves, space="joint").numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(audio.vectors, axis=1), 1.0, atol=1e-5)
    assert (audio.space, audio.modality, emb.vectors.dtype) == ("joint", "audio", np.float32)


def test_a_long_window_averages_its_evenly_spread_clips(model, clip_file):
    emb = model.embed_video(clip_file, window=1.2, stride=1.0)
    assert emb.starts.tolist() == [0.0, 1.0, 2.0]
    offsets = [0, 2, 5]  # ceil(1.2 / 0.5) = 3 clips at j * 0.7 / 2 s floored to 1/8 s: 0, 0.25, 0.625
    assert plan_windows(model.config, "video", window=1.2, stride=1.0).clip_offsets == tuple(offsets)
    per_clip = model.embed_video(clip_file, stride=0.125)  # every grid frame is a clip start
    for row, start in enumerate(emb.starts):
        rows = [int(round(start * 8)) + o for o in offsets]
        np.testing.assert_allclose(emb.vectors[row], per_clip.vectors[rows].mean(axis=0), atol=1e-5)


def test_a_file_without_the_needed_stream_names_it(model, tmp_path):
    silent = write_av(tmp_path / "silent.mp4", 1.0, audio=False)
    with pytest.raises(NoAudioStreamError, match="silent.mp4"):
        model.embed_audio(silent)


MEMORY_SCRIPT = """
import json, resource, sys, torch
torch.set_num_threads(1)
from avssl.evaluate.model_loading import load_model
from avssl.evaluate.pretrained import PretrainedModel
loaded = load_model("random:avts-tiny", overrides=["data.video_augment.size=112"])
model = PretrainedModel(loaded.method, loaded.config, "random:avts-tiny", random_init=True)
peaks, rows = [], []
for path in sys.argv[1:]:
    emb = model.embed_video(path, batch=8)
    rows.append([len(emb), float(emb.starts[-1])])
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"peaks_mb": peaks, "rows": rows}))
"""


@pytest.mark.slow
def test_memory_stays_flat_on_a_long_file(tmp_path):
    short = write_long_av(tmp_path / "short.mp4", 12.0)
    long = write_long_av(tmp_path / "long.mp4", 150.0)
    # glibc raises its mmap threshold after a large block is freed, so later chunk-sized blocks come
    # from the heap and peak RSS creeps with fragmentation (±40 MB run to run); a fixed threshold
    # returns them on free, and peak RSS then measures the memory the embedding holds
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "262144"}
    done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, short, long], capture_output=True, text=True,
                          env=env, timeout=600, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    (short_rows, _), (long_rows, last_start) = result["rows"]
    assert short_rows == 12 and long_rows == 150 and last_start == 149.0  # 1 s clips (8 frames at 8 fps)
    growth = result["peaks_mb"][1] - result["peaks_mb"][0]
    # decoding the whole long file at once would hold its 1200 grid frames at 128x160 (70 MB as
    # uint8, four times that as float while resizing); window by window it stays near the short file's peak
    whole_file_mb = 150 * 8 * 128 * 160 * 3 / 2**20
    assert growth < 25, (growth, result)
    assert whole_file_mb > 2.5 * 25
