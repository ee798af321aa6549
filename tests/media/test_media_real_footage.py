"""Real footage from Debian's forensics-samples-files (scripts/install_test_deps.sh unpacks it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from avssl.media import MediaReader, probe

ROOT = Path(__file__).resolve().parents[2] / ".cache/debian-media/usr/share/forensics-samples/original-files"
FILES = ["movie1/VID_20191220_170832.mp4", "movie2/movie-hello.mp4", "movie2/movie-hello.avi",
         "movie2/movie-hello.mpeg", "movie2/movie-hello.ogg"]

pytestmark = [
    pytest.mark.apt,
    pytest.mark.skipif(not ROOT.is_dir(), reason=f"{ROOT} absent: run scripts/install_test_deps.sh (needs apt)"),
]


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["format"]["duration"])


def ffprobe_overlap_end(path: Path) -> float:
    """The time (from the container start) at which the first of the audio and video streams ends."""
    entries = "format=start_time,duration:stream=codec_type,start_time,duration"
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    origin, total = float(data["format"].get("start_time", 0)), float(data["format"]["duration"])
    ends = []
    for stream in data["streams"]:
        if stream["codec_type"] in ("audio", "video"):
            begin = float(stream.get("start_time", origin)) - origin
            ends.append(begin + float(stream["duration"]) if "duration" in stream else total)
    return min(ends)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe absent: apt-get install ffmpeg")
@pytest.mark.parametrize("name", FILES)
def test_probe_duration_matches_ffprobe(name):
    info = probe(ROOT / name)
    assert info.has_video and info.has_audio
    # the span both streams cover (MediaInfo.duration); the longer stream ends with the container
    assert abs(info.duration - ffprobe_overlap_end(ROOT / name)) < 0.05
    longer = max(info.video_start + info.video_duration, info.audio_start + info.audio_duration)
    assert abs(longer - ffprobe_duration(ROOT / name)) < 0.05


@pytest.mark.parametrize("name", FILES)
def test_windows_are_on_one_clock(name):
    """Frames and audio of any window start within one frame of the window start, in every encoding."""
    path = ROOT / name
    with MediaReader(path) as reader:
        info = reader.info
        for start in (0.5, info.duration / 2, info.duration - 0.6):
            video, vinfo = reader.read_video(start, 0.4, size=112, return_info=True)
            if not name.endswith(".ogg"):  # its Vorbis track has damaged packets near the end
                assert reader.read_audio(start, 0.4).shape == (6400,)
            times = vinfo.frame_times.numpy()
            assert len(video) >= round(0.4 * info.video_fps) - 1 and min(video.shape[1:3]) == 112
            assert times[0] >= start - 1e-6 and times[0] - start < 1.0 / info.video_fps + 1e-3
            assert np.all(np.diff(times) > 0)
            assert float(video.float().std()) > 1.0  # real picture content, not a blank frame


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg absent: apt-get install ffmpeg")
@pytest.mark.parametrize("name", ["movie2/movie-hello.mp4", "movie2/movie-hello.avi", "movie2/movie-hello.mpeg"])
def test_audio_matches_the_ffmpeg_command_line_within_a_frame(name):
    """Our window at 1.0 s is found in ffmpeg's full decode (which starts at the audio stream's first
    sample, audio_start on our clock) within one video frame; MP3 decoder delay in AVI is ~11 ms."""
    path = ROOT / name
    full = np.frombuffer(subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"],
        capture_output=True, check=True).stdout, np.float32)
    with MediaReader(path) as reader:
        ours = reader.read_audio(1.0, 4.0).numpy()
        origin = round((1.0 - reader.info.audio_start) * 16000)
        frame = 16000 / reader.info.video_fps
    lags = np.arange(-400, 401)
    scores = [float(np.dot(ours, full[origin + lag:origin + lag + len(ours)])) for lag in lags]
    assert abs(lags[int(np.argmax(scores))]) <= frame
