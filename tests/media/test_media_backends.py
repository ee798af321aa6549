"""The torchcodec backend returns the same frames and samples as the default PyAV backend."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from avssl.data.synthetic.framecode import coded_frames
from avssl.media import DecodeError, MediaReader, probe
from avssl.media.writer import write_media

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


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_files_give_the_same_frames(tmp_path, rotation):
    # torchcodec turns the frames itself and states the angle in its metadata: it must not be turned
    # (or stretched to the stored size) a second time
    path = write_media(tmp_path / f"rot{rotation}.mp4", coded_frames(10, 64, 96), 25, rotation=rotation)
    assert probe(path, backend="torchcodec") == probe(path)
    with MediaReader(path) as pyav, MediaReader(path, backend="torchcodec") as tc:
        a, b = pyav.read_video(0.0, 0.2), tc.read_video(0.0, 0.2)
        assert torch.equal(a, b) and (tc.info.rotation, tc.info.width) == (rotation, pyav.info.width)
        assert tuple(tc.read_video(0.0, 0.2, size=32).shape) == tuple(pyav.read_video(0.0, 0.2, size=32).shape)


def test_the_same_padding_at_both_ends_of_a_late_video(tmp_path):
    path = write_media(tmp_path / "late.mp4", coded_frames(25, 64, 96), 25, np.zeros(48000, np.float32), 16000,
                       frame_times=1.0 + np.arange(25) / 25)
    with MediaReader(path) as pyav, MediaReader(path, backend="torchcodec") as tc:
        for start in (0.0, 0.75, 1.75, 2.5):
            a, ai = pyav.read_video(start, 0.5, fps=8, return_info=True)
            b, bi = tc.read_video(start, 0.5, fps=8, return_info=True)
            assert torch.equal(a, b) and ai.padded_frames == bi.padded_frames, start


def test_the_same_downmix_of_six_channels(tmp_path):
    data = np.random.default_rng(0).uniform(-0.3, 0.3, (6, 16000)).astype(np.float32)
    path = str(tmp_path / "six.wav")
    with av.open(path, "w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000, layout="5.1")
        frame = av.AudioFrame.from_ndarray((data * 32767).astype(np.int16).T.reshape(1, -1).copy(),
                                           format="s16", layout="5.1")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    with MediaReader(path) as pyav, MediaReader(path, backend="torchcodec") as tc:
        assert float((pyav.read_audio(0.2, 0.5) - tc.read_audio(0.2, 0.5)).abs().max()) < 1e-5


def test_a_torchcodec_that_does_not_report_rotation_is_refused(tmp_path):
    # a torchcodec without the metadata field leaves rotation 0 while its frames come out turned
    path = write_media(tmp_path / "rot90.mp4", coded_frames(10, 64, 96), 25, rotation=90)
    with MediaReader(path, backend="torchcodec") as tc:
        tc._source._video_decoder()
        tc._source.rotation = 0
        with pytest.raises(DecodeError, match=r"rot90\.mp4: torchcodec returned 64x96 frames .* use the pyav backend"):
            tc.read_video(0.0, 0.2)
