"""Sound-source maps: where in the frame the model places what it hears (`avssl localize`).

Per video window (the model's clip, `data.clip.frames` frames at `data.clip.fps`, starting every
`stride` seconds), the audio window at the same start is embedded (embed_audio) and compared by
cosine similarity with the video encoder's last feature map before pooling, averaged over its time
axis and projected into the joint space position by position (avssl.evaluate.av_model.embed_video_map),
then upsampled (bilinear) onto the frame: one map [H, W] per window at the file's frame size (av-nce
with `spatial_pool: max` trains exactly this map). mode "contrast" subtracts from each position's
similarity its mean similarity to the file's other audio windows (see audio_maps): what responds to
this window's sound rather than to the file's sound in general. mode "occlusion" does not read the
encoder's map: it stills one patch of the clip at a time and maps how much the whole clip's agreement
with its audio drops (avssl.evaluate.localize_occlusion); `patch` sets the square's side in input
pixels. mode "gradient" maps the magnitude of the gradient of the window's sync margin (its own audio
against the same file's audio half a window earlier and later) with respect to the input pixels
(avssl.evaluate.localize_gradient).

Input frames: the whole frame, not the training centre crop, resized so that its short side is
`scale` x the short side the model's frames were decoded at for training
(avssl.data.clip_io.decode_short_side of data.video_augment.size). At scale 1 objects appear at the
size the model learnt them at; the encoder is fully convolutional, so a wider frame just gives a wider
map (at the tiny configs, 3 x 4 positions for a 4:3 frame; scale 2 gives 5 x 7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from avssl.data.clip_io import read_audio_clip, read_frames
from avssl.data.transforms import to_channels_first
from avssl.errors import UsageError
from avssl.evaluate.av_model import batches, embed_audio_batches, embed_video_map, open_av_file, score_kind
from avssl.evaluate.localize_gradient import gradient_maps, shifted_starts
from avssl.evaluate.localize_occlusion import default_patch, drop_map, stilling_effects
from avssl.evaluate.pretrained import PretrainedModel

MODES = ("raw", "contrast", "occlusion", "occlusion-contrast", "gradient")


@dataclass
class SoundMaps:
    """`maps` float32 [N, H, W] at frame size (cosine similarity; its drop for "occlusion"; a gradient
    magnitude for "gradient"), `times` [N] window starts in seconds, each window `window_seconds` long;
    `map_size` (H', W') of the encoder's map (for "occlusion" and "gradient": the input size)."""

    path: str
    maps: np.ndarray
    times: np.ndarray
    window_seconds: float
    map_size: tuple[int, int]
    input_size: tuple[int, int]
    mode: str = "raw"


def window_starts(duration: float, window: float, stride: float) -> np.ndarray:
    """Starts 0, stride, 2 stride, ... of the windows of `window` seconds that fit in `duration`."""
    count = int(math.floor((duration - window) / stride + 1e-6)) + 1
    return np.arange(max(count, 0)) * stride


def window_of(times: np.ndarray, starts: np.ndarray, window: float) -> np.ndarray:
    """int [len(times)]: for each time, the window that contains it and whose centre is nearest (for
    a time in no window, the nearest centre overall)."""
    times = np.asarray(times, dtype=np.float64)[:, None]
    centres = starts[None, :] + window / 2
    inside = (times >= starts[None, :]) & (times < starts[None, :] + window)
    distance = np.abs(times - centres) + np.where(inside, 0.0, 1e9)
    return np.argmin(distance, axis=1)


def file_windows(loaded: PretrainedModel, path: str, duration: float,
                 stride: float | None = None) -> tuple[float, np.ndarray]:
    """(the model's window in seconds, the starts of the windows of a `duration` s file, every `stride`
    s, by default the window); UsageError naming the file when not one window fits."""
    clip = loaded.config.data.clip
    window = max(clip.video_seconds, clip.audio_window)
    starts = window_starts(duration, window, stride or window)
    if len(starts) == 0:
        raise UsageError(f"{path}: {duration:.2f} s is shorter than the model's {window:g} s window")
    return window, starts


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, h, w] -> [B, H, W], bilinear (the map's cells cover the whole frame)."""
    return F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def decode_size(loaded: PretrainedModel, scale: float) -> int:
    """The `size` whose decode short side (decode_short_side) is `scale` x the training one."""
    return max(8, int(round(scale * loaded.config.data.video_augment.size)))


@torch.no_grad()
def localize_file(loaded: PretrainedModel, path: str, stride: float | None = None, scale: float = 1.0,
                  batch_size: int = 16, mode: str = "raw", patch: int | None = None) -> SoundMaps:
    """The sound maps of `path` (see the module docstring); stride defaults to the window length.
    MediaError (naming the file) when it cannot be read; UsageError when it is shorter than a window."""
    if mode not in MODES:
        raise UsageError(f"--map must be one of {', '.join(MODES)}, got {mode!r}")
    config, method = loaded.config, loaded.method
    clip = config.data.clip
    size = decode_size(loaded, scale)
    with open_av_file(path) as reader:
        info = reader.info
        window, starts = file_windows(loaded, path, info.duration, stride)
        video, audio, input_size = [], [], (0, 0)
        for chunk in batches(starts.tolist(), batch_size):
            clips = torch.stack([full_frame_clip(reader, s, clip.frames, clip.fps, size) for s in chunk])
            waves = torch.stack([read_audio_clip(reader, s, clip.audio_window, clip.sample_rate) for s in chunk])
            embedded = embed_audio_batches(method, [waves]).float()
            audio.append(embedded)
            input_size = tuple(clips.shape[-2:])
            if mode.startswith("occlusion"):
                side = patch or default_patch(*input_size)
                video += [stilling_effects(method, c, side, batch_size) for c in clips]
            elif mode == "gradient":
                shifted = shifted_audio(method, reader, chunk, clip.audio_window, clip.sample_rate, info.duration)
                video.append(gradient_maps(method, clips, embedded, shifted, score_kind(loaded)))
            else:
                video.append(embed_video_map(method, clips))  # [B, H', W', E]
        frame_size = (info.height, info.width)
    if mode.startswith("occlusion"):
        # the drop of the agreement with this window's audio (minus, for "-contrast", the mean drop
        # with the file's other windows' audio): audio_maps over the P patch positions as a P x 1 map
        effects = torch.stack(video)[:, :, None]  # [N, P, 1, E]
        drops = audio_maps(effects, torch.cat(audio), "contrast" if mode.endswith("contrast") else "raw")[:, :, 0]
        maps = upsample(torch.stack([drop_map(d, input_size, side) for d in drops]), frame_size)
        map_size = input_size
    elif mode == "gradient":
        maps, map_size = upsample(torch.cat(video), frame_size), input_size
    else:
        video_map = torch.cat(video)
        maps, map_size = upsample(audio_maps(video_map, torch.cat(audio), mode), frame_size), tuple(video_map.shape[1:3])
    return SoundMaps(path, maps.numpy().astype(np.float32), starts.astype(np.float64), window,
                     map_size, input_size, mode)


@torch.no_grad()
def motion_maps(loaded: PretrainedModel, path: str, scale: float = 1.0) -> SoundMaps:
    """A yardstick with neither model nor audio: per window of localize_file (the same windows, frames
    and decode size), each pixel's standard deviation over the window's frames, averaged over colour,
    at frame size. It peaks where something moves; where every sound comes from a moving object, a
    sound map has to beat it to show that it follows the sound rather than the motion."""
    clip = loaded.config.data.clip
    with open_av_file(path) as reader:
        info = reader.info
        window, starts = file_windows(loaded, path, info.duration)
        clips = [full_frame_clip(reader, s, clip.frames, clip.fps, decode_size(loaded, scale)) for s in starts]
    motion = torch.stack([c.float().std(dim=1).mean(dim=0) for c in clips])  # [N, h, w]
    maps = upsample(motion, (info.height, info.width))
    return SoundMaps(path, maps.numpy().astype(np.float32), starts.astype(np.float64), window,
                     tuple(motion.shape[1:]), tuple(motion.shape[1:]), "motion")


def shifted_audio(method, reader, starts: list[float], window: float, rate: int,
                  duration: float) -> list[torch.Tensor]:
    """Per start, [K, E]: the joint-space embeddings of the file's audio windows half a window before
    and after it that lie inside the file (localize_gradient.shifted_starts; K = 0 when neither
    does). Each distinct window is read and embedded once, in one batch: with the default stride the
    window after one start is the window before the next."""
    wanted = [shifted_starts(s, window, duration) for s in starts]
    distinct = sorted({s for w in wanted for s in w})
    if not distinct:
        return [torch.zeros(0, 0) for _ in starts]
    waves = torch.stack([read_audio_clip(reader, s, window, rate) for s in distinct])
    embedded = embed_audio_batches(method, [waves]).float()
    row = {s: i for i, s in enumerate(distinct)}
    return [embedded[[row[s] for s in w]] for w in wanted]


def audio_maps(video_map: torch.Tensor, audio: torch.Tensor, mode: str) -> torch.Tensor:
    """Per window k: [N, H', W'] from the window's time-averaged joint-space map video_map [N, H', W', E]
    and the audio embeddings [N, E]. "raw": cos(v_kp, a_k). "contrast": cos(v_kp, a_k) minus the mean
    over the file's other windows j of cos(v_kp, a_j) (= v_kp . mean_j a_j): how much more a position
    agrees with the sound of its own window than with the file's other sounds; a file of one window
    has nothing to contrast with and gets its raw map."""
    raw = torch.einsum("khwe,ke->khw", video_map, audio)
    if mode == "raw" or len(audio) < 2:
        return raw
    others = (audio.sum(dim=0, keepdim=True) - audio) / (len(audio) - 1)
    return raw - torch.einsum("khwe,ke->khw", video_map, others)


def full_frame_clip(reader, start: float, frames: int, fps: float, size: int) -> torch.Tensor:
    """uint8 [3, T, H, W]: the whole frames of the window (no crop), decoded at the short side that
    training decodes `size` px crops from (avssl.data.clip_io.read_frames)."""
    return to_channels_first(read_frames(reader, start, frames, fps, size)).contiguous()
