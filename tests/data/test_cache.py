"""Pre-decoded audio and frames caches: the dataset's samples with and without them, fallbacks, CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from avssl.cli import main
from avssl.data.cache import (
    AudioCacheSpec,
    CachedReader,
    ClipCache,
    FramesCacheSpec,
    build_cache,
    cache_for_clip,
    spec_dir,
)
from avssl.data.clip_io import decode_short_side
from avssl.data.dataset import ClipDataset, SampleKey, one_thread, usable_table
from avssl.data.probing import build_manifest, probe_paths
from avssl.media import MediaReader
from avssl.media.writer import write_media
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "src", "avssl", "configs")
AUDIO_RATE = 48000  # resampled to 16 kHz by both paths
AUDIO_ATOL = 5e-5  # measured 1e-5: the AAC decoder's own start-to-start variation (see below)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Three 5 s mp4 files (80x60, 25 fps, 48 kHz AAC) with moving content and a tone sweep."""
    folder = tmp_path_factory.mktemp("cache_media")
    rng = np.random.default_rng(0)
    paths = []
    for k in range(3):
        t = np.arange(125)[:, None, None]
        y, x = np.mgrid[0:60, 0:80]
        frames = np.stack([(x + 3 * t + 40 * k) % 256, (y + 2 * t) % 256, (x + y + t) % 256], -1).astype(np.uint8)
        frames = np.clip(frames + rng.integers(0, 20, frames.shape), 0, 255).astype(np.uint8)
        s = np.arange(5 * AUDIO_RATE) / AUDIO_RATE
        audio = (0.3 * np.sin(2 * np.pi * (300 + 200 * k + 150 * s) * s)).astype(np.float32)
        path = folder / f"m{k}.mp4"
        write_media(str(path), frames, 25, audio, AUDIO_RATE, gop=25)
        paths.append(str(path))
    return paths


def _config(name: str, cache_dir: str | None = None):
    overrides = ["data.clip.frames=8", "data.video_augment.size=32", "data.num_workers=0"]
    if cache_dir:
        overrides.append(f"data.cache_dir={cache_dir}")
    return load_config(os.path.join(CONFIGS, f"{name}-tiny.yaml"), overrides)


def _table(paths):
    return usable_table(build_manifest(paths, probe_paths(paths, workers=0, progress=False)))[0]


def _build_for(config, paths, root) -> ClipCache:
    d = config.data
    short = decode_short_side(d.video_augment.size)
    for spec in (AudioCacheSpec(d.clip.sample_rate), FramesCacheSpec(d.clip.fps, short)):
        summary = build_cache(paths, str(root), spec)
        assert summary["failed"] == {}
    return cache_for_clip(str(root), d.clip.sample_rate, d.clip.fps, short)


@pytest.mark.parametrize("name", ["avts", "temporal-av"])
def test_cached_and_direct_samples_are_identical(media, tmp_path, name):
    config = _config(name)
    table = _table(media)
    cache = _build_for(config, media, tmp_path)
    recipe = method_class(name)(config).recipe(table)
    direct = ClipDataset(table, recipe, seed=3)
    cached = ClipDataset(table, recipe, seed=3, cache=cache)
    served = {"video_cache": 0, "audio_cache": 0, "video_decode": 0, "audio_decode": 0}
    opener = cached.open_reader

    def counting_opener(path):
        reader = opener(path)
        assert isinstance(reader, CachedReader)
        counting_opener.readers.append(reader)
        return reader

    counting_opener.readers = []
    cached.open_reader = counting_opener
    for epoch in range(2):
        for index in range(len(table)):
            key = SampleKey(index, epoch)
            a, b = direct[key], cached[key]
            assert a.keys() == b.keys()
            for field, value in a.items():
                if field.startswith("audio") and value.is_floating_point() and value.dim() > 0:
                    # FFmpeg's AAC decoder output differs by ~1e-5 with where decoding began (two
                    # direct reads of the same instant from other starts differ as much)
                    torch.testing.assert_close(value, b[field], atol=AUDIO_ATOL, rtol=0)
                    assert not torch.equal(value, torch.zeros_like(value))
                elif isinstance(value, torch.Tensor):
                    assert torch.equal(value, b[field]), f"{name} {key} {field} differs"
    for reader in counting_opener.readers:
        for k, v in reader.served.items():
            served[k] += v
    # every video clip came from the cache; audio at the clip rate too (temporal-av's sped-up audio
    # is read at rate / speed, which the 16 kHz cache does not hold, and is decoded)
    assert served["video_decode"] == 0 and served["video_cache"] > 0
    assert served["audio_cache"] > 0
    if name == "avts":
        assert served["audio_decode"] == 0


def test_cache_entries_hold_the_direct_reads(media, tmp_path):
    path = media[1]
    frames_spec, audio_spec = FramesCacheSpec(fps=12.5, short_side=40), AudioCacheSpec(16000)
    build_cache([path], str(tmp_path), frames_spec)
    build_cache([path], str(tmp_path), audio_spec)
    cache = ClipCache(str(tmp_path), audio_spec, frames_spec)
    with cache.open(path) as cached, MediaReader(path) as direct:
        assert direct.info.duration == pytest.approx(5.0, abs=0.05)
        frames = cached._frames
        assert frames.shape == (63, 40, 53, 3)  # grid points 0, 0.08, ..., 4.96 s; 60x80 -> 40x53
        # on the cached grid (start 1.6 s = row 20, every 2nd row at 6.25 fps): served from the cache
        clip = cached.read_video(1.6, 1.28, fps=6.25, size=40)
        assert torch.equal(clip, direct.read_video(1.6, 1.28, fps=6.25, size=40))
        assert torch.equal(clip, torch.from_numpy(np.array(frames[20:36:2])))
        # the last window repeats the last frame past the end, as a direct read does
        tail = cached.read_video(4.8, 0.48, fps=12.5, size=40)
        assert torch.equal(tail, direct.read_video(4.8, 0.48, fps=12.5, size=40))
        assert torch.equal(tail[-1], tail[2])
        assert cached.served["video_cache"] == 2 and cached.served["video_decode"] == 0
        # off the grid, another size: decoded from the file, same result as a direct read
        assert torch.equal(cached.read_video(1.61, 0.5, fps=12.5, size=40), direct.read_video(1.61, 0.5, fps=12.5, size=40))
        assert torch.equal(cached.read_video(1.6, 0.5, fps=12.5, size=30), direct.read_video(1.6, 0.5, fps=12.5, size=30))
        assert cached.served["video_decode"] == 2
        # audio: 0.75 s from 2.25 s is entry samples 36000..47999; past the end zeros as a direct read
        wave = cached.read_audio(2.25, 0.75)
        assert torch.equal(wave, torch.from_numpy(np.array(cached._audio[36000:48000])))
        torch.testing.assert_close(wave, direct.read_audio(2.25, 0.75), atol=AUDIO_ATOL, rtol=0)
        end = cached.read_audio(4.5, 1.0)
        direct_end = direct.read_audio(4.5, 1.0)
        # in the last frames (and the codec's padding after the stated 5.0 s end) the decoder's output
        # varies more with where decoding began: 3e-4 to 4.99 s and 3e-3 after, between two direct reads
        torch.testing.assert_close(end[:7000], direct_end[:7000], atol=AUDIO_ATOL, rtol=0)
        torch.testing.assert_close(end[:7900], direct_end[:7900], atol=1e-3, rtol=0)
        torch.testing.assert_close(end, direct_end, atol=1e-2, rtol=0)
        assert direct_end[9000:].abs().max() == 0
        assert end[9000:].abs().max() == 0 and end[:7000].abs().max() > 0.1  # the stream ends ~5.01 s
        torch.testing.assert_close(cached.read_audio(2.25, 0.75, sample_rate=8000),
                                   direct.read_audio(2.25, 0.75, sample_rate=8000), atol=AUDIO_ATOL, rtol=0)
        assert cached.served["audio_cache"] == 2 and cached.served["audio_decode"] == 1


def test_a_changed_file_misses_the_cache_and_specs_get_their_own_folders(media, tmp_path):
    path = str(tmp_path / "copy.mp4")
    with open(media[0], "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    spec = AudioCacheSpec(16000)
    assert build_cache([path, path], str(tmp_path / "c"), spec)["written"] == 1
    assert build_cache([path], str(tmp_path / "c"), spec)["kept"] == 1
    cache = ClipCache(str(tmp_path / "c"), spec, None)
    assert isinstance(cache.open(path), CachedReader)
    os.utime(path, ns=(1, 1))  # a new modification time: the entry no longer describes the file
    reader = cache.open(path)
    assert type(reader) is MediaReader
    reader.close()
    assert spec_dir("r", AudioCacheSpec(16000)) != spec_dir("r", AudioCacheSpec(8000))
    assert spec_dir("r", FramesCacheSpec(25.0, 128)) != spec_dir("r", FramesCacheSpec(12.5, 128))


def test_a_cache_dir_without_this_configs_cache_decodes(media, tmp_path, caplog):
    build_cache(media[:1], str(tmp_path), AudioCacheSpec(22050))
    cache = cache_for_clip(str(tmp_path), 16000, 8.0, 37)
    assert cache.empty
    assert "holds no cache for this config" in caplog.text
    with pytest.raises(Exception, match="data.cache_dir"):
        _config("avts", str(tmp_path / "missing"))


def test_cli_builds_caches_from_a_manifest(media, tmp_path, capsys):
    manifest = build_manifest(media, probe_paths(media, workers=0, progress=False))
    manifest_path = manifest.save(tmp_path / "m.csv")
    out = tmp_path / "cache"
    assert main(["cache", "audio", str(manifest_path), "--out", str(out), "--config", os.path.join(CONFIGS, "avts-tiny.yaml")]) == 0
    assert main(["cache", "frames", str(manifest_path), "--out", str(out), "--fps", "8", "--size", "37", "--workers", "2"]) == 0
    config = _config("avts", str(out))
    cache = cache_for_clip(config.data.cache_dir, 16000, config.data.clip.fps, decode_short_side(config.data.video_augment.size))
    assert cache.audio_dir and cache.frames_dir
    assert len([n for n in os.listdir(cache.frames_dir) if n.endswith(".npy")]) == 3
    capsys.readouterr()
    assert main(["cache", "audio", str(manifest_path), "--out", str(out), "--fps", "8"]) == 2
    assert "--fps and --size are for" in capsys.readouterr().err


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
