"""Feature extraction: video-level backbone features of every file of a manifest.

Each file gives `clips_per_video` clips whose windows are spread uniformly over it (clip i of N
starts at (duration - span) * (i + 0.5) / N floored to the 1/fps frame grid, so N = 1 is the centre
clip: avssl.data.sampling.evenly_spaced_starts), decoded with the evaluation transforms (resize the
short side, centre crop; `three` crops: left, centre and right along the long side). The clip features (the encoders' pooled backbone features, or
with `space="embedding"` the method's L2-normalised projection-head outputs) are averaged to one row
per file.
Decoding runs in DataLoader workers (one file per item, uint8 on the CPU); the model runs in batches
of clips on the device, without gradients, in eval mode.

Rows kept: `video` needs a video stream, `audio` an audio stream, `both` both (a row missing one
modality is left out and listed, so that every row of the features file has both arrays: cross-modal
retrieval compares them row by row). A file that fails to decode is skipped and listed in the
summary; with `strict` the first one stops the extraction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avssl.config.schema import Config
from avssl.data.clip_io import read_audio_clip, read_frames, read_video_clip
from avssl.data.sampling import evenly_spaced_starts
from avssl.data.transforms import resize_short_side, to_channels_first
from avssl.errors import UsageError
from avssl.evaluate.progress import progress
from avssl.media import MediaError, MediaReader

log = logging.getLogger(__name__)

MODALITIES = ("video", "audio", "both")
CROPS = ("center", "three")
SPACES = ("backbone", "embedding")


class ExtractionStopped(RuntimeError):
    """A file failed to decode under `strict`."""


def three_crops(clip: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 [3, T, H, W] with min(H, W) == size -> [3 crops, 3, T, size, size]: start, centre and end
    of the long side (the short side is taken whole)."""
    h, w = clip.shape[-2:]
    if w >= h:
        offsets = [0, (w - size) // 2, w - size]
        return torch.stack([clip[..., :size, o:o + size] for o in offsets])
    offsets = [0, (h - size) // 2, h - size]
    return torch.stack([clip[..., o:o + size, :size] for o in offsets])


class VideoClipsDataset(Dataset):
    """File i -> {"index", "video": uint8 [N*crops, 3, T, S, S] or absent, "audio": float [N, samples]
    or absent, "error": "" or the reason}. Decoding errors are returned, not raised, so that the main
    process reports them in order."""

    def __init__(self, paths: list[str], durations: np.ndarray, config: Config, modality: str,
                 clips_per_video: int, crops: str = "center") -> None:
        self.paths = list(paths)
        self.durations = np.asarray(durations, dtype=np.float64)
        self.clip = config.data.clip
        self.augment = config.data.video_augment
        self.backend = config.data.backend
        self.modality = modality
        self.clips_per_video = clips_per_video
        self.crops = crops

    def __len__(self) -> int:
        return len(self.paths)

    def starts(self, index: int) -> list[float]:
        clip = self.clip
        span = max(clip.video_seconds if self.modality != "audio" else 0.0,
                   clip.audio_window if self.modality != "video" else 0.0)
        return evenly_spaced_starts(float(self.durations[index]), span, self.clips_per_video, clip.fps)

    def __getitem__(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index, "error": ""}
        try:
            with MediaReader(self.paths[index], backend=self.backend) as reader:
                starts = self.starts(index)
                if self.modality in ("video", "both"):
                    out["video"] = torch.cat([self._video(reader, s) for s in starts])
                if self.modality in ("audio", "both"):
                    out["audio"] = torch.stack([read_audio_clip(reader, s, self.clip.audio_window,
                                                                self.clip.sample_rate) for s in starts])
        except MediaError as err:
            out = {"index": index, "error": err.reason or str(err)}
        return out

    def _video(self, reader: MediaReader, start: float) -> torch.Tensor:
        clip, aug = self.clip, self.augment
        if self.crops == "center":
            return read_video_clip(reader, start, clip.frames, clip.fps, aug, None).unsqueeze(0)
        frames = read_frames(reader, start, clip.frames, clip.fps, aug.size)
        return three_crops(resize_short_side(to_channels_first(frames), aug.size), aug.size).contiguous()


@dataclass
class ExtractResult:
    """Rows kept (indices into the manifest), their features, and what was left out and why."""

    rows: np.ndarray
    video: np.ndarray | None
    audio: np.ndarray | None
    failures: list[dict] = field(default_factory=list)  # {"path", "reason"}: files that did not decode
    left_out: list[dict] = field(default_factory=list)  # {"path", "reason"}: no such stream / probe error


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # several workers with multi-threaded ops oversubscribe the cores


@torch.no_grad()
def run_model(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int, device) -> torch.Tensor:
    """fn over x [M, ...] in chunks of `batch` on `device` -> float32 CPU [M, D]."""
    return torch.cat([fn(chunk.to(device)).float().cpu() for chunk in x.split(batch)])


def feature_functions(method: Any, space: str) -> tuple[Callable, Callable]:
    """(video uint8 [B, 3, T, S, S] -> [B, D], waveform [B, N] -> [B, D]) in `space`: `backbone` = the
    encoders' pooled features; `embedding` = the method's projection heads (video_head / audio_head)
    on them, L2-normalised: the joint space the pretraining compares audio and video in."""
    if space not in SPACES:
        raise UsageError(f"--space must be one of {SPACES}, got {space!r}")

    def video(x: torch.Tensor) -> torch.Tensor:
        return method.video_features(method.video_input(x, train=False))

    def audio(x: torch.Tensor) -> torch.Tensor:
        return method.audio_features(method.audio_input(x, train=False))

    if space == "backbone":
        return video, audio
    if not (hasattr(method, "video_head") and hasattr(method, "audio_head")):
        raise UsageError(f"--space embedding: the {type(method).__name__} model has no video_head/audio_head")
    return (lambda x: method.embed_video(method.video_input(x, train=False)),
            lambda x: method.embed_audio(method.audio_input(x, train=False)))


def _check_options(modality: str, crops: str, clips_per_video: int, batch_size: int, workers: int) -> None:
    if modality not in MODALITIES:
        raise UsageError(f"--modality must be one of {MODALITIES}, got {modality!r}")
    if crops not in CROPS:
        raise UsageError(f"--crops must be one of {CROPS}, got {crops!r}")
    if clips_per_video < 1 or batch_size < 1 or workers < 0:
        raise UsageError("--clips-per-video and --batch must be >= 1, --workers >= 0")


def _stop_if_strict(strict: bool, path: str, reason: str) -> None:
    if strict:
        raise ExtractionStopped(f"{path}: {reason} (--strict stops on the first bad file)")


def candidate_rows(manifest: Any, modality: str, strict: bool) -> tuple[np.ndarray, ExtractResult]:
    """(rows to decode, result so far): rows with a probe error go to `failures`, rows without a
    stream `modality` needs to `left_out` (logged once); the result's features are still empty."""
    paths, errors = manifest.strings("path"), manifest.strings("error")
    need_video, need_audio = modality in ("video", "both"), modality in ("audio", "both")
    has_video = np.asarray(manifest.column("has_video"), dtype=bool)
    has_audio = np.asarray(manifest.column("has_audio"), dtype=bool)
    result = ExtractResult(rows=np.zeros(0, dtype=np.int64), video=None, audio=None)
    candidates = []
    for i in range(len(manifest)):
        if errors[i]:
            result.failures.append({"path": str(paths[i]), "reason": f"probe: {errors[i]}"})
            _stop_if_strict(strict, paths[i], errors[i])
        elif need_video and not has_video[i]:
            result.left_out.append({"path": str(paths[i]), "reason": "no video stream"})
        elif need_audio and not has_audio[i]:
            result.left_out.append({"path": str(paths[i]), "reason": "no audio stream"})
        else:
            candidates.append(i)
    if result.left_out:
        log.warning("%d file(s) lack the %s needed for --modality %s and are left out, e.g. %s (%s)",
                    len(result.left_out), "streams" if modality == "both" else modality + " stream", modality,
                    result.left_out[0]["path"], result.left_out[0]["reason"])
    return np.asarray(candidates, dtype=np.int64), result


class FileFeaturePool:
    """Collects decoded files and runs the model over their clips once at least `batch_size` clips
    are waiting; each file's clip features are averaged to one row. A modality whose function is
    None is not computed."""

    def __init__(self, video_fn: Callable | None, audio_fn: Callable | None, batch_size: int, device: Any) -> None:
        self.fns = {"video": video_fn, "audio": audio_fn}
        self.batch_size, self.device = batch_size, device
        self.rows: dict[str, list[torch.Tensor]] = {"video": [], "audio": []}
        self.pending: list[dict] = []
        self.pending_clips = 0

    def add(self, item: dict) -> None:
        self.pending.append(item)
        self.pending_clips += len(item["video"] if self.fns["video"] is not None else item["audio"])
        if self.pending_clips >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Features of every waiting file, in the order the files were added."""
        if not self.pending:
            return
        for name, fn in self.fns.items():
            if fn is None:
                continue
            clips = torch.cat([item[name] for item in self.pending])
            feats = run_model(fn, clips, self.batch_size, self.device)
            self.rows[name].extend(f.mean(dim=0) for f in feats.split([len(item[name]) for item in self.pending]))
        self.pending, self.pending_clips = [], 0

    def matrix(self, name: str) -> np.ndarray | None:
        """float32 [files, D] of modality `name`, or None when no file gave one."""
        return torch.stack(self.rows[name]).numpy() if self.rows[name] else None


def extract_features(manifest: Any, method: Any, config: Config, *, modality: str = "video",
                     clips_per_video: int = 1, crops: str = "center", batch_size: int = 32, workers: int = 0,
                     device: str | torch.device = "cpu", strict: bool = False,
                     space: str = "backbone") -> ExtractResult:
    """Video-level features of the manifest's rows: `video` / `audio` float32 [kept, D].

    `method` provides video_input(uint8 [B, 3, T, S, S], train=False), video_features, audio_input(
    [B, samples], train=False) and audio_features (avssl.methods.base.PretrainMethod does), and for
    `space="embedding"` video_head / audio_head.
    """
    video_fn, audio_fn = feature_functions(method, space)
    _check_options(modality, crops, clips_per_video, batch_size, workers)
    need_video, need_audio = modality in ("video", "both"), modality in ("audio", "both")
    candidates, result = candidate_rows(manifest, modality, strict)
    paths = manifest.strings("path")
    durations = np.asarray(manifest.column("duration"), dtype=np.float64)[candidates]
    dataset = VideoClipsDataset([str(paths[i]) for i in candidates], durations, config, modality,
                                clips_per_video, crops)
    extra = {"worker_init_fn": _worker_init, "prefetch_factor": 4} if workers > 0 else {}
    loader = DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, **extra)
    pool = FileFeaturePool(video_fn if need_video else None, audio_fn if need_audio else None, batch_size, device)
    kept: list[int] = []
    for item in progress(loader, len(dataset), "extract"):
        path = dataset.paths[item["index"]]
        if item["error"]:
            result.failures.append({"path": path, "reason": item["error"]})
            log.warning("skipping %s: %s", path, item["error"])
            _stop_if_strict(strict, path, item["error"])
            continue
        kept.append(int(candidates[item["index"]]))
        pool.add(item)
    pool.flush()
    result.rows = np.asarray(kept, dtype=np.int64)
    if need_video:
        result.video = pool.matrix("video")
    if need_audio:
        result.audio = pool.matrix("audio")
    return result


def extract_to_file(checkpoint: str, manifest_path: str, out_path: str, *, modality: str = "both",
                    clips_per_video: int = 1, space: str = "backbone", workers: int = 0,
                    device: str = "cpu", overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """Features of a manifest's files with `checkpoint` (a last.ckpt or random:CONFIG), written to
    `out_path` (.npz) and returned as avssl.evaluate.features.Features. Files that fail to decode are
    logged and left out; none giving features is an error."""
    from avssl.data.manifest import Manifest
    from avssl.evaluate.features import load_features, save_features
    from avssl.evaluate.model_loading import load_model, model_identity

    model = load_model(checkpoint, device, overrides)
    manifest = Manifest.load(manifest_path)
    result = extract_features(manifest, model.method, model.config, modality=modality, clips_per_video=clips_per_video,
                              workers=workers, space=space, device=device)
    if len(result.rows) == 0:
        raise RuntimeError(f"{manifest_path}: no file gave features with {checkpoint}")
    if result.failures:
        log.warning("%d files of %s failed to decode: %s", len(result.failures), manifest_path, result.failures)
    rows = manifest.take(result.rows)
    save_features(out_path, path_column=rows.strings("path"), label=rows.strings("label"),
                  split=rows.strings("split"), group=rows.strings("group"), video=result.video, audio=result.audio,
                  model=model_identity(checkpoint, space, overrides), space=space)
    return load_features(out_path)
