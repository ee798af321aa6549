"""Training-step throughput of a method: steps/s and clips/s of its full training step (encoders,
heads, device-side augmentation, log-mel, loss, backward, optimiser step) on a batch held in memory.

The batch is built once by the method's own data recipe from a few generated media files (untimed),
so the timed loop does no decoding: it measures the model side of `avssl pretrain` only.

Run through `avssl bench train --config ...`, e.g.:
  avssl bench train --config avts-tiny --steps 5
  avssl bench train --config configs/avts.yaml --device cuda --batch 32 --precision bf16 --channels-last
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from avssl.bench.timing import autocast_for, timed_steps
from avssl.errors import UsageError


def _write_sources(folder: Path, config: Any, count: int) -> list[str]:
    """`count` short mp4 files long enough for the config's clips (and hard negatives)."""
    from avssl.media.writer import write_media

    clip = config.data.clip
    # long enough for hard negatives and for the movie sampler's several clips per file
    seconds = max(max(clip.video_seconds, clip.audio_window) * 3 + 1.0, 8.0)
    fps, size = 25, max(64, config.data.video_augment.size + 16)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        frames = rng.integers(0, 256, (int(seconds * fps), size, size, 3), dtype=np.uint8)
        audio = (rng.standard_normal(int(seconds * clip.sample_rate)) * 0.1).astype(np.float32)
        path = folder / f"source{i}.mp4"
        write_media(str(path), frames, fps, audio, clip.sample_rate)
        paths.append(str(path))
    return paths


def synthetic_batch(method: Any, config: Any, batch: int) -> dict[str, Any]:
    """One training batch of `method` built by its recipe and sampler from generated files."""
    from avssl.data.dataset import usable_table
    from avssl.data.probing import build_manifest, probe_paths
    from avssl.train.data import build_loader

    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_sources(Path(tmp), config, count=max(4, min(batch, 8)))
        table, _ = usable_table(build_manifest(paths, probe_paths(paths, workers=0, progress=False)))
        # the loader's own batches are at most one epoch of the few generated files
        small = dataclasses.replace(config.data, batch_size=min(config.data.batch_size, len(table)), num_workers=0)
        loader = build_loader(method, table, dataclasses.replace(config, data=small), rank=0, world_size=1)
        samples = []
        for item in loader:
            samples.append(item)
            if sum(len(s["key_index"]) for s in samples) >= batch:
                break
        # repeat whole batches to reach the requested size (a sampler may plan batches of its own)
        out: dict[str, Any] = {}
        for key in samples[0]:
            if isinstance(samples[0][key], torch.Tensor):
                whole = torch.cat([s[key] for s in samples])
                reps = -(-batch // len(whole))
                out[key] = whole.repeat(reps, *[1] * (whole.dim() - 1))[:batch]
        out["failures"] = []
        return out


def time_method_steps(config: Any, batch: Optional[int] = None, steps: int = 5, warmup: int = 2,
                      device: str = "cpu", precision: str = "fp32", channels_last: bool = False,
                      compile_model: bool = False) -> dict[str, Any]:
    """steps/s and clips/s of `config`'s method on one in-memory batch (no decoding in the loop)."""
    from avssl.methods.registry import method_class
    from avssl.train.engine import prepare_method

    batch = batch or config.data.batch_size
    trainer_cfg = dataclasses.replace(config.trainer, channels_last_3d=channels_last, compile=compile_model)
    config = dataclasses.replace(config, trainer=trainer_cfg)
    torch.manual_seed(config.seed)
    method = method_class(config.method.name)(config)
    data = synthetic_batch(method, config, batch)
    dev = torch.device(device)
    method = prepare_method(method.to(dev).train(), config)
    data = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in data.items()}
    optimizer = method.configure_optimizers()["optimizer"]
    autocast = autocast_for(dev, precision)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = method.training_step(data, 0)
        loss.backward()
        optimizer.step()

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")  # no Trainer attached: logging is off
        elapsed = timed_steps(step, warmup, steps, dev)
    return {
        "method": config.method.name,
        "video_encoder": config.model.video["name"],
        "audio_encoder": config.model.audio["name"],
        "batch": batch,
        "frames": config.data.clip.frames,
        "size": config.data.video_augment.size,
        "steps": steps,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "channels_last": channels_last,
        "compile": compile_model,
        "steps_per_s": round(steps / elapsed, 4),
        "clips_per_s": round(batch * steps / elapsed, 3),
        "ms_per_step": round(1000 * elapsed / steps, 2),
    }


def run_method_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """`avssl bench train --config ...`: the figures of time_method_steps as a JSON-ready dict."""
    from avssl.config.bundled import resolve_config_path
    from avssl.methods.configs import load_config
    from avssl.models.device import resolve_device

    if args.steps < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 1):
        raise UsageError("--steps and --batch must be at least 1, --warmup at least 0")
    args.device = resolve_device(args.device)
    config = load_config(resolve_config_path(args.config), args.overrides)
    figures = time_method_steps(config, args.batch, args.steps, args.warmup, args.device, args.precision,
                                args.channels_last, args.compile)
    return {"benchmark": "train", "config": args.config, "torch": torch.__version__, **figures}
