"""The method throughput benchmark times real training steps of a method on an in-memory batch."""

from __future__ import annotations

import torch
from train_support import tiny

from avssl.bench.train_methods import synthetic_batch, time_method_steps
from avssl.methods.registry import method_class


def test_synthetic_batch_has_the_recipe_shapes():
    config = tiny()
    method = method_class("avts")(config)
    batch = synthetic_batch(method, config, 6)
    assert batch["video"].shape == (6, 3, 4, 16, 16) and batch["video"].dtype == torch.uint8
    assert batch["audio"].shape == (6, 8000)  # 4 frames at 8 fps = 0.5 s at 16 kHz


def test_time_method_steps_reports_consistent_rates():
    result = time_method_steps(tiny(), batch=4, steps=2, warmup=1)
    assert result["method"] == "avts" and result["batch"] == 4
    assert result["steps_per_s"] > 0
    assert abs(result["clips_per_s"] - 4 * result["steps_per_s"]) < 0.01 * result["clips_per_s"] + 1e-3
