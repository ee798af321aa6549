"""What a sample reports and what training does with it: zeros standing in for missing audio and frames
repeated for missing video are counted per sample (direct and cached reads alike) and logged; a file
shorter than the clip where both streams exist, and a FIFO swapped in for a file, are left out or
skipped; the gain jitter is applied; files whose video would repeat frames at temporal-av's slowest
speed are left out before training."""

from __future__ import annotations

import numpy as np
import torch

from avssl.config.bundled import BUNDLED_CONFIGS
from avssl.data.cache import AudioCacheSpec, FramesCacheSpec, build_cache, cache_for_clip
from avssl.data.dataset import ClipDataset, FileTable, SampleKey, collate_samples, usable_table
from avssl.data.manifest import Manifest
from avssl.data.probing import build_manifest, probe_paths
from avssl.media.writer import write_media
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class

RATE = 16000


def short_audio_file(path, video_seconds=4.0, audio_seconds=2.0, fps=25):
    """A file whose audio stops halfway through its video."""
    frames = np.random.default_rng(0).integers(0, 255, (int(video_seconds * fps), 48, 64, 3), dtype=np.uint8)
    t = np.arange(int(audio_seconds * RATE)) / RATE
    write_media(str(path), frames, fps, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE)
    return str(path)


def short_video_file(path, video_seconds=2.0, audio_seconds=4.0, fps=25):
    """A file whose video stops halfway through its audio."""
    frames = np.random.default_rng(1).integers(0, 255, (int(video_seconds * fps), 48, 64, 3), dtype=np.uint8)
    t = np.arange(int(audio_seconds * RATE)) / RATE
    write_media(str(path), frames, fps, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE)
    return str(path)


def longest_stream_table(path):
    """The file's FileTable with the duration of its longer stream: the probe's duration is the span
    both streams cover, so only a table like this one asks for windows past the shorter stream."""
    table, _ = usable_table(build_manifest([path], probe_paths([path], workers=0, progress=False)))
    from avssl.media import probe

    info = probe(path)
    longer = max(info.video_start + info.video_duration, info.audio_start + info.audio_duration)
    assert table.durations[0] < longer - 1.0
    return FileTable(table.paths, np.array([longer]), table.has_audio, table.groups, table.video_fps)


def test_audio_padding_is_counted_per_sample_direct_and_cached(tmp_path):
    path = short_audio_file(tmp_path / "half.mp4")
    table = longest_stream_table(path)
    config = load_config(BUNDLED_CONFIGS / "av-nce-tiny.yaml")
    recipe = method_class("av-nce")(config).recipe(table)
    build_cache([path], str(tmp_path / "cache"), AudioCacheSpec(RATE))
    cache = cache_for_clip(str(tmp_path / "cache"), RATE, config.data.clip.fps, 37)
    direct, cached = ClipDataset(table, recipe, seed=0), ClipDataset(table, recipe, seed=0, cache=cache)
    padded = []
    for epoch in range(12):
        a, b = direct[SampleKey(0, epoch)], cached[SampleKey(0, epoch)]
        start = float(a["start"])
        # the window [start, start + 1) has no audio past 2 s (the last AAC frame runs up to 64 ms on)
        expected = min(1.0, max(0.0, start + 1.0 - 2.0)) * RATE
        assert expected - 0.07 * RATE <= int(a["audio_padded"]) <= expected
        assert int(b["audio_padded"]) == int(a["audio_padded"])
        if int(a["audio_padded"]):
            assert not a["audio"][-int(a["audio_padded"]):].any()
        padded.append(int(a["audio_padded"]))
    assert min(padded) == 0 and max(padded) > 0.5 * RATE  # windows inside and past the audio both drawn
    batch = collate_samples([direct[SampleKey(0, e)] for e in range(4)])
    assert batch["audio_padded"].shape == (4,) and batch["audio_padded"].dtype == torch.int64


def test_video_padding_is_counted_per_sample_direct_and_cached(tmp_path):
    # windows past the last frame repeat it: counted per sample in `video_padded`, never silently
    path = short_video_file(tmp_path / "half.mp4")
    table = longest_stream_table(path)
    config = load_config(BUNDLED_CONFIGS / "av-nce-tiny.yaml")
    clip = config.data.clip
    recipe = method_class("av-nce")(config).recipe(table)
    build_cache([path], str(tmp_path / "cache"), FramesCacheSpec(float(clip.fps), 37))
    cache = cache_for_clip(str(tmp_path / "cache"), RATE, clip.fps, 37)
    direct, cached = ClipDataset(table, recipe, seed=0), ClipDataset(table, recipe, seed=0, cache=cache)
    padded = []
    for epoch in range(12):
        a, b = direct[SampleKey(0, epoch)], cached[SampleKey(0, epoch)]
        start = float(a["start"])
        grid = start + np.arange(clip.frames) / clip.fps
        assert int(a["video_padded"]) == int(np.sum(grid >= 2.0 - 1e-6)), start
        assert int(b["video_padded"]) == int(a["video_padded"]) and int(a["audio_padded"]) == 0
        padded.append(int(a["video_padded"]))
    assert min(padded) == 0 and max(padded) > 0  # windows inside and past the video both drawn
    batch = collate_samples([direct[SampleKey(0, e)] for e in range(4)])
    assert batch["video_padded"].shape == (4,) and batch["video_padded"].dtype == torch.int64


def test_a_one_frame_video_with_a_second_of_audio_is_left_out(tmp_path):
    # its probe duration is the span with both streams (one frame, 0.04 s): shorter than any clip,
    # so it is listed as unfit rather than trained as copies of its frame
    from avssl.train.table import FileRequirements, unfit_rows

    path = write_media(str(tmp_path / "one.mp4"), np.zeros((1, 48, 64, 3), np.uint8), 25,
                       np.zeros(RATE, np.float32), RATE)
    manifest_path = tmp_path / "m.csv"
    build_manifest([path], probe_paths([path], workers=0, progress=False)).save(manifest_path)
    config = load_config(BUNDLED_CONFIGS / "av-nce-tiny.yaml")
    recipe = method_class("av-nce").recipe_class
    unfit = unfit_rows(Manifest.load(manifest_path), FileRequirements("both", recipe.min_file_duration(config)))
    assert list(unfit) == [0]


def test_padding_is_logged_by_the_trainer(tmp_path):
    from avssl.train.callbacks import PaddingReport

    logged = {}
    module = type("M", (), {"log": lambda self, name, value, **kw: logged.__setitem__(name, float(value))})()
    batch = {"audio_padded": torch.tensor([0, 8000, 0, 1600]), "video_padded": torch.tensor([0, 0, 3, 1])}
    PaddingReport(RATE).on_train_batch_start(None, module, batch, 0)
    assert logged["data/audio_padded"] == 2 and abs(logged["data/audio_padded_seconds"] - 0.6) < 1e-6
    assert logged["data/video_padded"] == 2 and logged["data/video_padded_frames"] == 4


def test_gain_jitter_scales_the_waveform_before_the_log_mel():
    overrides = ["data.audio_augment.gain_db=[6.0,6.0]", "data.audio_augment.num_freq_masks=0",
                 "data.audio_augment.num_time_masks=0", "data.logmel.top_db=null"]
    method = method_class("av-nce")(load_config(BUNDLED_CONFIGS / "av-nce-tiny.yaml", overrides))
    wave = 0.1 * torch.randn(2, RATE, generator=torch.Generator().manual_seed(0))
    trained, plain = method.audio_input(wave, train=True), method.audio_input(wave, train=False)
    torch.testing.assert_close(trained - plain, torch.full_like(plain, 6.0), atol=1e-3,
                               rtol=0)


def test_low_frame_rate_files_are_left_out_of_temporal_av(tmp_path):
    from avssl.train.table import FileRequirements, unfit_rows

    slow = tmp_path / "slow.mp4"
    frames = np.zeros((30, 48, 64, 3), dtype=np.uint8)
    write_media(str(slow), frames, 5, np.zeros(6 * RATE, dtype=np.float32), RATE)  # 6 s at 5 fps
    good = short_audio_file(tmp_path / "good.mp4", 6.0, 6.0, 25)
    manifest_path = tmp_path / "m.csv"
    build_manifest([str(slow), good], probe_paths([str(slow), good], workers=0, progress=False)).save(manifest_path)
    config = load_config(BUNDLED_CONFIGS / "temporal-av-tiny.yaml")
    recipe = method_class("temporal-av").recipe_class
    assert recipe.min_video_fps(config) == config.data.clip.fps
    unfit = unfit_rows(Manifest.load(manifest_path),
                       FileRequirements("both", recipe.min_file_duration(config), recipe.min_video_fps(config)))
    assert list(unfit) == [0] and "5.000 fps, below the 10.000 fps" in unfit[0][1]


def test_a_fifo_swapped_in_after_probing_is_reported_and_skipped(tmp_path):
    import os
    import threading

    paths = [short_audio_file(tmp_path / f"v{i}.mp4", 2.0, 2.0) for i in range(2)]
    table, _ = usable_table(build_manifest(paths, probe_paths(paths, workers=0, progress=False)))
    os.replace(paths[0], tmp_path / "moved.mp4")
    os.mkfifo(paths[0])  # opening it for reading would wait for a writer forever
    recipe = method_class("av-nce")(load_config(BUNDLED_CONFIGS / "av-nce-tiny.yaml")).recipe(table)
    out = {}
    thread = threading.Thread(target=lambda: out.update(sample=ClipDataset(table, recipe, seed=0)[SampleKey(0, 0)]),
                              daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        os.close(os.open(paths[0], os.O_WRONLY | os.O_NONBLOCK))
        raise AssertionError("reading a FIFO blocked the sample")
    sample = out["sample"]
    assert [f.path for f in sample["failures"]] == [paths[0]]
    assert "not a regular file" in sample["failures"][0].reason and sample["video"].shape[0] > 0
