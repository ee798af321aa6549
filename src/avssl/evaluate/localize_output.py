"""What `avssl localize` writes: the raw maps (maps.npz), a PNG overlay per window and an mp4 of the
file with the heatmap over every frame and the original audio."""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from avssl.evaluate.localize import SoundMaps, window_of
from avssl.media import MediaReader, write_media

ALPHA = 0.5  # weight of the heatmap colour over the frame
CHUNK_SECONDS = 2.0  # frames are read and encoded this many seconds at a time


def save_maps(result: SoundMaps, path: str) -> str:
    """maps.npz: `maps` float32 [N, H, W] at frame size, `times` [N] window starts (s), `window_seconds`,
    `map_size` (the encoder map's H', W'), `input_size` (the frames' H, W fed to the encoder) and `mode`."""
    np.savez_compressed(path, maps=result.maps, times=result.times, window_seconds=np.float64(result.window_seconds),
                        map_size=np.asarray(result.map_size), input_size=np.asarray(result.input_size),
                        mode=np.asarray(result.mode))
    return path


def colour_map(heat: np.ndarray) -> np.ndarray:
    """float [H, W] -> float32 RGB [H, W, 3] in 0..255, min-max normalised per map (jet)."""
    from avssl.evaluate.plots import plt

    low, high = float(heat.min()), float(heat.max())
    unit = (heat - low) / (high - low) if high > low else np.zeros_like(heat)
    return (plt.get_cmap("jet")(unit)[..., :3] * 255).astype(np.float32)


def overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """uint8 frame [H, W, 3] with the colour-mapped heat [H, W] blended over it."""
    mixed = (1 - ALPHA) * frame.astype(np.float32) + ALPHA * colour_map(heat)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def write_overlays(result: SoundMaps, reader: MediaReader, folder: str) -> list[str]:
    """One PNG per window: the frame at the window's centre under its map; returns the paths."""
    from avssl.evaluate.plots import plt

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, start in enumerate(result.times):
        centre = min(start + result.window_seconds / 2, max(reader.info.duration - 1e-3, 0.0))
        frames = reader.read_video(centre, 1.0 / max(reader.info.video_fps, 1.0))
        frame = frames[0].numpy() if len(frames) else np.zeros((*result.maps.shape[1:], 3), np.uint8)
        path = os.path.join(folder, f"window_{i:04d}_{start:08.3f}s.png")
        plt.imsave(path, overlay(frame, result.maps[i]))
        paths.append(path)
    return paths


def overlay_frames(result: SoundMaps, reader: MediaReader, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """Every frame of the file (native rate) under the map of its window, cropped to `size` (even)."""
    h, w = size
    t, duration = 0.0, reader.info.duration
    while t < duration:
        span = min(CHUNK_SECONDS, duration - t)
        frames, info = reader.read_video(t, span, return_info=True)
        index = window_of(info.frame_times.numpy(), result.times, result.window_seconds)
        for frame, k in zip(frames.numpy(), index):
            yield overlay(frame, result.maps[k])[:h, :w]
        t += span


def write_overlay_video(result: SoundMaps, reader: MediaReader, path: str) -> str:
    """An mp4 of the file with the heatmaps over its frames and its own audio (native rate)."""
    info = reader.info
    size = (info.height - info.height % 2, info.width - info.width % 2)  # yuv420p needs even sides
    rate = int(info.audio_sample_rate) or 16000
    audio = reader.read_audio(0.0, info.duration, sample_rate=rate).numpy()
    return write_media(path, overlay_frames(result, reader, size), fps=info.video_fps, audio=audio,
                       sample_rate=rate, fmt="mp4", frame_size=size)


def write_outputs(result: SoundMaps, out_dir: str) -> dict[str, object]:
    """maps.npz, overlays/window_*.png and heatmap.mp4 in out_dir; returns what was written."""
    os.makedirs(out_dir, exist_ok=True)
    written: dict[str, object] = {"maps": save_maps(result, os.path.join(out_dir, "maps.npz"))}
    with MediaReader(result.path) as reader:
        written["overlays"] = write_overlays(result, reader, os.path.join(out_dir, "overlays"))
        written["video"] = write_overlay_video(result, reader, os.path.join(out_dir, "heatmap.mp4"))
    return written
