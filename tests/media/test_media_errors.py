"""Typed media errors: each names the file; nothing decodes to silent zeros."""

from __future__ import annotations

import numpy as np
import pytest

from avssl.media import (
    BackendUnavailableError,
    CannotOpenError,
    ClipOutsideStreamError,
    MediaError,
    NoAudioStreamError,
    NoVideoStreamError,
    probe,
    read_audio,
    read_video,
)
from avssl.media.writer import write_media


def test_missing_zero_byte_and_text_files_cannot_open(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    for path in (tmp_path / "missing.mp4", empty, text):
        with pytest.raises(CannotOpenError) as err:
            probe(path)
        assert str(path) in str(err.value) and isinstance(err.value, MediaError)


def test_truncated_mp4_is_a_media_error(coded_media, tmp_path):
    data = open(coded_media["mp4"], "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov atom at the end: gone
    with pytest.raises(MediaError) as err:
        probe(cut)
    assert str(cut) in str(err.value)


def test_missing_streams_are_typed(coded_media, tmp_path):
    with pytest.raises(NoVideoStreamError, match="coded.wav"):
        read_video(coded_media["wav"], 0, 1)
    silent = write_media(tmp_path / "silent.mp4", np.zeros((10, 32, 32, 3), np.uint8), 25)
    with pytest.raises(NoAudioStreamError, match="silent.mp4"):
        read_audio(silent, 0, 0.2)
    assert not probe(silent).has_audio


def test_windows_outside_the_stream(coded_media):
    with pytest.raises(ClipOutsideStreamError, match="coded.mp4"):
        read_video(coded_media["mp4"], 4.5, 1.0)
    with pytest.raises(ClipOutsideStreamError):
        read_audio(coded_media["mp4"], -1.0, 0.5)
    with pytest.raises(ValueError):
        read_audio(coded_media["mp4"], 0.0, 0.0)


def test_unknown_backend_names_the_choices(coded_media, monkeypatch):
    with pytest.raises(BackendUnavailableError, match="pyav"):
        read_audio(coded_media["wav"], 0, 1, backend="decord")
    monkeypatch.setenv("AVSSL_MEDIA_BACKEND", "nonsense")
    with pytest.raises(BackendUnavailableError, match="nonsense"):
        read_audio(coded_media["wav"], 0, 1)
