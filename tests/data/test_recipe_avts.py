"""The AVTS recipe on decoded media: every sample's video, in-sync audio and hard-negative audio are
found in the file by their content (frame codes, exact PCM samples), and every hard negative's real
offset from the video clip actually used keeps the configured gap."""

from __future__ import annotations

import numpy as np
import pytest

from avssl.config.bundled import BUNDLED_CONFIGS
from avssl.data.dataset import ClipDataset, FileTable, SampleKey
from avssl.data.probing import build_manifest, probe_paths
from avssl.data.synthetic.framecode import coded_frames, decode_frame_index
from avssl.media import read_audio
from avssl.media.writer import write_media
from avssl.methods.configs import load_config

FPS, RATE, SIDE = 25, 16000, 96
LONG, SHORT = 8.0, 2.6


def position(needle: np.ndarray, haystack: np.ndarray) -> int:
    """Where `needle` starts in `haystack` (cross-correlation peak; the noise is unique everywhere)."""
    n = len(haystack) + len(needle)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(haystack, size) * np.conj(np.fft.rfft(needle, size)), size)
    return int(np.argmax(corr[: len(haystack) - len(needle) + 1]))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("avts_recipe")
    rng = np.random.default_rng(0)
    paths = []
    for i, seconds in enumerate((LONG, LONG, SHORT)):
        path = str(root / f"coded{i}.avi")  # MJPEG + PCM: samples come back exactly
        frames = coded_frames(int(seconds * FPS), SIDE, SIDE)
        audio = (rng.standard_normal(int(seconds * RATE)) * 0.2).clip(-0.9, 0.9).astype(np.float32)
        write_media(path, frames, FPS, audio, RATE, fmt="avi")
        paths.append(path)
    return paths


def recipe_dataset(files, *overrides):
    config = load_config(BUNDLED_CONFIGS / "avts-tiny.yaml", [
        "data.video_augment.size=64", "data.video_augment.crop_scale=[1.0,1.0]",
        "data.video_augment.crop_ratio=[1.0,1.0]", "data.video_augment.flip_p=0.0", *overrides])
    table = FileTable.from_manifest(build_manifest(files, probe_paths(files, workers=0, progress=False)))
    from avssl.methods.registry import method_class

    return ClipDataset(table, method_class("avts")(config).recipe(table), seed=0), config


@pytest.mark.parametrize("overlap", [False, True])
def test_every_hard_negative_is_where_the_config_says(files, overlap):
    dataset, config = recipe_dataset(files, f"method.hard_overlap={str(overlap).lower()}")
    window, gap = config.data.clip.audio_window, config.method.params.min_offset
    least = gap if overlap else window + gap
    tracks = [read_audio(p, 0.0, s, RATE).numpy() for p, s in zip(files, (LONG, LONG, SHORT))]
    offsets, short_without = [], 0
    for epoch in range(12):
        for index in range(3):
            sample = dataset[SampleKey(index, epoch)]
            first_frame = sample["video"][:, 0].permute(1, 2, 0).numpy()
            video_start = decode_frame_index(first_frame) / FPS  # the frame shown at the clip's start
            assert abs(video_start - float(sample["video_start"])) < 1 / FPS + 1e-9
            in_sync = position(sample["audio"].numpy(), tracks[index]) / RATE
            assert abs(in_sync - float(sample["video_start"])) < 1 / RATE  # same clock as the video
            if not bool(sample["has_hard"]):
                assert index == 2 and not sample["audio_hard"].any()
                short_without += 1
                continue
            hard = position(sample["audio_hard"].numpy(), tracks[index]) / RATE
            assert abs(hard - float(sample["audio_hard_start"])) < 1 / RATE
            offset = hard - in_sync
            assert abs(offset) >= least - 1 / RATE, f"file {index} epoch {epoch}: offset {offset:.4f} s"
            assert 0 <= hard and hard + window <= (LONG, LONG, SHORT)[index] + 1e-6
            offsets.append(offset)
    offsets = np.asarray(offsets)
    assert (offsets < 0).any() and (offsets > 0).any()  # earlier and later audio both occur
    if overlap:
        assert (np.abs(offsets) < window).any()  # overlapping windows are allowed, and drawn
    else:
        assert short_without > 0  # the short file has windows too near both ends for a 1.5 s shift


def test_max_offset_below_the_gap_is_refused():
    from avssl.config.typed import ConfigError
    from avssl.methods.registry import method_class

    config = load_config(BUNDLED_CONFIGS / "avts-tiny.yaml", ["method.max_offset=1.0"])
    with pytest.raises(ConfigError, match="method.max_offset"):
        method_class("avts")(config)
