"""`avssl.load(PATH)`: a trained model that embeds files and tensors in three lines.

    model = avssl.load("runs/avts-tiny")              # run dir, last.ckpt, export dir or random:CONFIG
    emb = model.embed_video("clip.mp4")                # per-window vectors with their start times
    emb.vectors.shape, emb.starts[:3]                  # (N, D) float32, seconds

A path is embedded window by window (avssl.evaluate.windows: exact frame-grid starts, memory flat
on long files); a tensor is embedded as given (uint8 video clips at the model's size, or float
waveforms at its sample rate). `space="backbone"` gives the encoders' pooled features,
`space="joint"` the method's projection heads L2-normalised (the space where it compares video with
audio; `avssl extract --space embedding`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avssl.config.schema import Config
from avssl.errors import UsageError
from avssl.evaluate.extract import feature_functions, run_model
from avssl.evaluate.windows import FileWindows, embed_windows, plan_windows
from avssl.media import MediaReader

SPACES = ("backbone", "joint")
# the API's space name -> the name avssl.evaluate.extract.feature_functions uses
_EXTRACT_SPACE = {"backbone": "backbone", "joint": "embedding"}


@dataclass(frozen=True)
class Embeddings:
    """Per-window embeddings of one file: `vectors` float32 [N, D], `starts` / `ends` float64 [N]
    seconds (window i covers [starts[i], ends[i])), the `space` and `modality` they are in."""

    vectors: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    space: str
    modality: str
    path: str

    def __len__(self) -> int:
        return len(self.vectors)


def check_space(space: str) -> str:
    if space not in SPACES:
        raise UsageError(f"space must be one of {SPACES}, got {space!r}")
    return _EXTRACT_SPACE[space]


class PretrainedModel:
    """A trained method in eval mode with its config. `video_encoder` / `audio_encoder` are the plain
    nn.Modules ([B, 3, T, H, W] normalised float -> [B, D]; [B, 1, mels, frames] log-mel -> [B, D]);
    `embed_video` / `embed_audio` prepare the inputs as training did (without augmentation)."""

    def __init__(self, method: Any, config: Config, source: str, *, step: int | None = None,
                 random_init: bool = False, sha256: str | None = None, device: str | torch.device = "cpu") -> None:
        self.method, self.config, self.source = method, config, source
        self.step, self.random_init, self.device = step, random_init, torch.device(device)
        self._sha256 = sha256

    def __repr__(self) -> str:
        return (f"PretrainedModel({self.config.method.name}, {self.source!r}, step={self.step}, "
                f"video={self.config.model.video['name']}, audio={self.config.model.audio['name']})")

    @property
    def video_encoder(self) -> nn.Module:
        return self.method.video_encoder

    @property
    def audio_encoder(self) -> nn.Module:
        return self.method.audio_encoder

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the checkpoint the weights come from ('' for a random-init model)."""
        if self._sha256 is None:
            from avssl.evaluate.features import file_sha256

            self._sha256 = "" if self.random_init else file_sha256(self.source)
        return self._sha256

    def functions(self, space: str) -> dict[str, Any]:
        """{"video": uint8 clips -> [B, D], "audio": waveforms -> [B, D]} in `space`."""
        video, audio = feature_functions(self.method, check_space(space))
        return {"video": video, "audio": audio}

    def embed_video(self, x: str | os.PathLike | torch.Tensor, *, space: str = "backbone", window: float | None = None,
                    stride: float | None = None, batch: int = 16) -> Embeddings | torch.Tensor:
        """A path -> Embeddings of its windows; uint8 [B, 3, T, S, S] (or [3, T, S, S]) clips at the
        model's size -> float32 [B, D] (or [D]) on the CPU."""
        if isinstance(x, torch.Tensor):
            return self._embed_tensor("video", x, space, batch)
        return self.embed_file(x, "video", space=space, window=window, stride=stride, batch=batch)

    def embed_audio(self, x: str | os.PathLike | torch.Tensor, *, space: str = "backbone", window: float | None = None,
                    stride: float | None = None, batch: int = 16) -> Embeddings | torch.Tensor:
        """A path -> Embeddings of its windows; float waveforms [B, N] (or [N]) at the model's sample
        rate -> float32 [B, D] (or [D]) on the CPU."""
        if isinstance(x, torch.Tensor):
            return self._embed_tensor("audio", x, space, batch)
        return self.embed_file(x, "audio", space=space, window=window, stride=stride, batch=batch)

    def embed_file(self, path: str | os.PathLike, modality: str, *, space: str = "backbone",
                   window: float | None = None, stride: float | None = None, batch: int = 16) -> Embeddings:
        """Embeddings of one modality ("video" or "audio") of a file, window by window."""
        if modality not in ("video", "audio"):
            raise UsageError(f"modality must be 'video' or 'audio', got {modality!r}")
        windows = self.file_windows(path, modality, space=space, window=window, stride=stride, batch=batch)
        return Embeddings(getattr(windows, modality), windows.starts, windows.ends, space, modality, windows.path)

    def file_windows(self, path: str | os.PathLike, modality: str, *, space: str = "backbone",
                     window: float | None = None, stride: float | None = None, batch: int = 16,
                     on_chunk: Any = None) -> FileWindows:
        """Both or one modality of a file's windows (avssl.evaluate.windows.embed_windows)."""
        plan = plan_windows(self.config, modality, window, stride)
        fns = self.functions(space)
        wanted = {name: fn if modality in (name, "both") else None for name, fn in fns.items()}
        with torch.no_grad(), MediaReader(os.fspath(path), backend=self.config.data.backend) as reader:
            return embed_windows(reader, plan, self.config, wanted, batch=batch, device=self.device,
                                 on_chunk=on_chunk)

    def _embed_tensor(self, modality: str, x: torch.Tensor, space: str, batch: int) -> torch.Tensor:
        single_ndim = 4 if modality == "video" else 1
        if x.dim() not in (single_ndim, single_ndim + 1):
            shape = "[B, 3, T, H, W] or [3, T, H, W]" if modality == "video" else "[B, N] or [N]"
            raise UsageError(f"embed_{modality}: expected a tensor {shape}, got shape {list(x.shape)}")
        if modality == "video" and x.dtype != torch.uint8:
            raise UsageError(f"embed_video: expected uint8 frames in [0, 255], got {x.dtype}")
        if modality == "audio" and not x.is_floating_point():
            raise UsageError(f"embed_audio: expected a float waveform, got {x.dtype}")
        single = x.dim() == single_ndim
        batch_x = x.unsqueeze(0) if single else x
        with torch.no_grad():
            out = run_model(self.functions(space)[modality], batch_x, batch, self.device)
        return out[0] if single else out


def resolve_model_path(path: str | os.PathLike) -> tuple[str, str]:
    """(kind, path): ("random", "random:CONFIG"), ("export", DIR), ("checkpoint", FILE) for a
    checkpoint file or a run dir (its checkpoints/last.ckpt). UsageError naming the path otherwise."""
    from avssl.evaluate.export_format import is_export_dir
    from avssl.evaluate.model_loading import RANDOM_PREFIX

    text = os.fspath(path)
    if text.startswith(RANDOM_PREFIX):
        return "random", text
    p = Path(text)
    if p.is_dir():
        if is_export_dir(p):
            return "export", text
        if (p / "checkpoints" / "last.ckpt").is_file():
            return "checkpoint", str(p / "checkpoints" / "last.ckpt")
        raise UsageError(f"{text}: a folder that is neither a run dir (no checkpoints/last.ckpt) "
                         "nor an export of `avssl export` (no config.json)")
    if not p.is_file():
        raise UsageError(f"{text}: no such checkpoint, run dir or export dir (or give random:CONFIG)")
    return "checkpoint", text


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> PretrainedModel:
    """The model at `path`: a run dir of `avssl pretrain` (RUN_DIR/checkpoints/last.ckpt), a `.ckpt`,
    an export dir of `avssl export`, or `random:CONFIG` (a random-init baseline), in eval mode on
    `device` with gradients off."""
    from avssl.evaluate.export_format import load_export
    from avssl.evaluate.model_loading import load_model

    kind, resolved = resolve_model_path(path)
    if kind == "export":
        method, config, meta = load_export(resolved, device)
        return PretrainedModel(method, config, resolved, step=meta.get("step"), random_init=meta.get("random_init", False),
                               sha256=meta.get("sha256", ""), device=device)
    loaded = load_model(resolved, device)
    return PretrainedModel(loaded.method, loaded.config, resolved, step=loaded.step,
                           random_init=loaded.random_init, device=device)
