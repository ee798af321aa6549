"""The test of a fine-tuned model, the field's clip -> video aggregation: `clips_per_video` clips spread
uniformly over each test file (avssl.data.sampling.evenly_spaced_starts, centre crop), their logits
averaged, top-1 of the average. Training runs on the Lightning engine (avssl.train.finetune); this
module only reads test files and runs the model's `predict_logits`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avssl.data.clip_io import read_audio_clip, read_video_clip
from avssl.data.dataset import FileTable
from avssl.data.recipes.avcl import read_audio_or_silence
from avssl.data.recipes.finetune import LabelledTable
from avssl.data.sampling import evenly_spaced_starts
from avssl.errors import UsageError
from avssl.evaluate.progress import progress
from avssl.media import MediaError, MediaReader

log = logging.getLogger(__name__)


class TestClips(Dataset):
    """File i -> {"video": uint8 [N, 3, T, S, S] (when `reads` has video), "audio": [N, samples] (when it
    has audio), "present": bool, "index", "error"}: N clips at evenly spaced starts."""

    def __init__(self, table: FileTable, config: Any, clips: int, reads: tuple[str, ...] = ("video",)) -> None:
        self.table, self.config, self.clips, self.reads = table, config, clips, reads

    def __len__(self) -> int:
        return len(self.table)

    def _span(self) -> float:
        c = self.config.data.clip
        return max(c.video_seconds, c.audio_window) if "video" in self.reads else c.audio_window

    def __getitem__(self, i: int) -> dict[str, Any]:
        c, aug = self.config.data.clip, self.config.data.video_augment
        starts = evenly_spaced_starts(float(self.table.durations[i]), self._span(), self.clips, c.fps)
        present = bool(self.table.has_audio[i])
        item: dict[str, Any] = {"index": i, "error": "", "present": present}
        try:
            with MediaReader(self.table.paths[i], backend=self.config.data.backend) as reader:
                if "video" in self.reads:
                    item["video"] = torch.stack([read_video_clip(reader, s, c.frames, c.fps, aug, None) for s in starts])
                    if "audio" in self.reads:
                        item["audio"] = torch.stack([read_audio_or_silence(reader, present, s, c.audio_window,
                                                                           c.sample_rate)[0] for s in starts])
                elif "audio" in self.reads:
                    item["audio"] = torch.stack([read_audio_clip(reader, s, c.audio_window, c.sample_rate)
                                                 for s in starts])
        except MediaError as err:
            return {"index": i, "error": err.reason or str(err)}
        return item


@torch.no_grad()
def clip_averaged_accuracy(model: Any, test: LabelledTable, config: Any, clips: int, device: str | torch.device,
                           workers: int = 0, desc: str = "test") -> dict[str, Any]:
    """top-1 of the clip-averaged logits over the test files (a file that fails to decode is skipped
    and listed in `failed`); `model` is a fine-tuning model of avssl.methods.finetune."""
    model.to(device).eval()
    dataset = TestClips(test.table, config, clips, tuple(getattr(model, "reads", ("video",))))
    loader = DataLoader(dataset, batch_size=None, num_workers=workers)
    correct, failed = [], []
    for item in progress(loader, len(dataset), desc):
        if item["error"]:
            failed.append({"path": str(test.table.paths[item["index"]]), "reason": item["error"]})
            continue
        video, audio = item.get("video"), item.get("audio")
        n = len(video if video is not None else audio)
        present = torch.full((n,), item["present"], dtype=torch.bool, device=device)
        logits = model.predict_logits(video.to(device) if video is not None else None,
                                      audio.to(device) if audio is not None else None, present)
        correct.append(int(logits.float().mean(dim=0).argmax()) == int(test.labels[item["index"]]))
    if not correct:
        raise UsageError("no test file could be decoded")
    if failed:
        log.warning("%s: %d test files failed to decode and are left out (first: %s: %s)", desc, len(failed),
                    failed[0]["path"], failed[0]["reason"])
    return {"top1": float(np.mean(correct)), "n_test": len(correct), "failed": failed}
