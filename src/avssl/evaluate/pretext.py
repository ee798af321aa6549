"""Held-out accuracy of temporal-av's pretext heads: does the model tell playback direction and
temporal order on files it never trained on?

Samples come from the method's own recipe and loader (random windows, speeds, directions and
orders drawn from the config's seed), run through the model in eval mode (centre crops). Only the
heads whose labels are uniform on any file are scored: video and audio direction (2 classes),
video and audio sub-clip order (n! classes) and audio-visual order (3 classes). The speed heads are
left out: on files
shorter than the fastest speed's window the recipe draws only the slower speeds, so their labels
are skewed and chance is not 1/C.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader

from avssl.data.dataset import ClipDataset, SampleKey, collate_samples
from avssl.data.views import order_classes

SCORED_HEADS = ("video_direction", "audio_direction", "video_order", "audio_order", "av_order")


def chance_levels(method: Any) -> dict[str, float]:
    """1/C of each scored head, and their mean."""
    p = method.params
    orders = 1.0 / len(order_classes(p.num_subclips, p.merge_reverse_order))
    levels = {"video_direction": 0.5, "audio_direction": 0.5, "video_order": orders, "audio_order": orders,
              "av_order": 1.0 / 3.0}
    levels["mean"] = sum(levels.values()) / len(levels)
    return levels


@torch.no_grad()
def pretext_accuracy(method: Any, table: Any, samples: int = 192) -> dict[str, float]:
    """Accuracy of each scored head over `samples` samples of `table` (files cycle when fewer), their
    mean, `chance_<head>` for each, and `n_samples`. Leaves the method in the mode it found it in."""
    correct = {name: 0 for name in SCORED_HEADS}
    seen = {name: 0 for name in SCORED_HEADS}
    count = 0
    was_training = method.training
    method.eval()
    try:
        for batch in recipe_batches(method, table):
            batch = {k: v.to(method.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            logits = method.pretext_logits(method.encode(batch))
            labels = method.pretext_labels(batch)
            for name in SCORED_HEADS:
                correct[name] += int((logits[name].argmax(1) == labels[name]).sum())
                seen[name] += len(labels[name])
            count += len(batch["video"])
            if count >= samples:
                break
    finally:
        method.train(was_training)
    result = {name: correct[name] / seen[name] for name in SCORED_HEADS}
    result["mean"] = sum(result.values()) / len(SCORED_HEADS)
    result.update({f"chance_{k}": v for k, v in chance_levels(method).items()})
    result["n_samples"] = float(count)
    return result


def recipe_batches(method: Any, table: Any) -> Iterator[dict[str, Any]]:
    """Endless batches of the method's own training samples of `table`, epoch after epoch (each draws
    new windows, speeds, directions and orders): the sampler and batching of pretraining, one process."""
    config = method.config
    recipe = method.recipe(table)
    sampler, _ = recipe.train_sampler(rank=0, world_size=1)
    dataset = ClipDataset(table, recipe, seed=config.seed, backend=config.data.backend,
                          substitute=sampler.successor)
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        keys = [SampleKey(int(i), epoch, None, int(d)) for i, d in sampler.draws()]
        yield from DataLoader(dataset, sampler=keys, batch_size=config.data.batch_size, drop_last=True,
                              num_workers=config.data.num_workers, collate_fn=collate_samples)
        epoch += 1
