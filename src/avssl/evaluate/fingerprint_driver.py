"""The fingerprinting benchmark end to end: decode reference clips from a manifest, make transformed
queries (avssl.evaluate.query_transforms), embed both with a model, score with the fingerprint metrics.

A reference is the centre window of `seconds` of a file with video and audio (frames at the model's
fps, short side decoded as for evaluation). Its descriptor: the video backbone features of `frames`
frames taken uniformly over the whole (possibly sped-up) clip, resized and centre-cropped to the
model's size, and the audio backbone features of the log-mel of the whole waveform; each part is
L2-normalised, the two are concatenated and the result L2-normalised again (both modalities weigh
the same in the cosine similarity).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from avssl.config.schema import Config
from avssl.data.clip_io import decode_short_side
from avssl.data.sampling import evenly_spaced_starts
from avssl.data.transforms import center_crop, resize_short_side, to_channels_first
from avssl.errors import UsageError
from avssl.evaluate.fingerprint import Reference, evaluate_fingerprinting
from avssl.evaluate.progress import progress
from avssl.evaluate.query_transforms import DEFAULT_TRANSFORMS, AVClip, Transform
from avssl.media import MediaError, MediaReader

log = logging.getLogger(__name__)


def select_transforms(names: Sequence[str] | None) -> dict[str, Transform]:
    """The named transforms of DEFAULT_TRANSFORMS (all when `names` is None); an unknown name is a UsageError."""
    if not names:
        return dict(DEFAULT_TRANSFORMS)
    unknown = [n for n in names if n not in DEFAULT_TRANSFORMS]
    if unknown:
        raise UsageError(f"--transforms: unknown {unknown[0]!r}; known: {', '.join(DEFAULT_TRANSFORMS)}")
    return {n: DEFAULT_TRANSFORMS[n] for n in names}


def load_references(manifest: Any, config: Config, seconds: float, limit: int | None = None
                    ) -> tuple[list[Reference], list[dict]]:
    """(references, failures): centre windows of `seconds` of the rows with video and audio and no
    probe error; a reference's id is its path. Files that fail to decode are skipped and listed."""
    clip, size = config.data.clip, config.data.video_augment.size
    rows = np.flatnonzero(manifest.usable_mask("both"))
    if limit is not None:
        rows = rows[:limit]
    references, failures = [], []
    paths, durations = manifest.strings("path"), np.asarray(manifest.column("duration"), dtype=np.float64)
    for i in progress(rows, len(rows), "fingerprint: decode references"):
        path = str(paths[i])
        start = evenly_spaced_starts(float(durations[i]), seconds, 1, clip.fps)[0]
        try:
            with MediaReader(path, backend=config.data.backend) as reader:
                video = reader.read_video(start, seconds, fps=clip.fps, size=decode_short_side(size))
                audio = reader.read_audio(start, seconds, sample_rate=clip.sample_rate)
        except MediaError as err:
            log.warning("skipping %s: %s", path, err.reason)
            failures.append({"path": path, "reason": err.reason})
            continue
        if video.shape[0] == 0:
            failures.append({"path": path, "reason": "no video frame in the reference window"})
            continue
        # the re-encode transform needs an even frame size (yuv420p)
        h, w = video.shape[1] // 2 * 2, video.shape[2] // 2 * 2
        references.append(Reference(path, AVClip(video[:, :h, :w].contiguous(), audio, clip.fps, clip.sample_rate)))
    return references, failures


class Embedder:
    """embed(video uint8 [T, H, W, 3], audio float [N]) -> float32 [Dv + Da], L2-normalised (see module doc)."""

    def __init__(self, method: Any, config: Config, device: str | torch.device = "cpu") -> None:
        self.method = method
        self.frames = config.data.clip.frames
        self.size = config.data.video_augment.size
        self.device = device

    @torch.no_grad()
    def __call__(self, video: torch.Tensor, audio: torch.Tensor) -> np.ndarray:
        index = torch.linspace(0, video.shape[0] - 1, self.frames).round().long()
        clip = to_channels_first(video[index])  # [3, T, H, W]
        clip = center_crop(resize_short_side(clip, self.size), (self.size, self.size)).unsqueeze(0)
        v = self.method.video_features(self.method.video_input(clip.to(self.device), train=False)).float()
        a = self.method.audio_features(self.method.audio_input(audio.unsqueeze(0).to(self.device), train=False)).float()
        joint = torch.cat([F.normalize(v, dim=1), F.normalize(a, dim=1)], dim=1)
        return F.normalize(joint, dim=1)[0].cpu().numpy()


def run_fingerprint(method: Any, config: Config, manifest: Any, *, seconds: float | None = None,
                    transforms: Sequence[str] | None = None, seed: int = 0, limit: int | None = None,
                    candidates_per_query: int | None = None, device: str | torch.device = "cpu") -> dict:
    """Metrics (map, recall@1, by_transform) of the model on the manifest's files, plus the counts."""
    seconds = seconds if seconds is not None else 2 * config.data.clip.video_seconds
    if seconds <= 0:
        raise UsageError(f"--seconds must be positive, got {seconds}")
    chosen = select_transforms(transforms)
    references, failures = load_references(manifest, config, seconds, limit)
    if len(references) < 2:
        raise UsageError(f"fingerprinting needs at least 2 readable files with video and audio, got {len(references)}")
    result = evaluate_fingerprinting(Embedder(method, config, device), references, chosen, seed,
                                     candidates_per_query)
    return {**result, "n_references": len(references), "seconds": seconds, "transforms": list(chosen),
            "descriptor": "concat(l2(video backbone), l2(audio backbone)), l2-normalised", "failed": failures}
