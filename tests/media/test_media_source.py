"""Both decoding backends implement every member of MediaSource, the interface the reader reads through."""

from __future__ import annotations

import pytest

from avssl.media import MediaReader, MediaSource
from avssl.media.pyav_backend import PyAVSource

METHODS = ["info", "video_frames", "to_rgb", "audio_samples", "decoded_frames", "close"]
ATTRIBUTES = ["name", "path", "rotation"]


def _source_class(backend: str) -> type:
    if backend == "pyav":
        return PyAVSource
    try:
        from avssl.media.torchcodec_backend import TorchCodecSource
    except (ImportError, OSError, RuntimeError) as err:  # pragma: no cover - depends on the machine
        pytest.skip(f"torchcodec backend unavailable ({err})")
    return TorchCodecSource


def test_the_interface_lists_what_the_reader_uses():
    members = {name for name in vars(MediaSource) if not name.startswith("_")}
    assert members | set(MediaSource.__annotations__) == set(METHODS) | set(ATTRIBUTES)


@pytest.mark.parametrize("backend", ["pyav", "torchcodec"])
def test_backend_defines_every_member(coded_media, backend):
    cls = _source_class(backend)
    assert MediaSource in cls.__mro__  # declared, not only duck-typed
    for method in METHODS:
        assert getattr(cls, method) is not getattr(MediaSource, method), f"{cls.__name__}.{method} is the stub"
    source = cls(coded_media["mp4"])
    try:
        assert (source.name, source.path, source.rotation) == (backend, str(coded_media["mp4"]), 0)
    finally:
        source.close()


def test_decoded_frames_are_counted_by_pyav_only(coded_media):
    with MediaReader(coded_media["mp4"]) as reader:
        reader.read_video(1.0, 0.2)
        assert reader.decoded_video_frames > 0 and reader.decoded_audio_frames == 0
    _source_class("torchcodec")
    with MediaReader(coded_media["mp4"], backend="torchcodec") as reader:
        reader.read_video(1.0, 0.2)
        assert reader.decoded_video_frames is None and reader.decoded_audio_frames is None
