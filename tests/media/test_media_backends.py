"""The torchcodec backend returns the same frames and samples as the default PyAV backend."""

from __future__ import annotations

import pytest
import torch

from avssl.media import MediaReader

try:
    import torchcodec  # noqa: F401

    from avssl.media import torchcodec_backend  # noqa: F401  (needs FFmpeg shared libraries)
except (ImportError, OSError, RuntimeError) as err:  # pragma: no cover - depends on the machine
    pytest.skip(f"torchcodec backend unavailable ({err}); pip install torchcodec==0.13.0 and apt install ffmpeg",
                allow_module_level=True)


# Matroska/WebM store audio times rounded to 1 ms; the PyAV backend recovers the exact sample
# position from a run of frames, torchcodec uses the rounded time: compare audio on the others
@pytest.mark.parametrize("fmt", ["mp4", "mov", "avi", "wav", "flac", "ogg", "mkv", "webm"])
def test_same_frames_and_samples(coded_media, fmt):
    with MediaReader(coded_media[fmt]) as pyav, MediaReader(coded_media[fmt], backend="torchcodec") as tc:
        for start in (0.0, 1.3, 2.95):
            if pyav.info.has_video:
                a, ai = pyav.read_video(start, 0.6, return_info=True)
                b, bi = tc.read_video(start, 0.6, return_info=True)
                assert torch.equal(a, b), (fmt, start)
                assert torch.allclose(ai.frame_times, bi.frame_times, atol=1e-6)
                assert torch.equal(pyav.read_video(start, 0.6, fps=10), tc.read_video(start, 0.6, fps=10))
            if fmt not in ("mkv", "webm"):
                x, y = pyav.read_audio(start, 0.6), tc.read_audio(start, 0.6)
                assert float((x - y).abs().max()) < 1e-5, (fmt, start)


def test_backend_from_environment(coded_media, monkeypatch):
    monkeypatch.setenv("AVSSL_MEDIA_BACKEND", "torchcodec")
    with MediaReader(coded_media["mp4"]) as reader:
        assert reader.backend == "torchcodec"
