"""What the media layer does with files that would hang, mislead or distort a reader: a FIFO swapped in
for a file, video missing at either end of a window (padded and counted), a probe duration that promises
video where there is none, 5.1 audio mixed to mono, and decode errors placed at the failing packet."""

from __future__ import annotations

import os
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from avssl.data.synthetic.framecode import coded_frames, decode_frame_index
from avssl.media import CannotOpenError, DecodeError, MediaReader, probe, read_audio
from avssl.media.pyav_decode import PyAVDecoder
from avssl.media.timing import downmix, downmix_weights
from avssl.media.writer import write_media

RATE = 16000


def codes(video) -> list[int]:
    return [decode_frame_index(f.numpy()) for f in video]


def finishes(call, seconds: float = 20.0, fifo: str | None = None):
    """call() in a thread: its exception or result; fails (unblocking the FIFO) when it hangs."""
    out: dict = {}

    def target():
        try:
            out["value"] = call()
        except BaseException as err:  # noqa: BLE001  (handed to the test)
            out["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo:  # a writer lets a blocked open() return, so the thread does not linger
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{call} still blocked after {seconds} s")
    return out


@pytest.mark.parametrize("call", ["reader", "probe"])
def test_a_fifo_is_refused_without_blocking(tmp_path, call):
    fifo = str(tmp_path / "clip.mp4")
    os.mkfifo(fifo)
    out = finishes((lambda: MediaReader(fifo)) if call == "reader" else (lambda: probe(fifo)), fifo=fifo)
    err = out.get("error")
    assert isinstance(err, CannotOpenError) and err.path == fifo, out
    assert "not a regular file" in str(err) and "FIFO" in str(err)


def test_a_fifo_swapped_in_under_an_open_reader_is_refused_when_reopened(tmp_path):
    # PyAV reopens the file to read from its very start: the path is checked again then
    path = write_media(tmp_path / "clip.mp4", coded_frames(25, 32, 48), 25, np.zeros(RATE, np.float32), RATE)
    with MediaReader(path) as reader:
        reader.read_video(0.6, 0.2)
        os.replace(path, str(tmp_path / "moved.mp4"))
        os.mkfifo(path)
        err = finishes(lambda: reader.read_video(0.0, 0.2), fifo=path).get("error")
    assert isinstance(err, CannotOpenError) and err.path == path


def test_probe_duration_is_the_span_both_streams_cover(tmp_path):
    short_audio = write_media(tmp_path / "a.mp4", coded_frames(75, 32, 48), 25, np.zeros(RATE, np.float32), RATE)
    info = probe(short_audio)
    assert info.duration == pytest.approx(1.0, abs=0.03) and info.video_duration == pytest.approx(3.0, abs=0.01)
    one_frame = write_media(tmp_path / "b.mp4", coded_frames(1, 32, 48), 25, np.zeros(RATE, np.float32), RATE)
    assert probe(one_frame).duration == pytest.approx(0.04, abs=0.005)
    video_only = write_media(tmp_path / "c.mp4", coded_frames(50, 32, 48), 25)
    assert probe(video_only).duration == pytest.approx(2.0, abs=0.01)


def test_video_padding_is_counted_at_both_ends(tmp_path):
    # video from 1.0 s to 2.0 s, audio from 0 to 3 s: windows before, across and after the video
    frames = coded_frames(25, 64, 96)
    path = write_media(tmp_path / "late.mp4", frames, 25, np.zeros(3 * RATE, np.float32), RATE,
                       frame_times=1.0 + np.arange(25) / 25)
    with MediaReader(path) as reader:
        assert reader.info.video_start == pytest.approx(1.0)
        cases = [(0.0, [0, 0, 0, 0], 4),       # wholly before the first frame: it stands in, all counted
                 (0.75, [0, 0, 0, 3], 2),      # across the start
                 (1.5, [12, 15, 18, 21], 0),   # inside
                 (1.75, [18, 21, 24, 24], 2),  # across the end (frame 24 is shown until 2.0 s)
                 (2.5, [24, 24, 24, 24], 4)]   # wholly past the last frame (inside the audio)
        for start, shown, padded in cases:
            video, info = reader.read_video(start, 0.5, fps=8, return_info=True)
            assert (codes(video), info.padded_frames) == (shown, padded), start


def test_five_one_audio_keeps_a_centre_channel_voice(tmp_path):
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    data = np.zeros((6, RATE), np.float32)
    data[2] = tone  # FC of 5.1: FL FR FC LFE BL BR
    path = str(tmp_path / "centre.wav")
    with av.open(path, "w") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE, layout="5.1")
        frame = av.AudioFrame.from_ndarray((data * 32767).astype(np.int16).T.reshape(1, -1).copy(),
                                           format="s16", layout="5.1")
        frame.sample_rate, frame.pts = RATE, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    assert probe(path).audio_channels == 6
    mono = read_audio(path, 0.25, 0.5).numpy()
    expected = np.sqrt(0.5) * tone[4000:12000]  # ITU-R BS.775: C at 0.707 into L and R, mono = their mean
    np.testing.assert_allclose(mono, expected, atol=2e-3)


def test_downmix_weights_by_layout():
    np.testing.assert_allclose(downmix_weights(("FL", "FR")), [0.5, 0.5])
    np.testing.assert_allclose(downmix_weights(("FL", "FR", "FC", "LFE", "SL", "SR")),
                               [0.5, 0.5, np.sqrt(0.5), 0.0, np.sqrt(0.125), np.sqrt(0.125)], rtol=1e-6)
    np.testing.assert_allclose(downmix_weights(("TFL", "TFR", "FC")), [1 / 3] * 3)  # unknown names: the mean
    samples = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(downmix(samples, ("FC",)), np.ones(4))  # mono stays as it is


class _Packet:
    def __init__(self, pts, fail):
        self.pts, self.size, self.time_base, self.fail = pts, 10, Fraction(1, 1000), fail

    def decode(self):
        if self.fail:
            raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
        frame = type("Frame", (), {"pts": self.pts, "time_base": self.time_base})()
        return [frame]


def test_a_decode_error_is_placed_at_its_packet():
    decoder = PyAVDecoder.__new__(PyAVDecoder)
    packets = [_Packet(t, False) for t in range(0, 6000, 40)] + [_Packet(6040, True)]
    decoder.path, decoder.origin, decoder.decoded = "late.mkv", 0.0, {}
    decoder.container = type("Container", (), {"demux": lambda self, stream: iter(packets)})()
    stream = type("Stream", (), {"type": "video", "average_rate": 25})()
    with pytest.raises(DecodeError, match=r"late\.mkv: video decode failed at 6\.040 s"):
        list(decoder.decode(stream))
