"""Full fine-tuning on a labelled manifest, tested with the field's clip -> video aggregation.

Model: the pretrained video encoder + a linear head (`video`), or the AVCL audio-visual classifier
(`av`: encoders + AMFM + head, files without audio masked; the default for avcl checkpoints). Every
weight trains. Training: one random synchronised window per file and epoch, random resized crop and
flip (avssl.data.recipes.finetune.FinetuneRecipe), cross-entropy, AdamW with a cosine schedule.
Test: `clips_per_video` centre-cropped clips spread uniformly over each test file
(avssl.data.sampling.evenly_spaced_starts); their logits are averaged, top-1 of the average. A plain torch
loop: the runs are small, and the Lightning engine's resumable pretraining loader does not fit a
labelled, two-split task.
"""

from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from avssl.config.typed import require
from avssl.data.clip_io import read_video_clip
from avssl.data.dataset import ClipDataset, FileTable, SampleKey, collate_samples
from avssl.data.recipes.avcl import read_audio_or_silence
from avssl.data.recipes.finetune import FinetuneRecipe, LabelledTable
from avssl.data.sampling import evenly_spaced_starts
from avssl.errors import UsageError
from avssl.media import MediaError, MediaReader
from avssl.models.heads import LinearClassifier

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """`key=value` options of `avssl finetune` (defaults are assumed: CPU-scale, not a paper's recipe)."""

    model: Literal["auto", "video", "av"] = "auto"
    max_steps: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.5
    label_smoothing: float = 0.0
    clips_per_video: int = 3
    num_workers: int = 2
    seed: int = 0

    def validate(self, where: str) -> None:
        for key in ("max_steps", "batch_size", "clips_per_video"):
            require(getattr(self, key) > 0, f"{where}.{key}" if where else key, "must be positive")
        require(self.lr > 0, "lr", "must be positive")
        require(0 <= self.dropout < 1, "dropout", "must be in [0, 1)")
        require(self.num_workers >= 0, "num_workers", "must be >= 0")


class VideoClassifier(nn.Module):
    """Video encoder + dropout + linear head: prepared clips [B, 3, T, H, W] -> logits [B, classes]."""

    def __init__(self, encoder: nn.Module, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = LinearClassifier(encoder.out_dim, num_classes, dropout)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(clips))


class EpochKeys(Sampler):
    """Endless SampleKeys: a new permutation of the files each epoch (seeded), epoch in the key."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed

    def __iter__(self) -> Iterator[SampleKey]:
        for epoch in itertools.count():
            for i in np.random.default_rng([self.seed, epoch]).permutation(self.n):
                yield SampleKey(int(i), epoch)

    def __len__(self) -> int:
        return 2**31 - 1


class TestClips(Dataset):
    """File i -> {"video": uint8 [N, 3, T, S, S], "audio": [N, samples], "present": bool, "index", "error"}."""

    def __init__(self, table: FileTable, config: Any, clips: int) -> None:
        self.table, self.config, self.clips = table, config, clips

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> dict[str, Any]:
        c, aug = self.config.data.clip, self.config.data.video_augment
        starts = evenly_spaced_starts(float(self.table.durations[i]), max(c.video_seconds, c.audio_window),
                                      self.clips, c.fps)
        present = bool(self.table.has_audio[i])
        try:
            with MediaReader(self.table.paths[i], backend=self.config.data.backend) as reader:
                video = torch.stack([read_video_clip(reader, s, c.frames, c.fps, aug, None) for s in starts])
                audio = torch.stack([read_audio_or_silence(reader, present, s, c.audio_window, c.sample_rate)[0]
                                     for s in starts])
        except MediaError as err:
            return {"index": i, "error": err.reason or str(err)}
        return {"index": i, "error": "", "video": video, "audio": audio, "present": present}


class Finetuner:
    """One model (built fresh per run from the loaded method) trained and tested on one split."""

    def __init__(self, method: Any, options: FinetuneConfig, num_classes: int, class_names: list[str],
                 checkpoint: str | None, device: str | torch.device = "cpu") -> None:
        self.config = method.config
        self.options = options
        self.device = device
        kind = options.model
        if kind == "auto":
            kind = "av" if self.config.method.name == "avcl" else "video"
        self.kind = kind
        if kind == "av":
            from avssl.methods.avcl_finetune import AVCLFinetune
            from avssl.train.checkpoint_format import read_checkpoint

            if self.config.method.name != "avcl":
                raise UsageError("model=av needs an avcl checkpoint or config (its fusion and head settings)")
            model = AVCLFinetune(self.config, num_classes, class_names)
            if checkpoint is not None:
                model.load_pretrained(read_checkpoint(checkpoint)["state_dict"], checkpoint)
            self.method = model
        else:
            self.method = method
            model = VideoClassifier(copy.deepcopy(method.video_encoder), num_classes, options.dropout)
        self.model = model.to(device)

    def logits(self, video: torch.Tensor, audio: torch.Tensor, present: torch.Tensor, train: bool) -> torch.Tensor:
        video = video.to(self.device)
        if self.kind == "av":
            return self.model(video, audio.to(self.device), present, train=False)
        return self.model(self.method.video_input(video, train=False))

    def train(self, table: FileTable, labels: np.ndarray) -> list[float]:
        """Train for options.max_steps; returns the loss of each step."""
        o = self.options
        if len(table) < o.batch_size:
            raise UsageError(f"batch_size={o.batch_size} is more than the {len(table)} training files")
        torch.manual_seed(o.seed)
        dataset = ClipDataset(table, FinetuneRecipe(LabelledTable(table, labels), self.config, train=True), seed=o.seed,
                              backend=self.config.data.backend)
        loader = DataLoader(dataset, sampler=EpochKeys(len(table), o.seed), batch_size=o.batch_size,
                            num_workers=o.num_workers, collate_fn=collate_samples, drop_last=True)
        params = [p for p in self.model.parameters()]
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=o.max_steps)
        self.model.train()
        losses = []
        for step, batch in zip(range(o.max_steps), loader):
            logits = self.logits(batch["video"], batch["audio"], batch["audio_present"], train=True)
            loss = F.cross_entropy(logits, batch["label"].to(logits.device), label_smoothing=o.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            if step % 10 == 0:
                log.info("step %d: loss %.4f", step, losses[-1])
        return losses

    @torch.no_grad()
    def test(self, table: FileTable, labels: np.ndarray) -> dict:
        """top-1 of the clip-averaged logits over the test files (files that fail to decode are skipped)."""
        self.model.eval()
        loader = DataLoader(TestClips(table, self.config, self.options.clips_per_video), batch_size=None,
                            num_workers=self.options.num_workers)
        correct, failed = [], []
        for item in loader:
            if item["error"]:
                failed.append({"path": str(table.paths[item["index"]]), "reason": item["error"]})
                continue
            n = len(item["video"])
            present = torch.full((n,), item["present"], dtype=torch.bool)
            logits = self.logits(item["video"], item["audio"], present, train=False).float().mean(dim=0)
            correct.append(int(logits.argmax()) == int(labels[item["index"]]))
        if not correct:
            raise UsageError("no test file could be decoded")
        return {"top1": float(np.mean(correct)), "n_test": len(correct), "failed": failed}
