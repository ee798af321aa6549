"""Training-step throughput: of one encoder (`--model`), or of a whole method's step (`--config`).

`--model NAME`: builds the encoder with a linear head and times forward + backward (cross-entropy on
random labels) on random input. `--config CONFIG`: times the method's full training step (encoders,
heads, device-side augmentation, log-mel, losses, optimiser) on a batch its recipe built from
generated media (see avssl.bench.train_methods). Both report clips/s as JSON.

Example:
  avssl bench train --config avts-tiny --steps 5
  avssl bench train --model r2plus1d_18-tiny --frames 16 --size 112 --batch 4 --steps 5 --device cpu
  avssl bench train --model r2plus1d_18 --device cuda --precision bf16 --channels-last --batch 32
  avssl bench train --model resnet18_audio --mel-bins 64 --mel-frames 100 --batch 64
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Callable

import torch
from torch import nn

from avssl.bench.timing import autocast_for, timed_steps
from avssl.errors import UsageError
from avssl.models.device import DEVICE_HELP, resolve_device
from avssl.models.factory import (
    build_audio_encoder,
    build_video_encoder,
    is_video_encoder_name,
)
from avssl.models.heads import LinearClassifier

logger = logging.getLogger(__name__)

_BENCH_CLASSES = 400  # the Kinetics-400 head of the reference models


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--config", help="a method config file or bundled name (e.g. avts-tiny): time its training step")
    which.add_argument("--model",
                        help="encoder name, e.g. r2plus1d_18, r2plus1d_18-tiny, r3d_18, mc3_18, resnet18_audio, "
                             "vgg_audio-tiny")
    parser.add_argument("--frames", type=int, default=16, help="video clip length T (default 16)")
    parser.add_argument("--size", type=int, default=112, help="video frame height and width (default 112)")
    parser.add_argument("--mel-bins", type=int, default=64, help="audio log-mel bins (default 64)")
    parser.add_argument("--mel-frames", type=int, default=100, help="audio log-mel frames (default 100: 1 s at 10 ms)")
    parser.add_argument("--batch", type=int, help="clips per step (default 8, or the config's data.batch_size)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="fp32, or bf16 autocast (default fp32)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last(_3d) memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (with --config)")


def build_bench_model(name: str, frames: int, size: int, mel_bins: int, mel_frames: int,
                      num_classes: int = _BENCH_CLASSES) -> tuple[nn.Module, Callable[[int], torch.Tensor]]:
    """The encoder ``name`` with a linear head, and a function ``batch -> random input`` of its shape
    (video ``[B, 3, frames, size, size]``, audio ``[B, 1, mel_bins, mel_frames]``)."""
    if is_video_encoder_name(name):
        encoder = build_video_encoder(name)
        shape: tuple[int, ...] = (3, frames, size, size)
    else:
        encoder = build_audio_encoder(name)
        shape = (1, mel_bins, mel_frames)
    model = nn.Sequential(encoder, LinearClassifier(encoder.out_dim, num_classes))
    return model, lambda batch: torch.randn(batch, *shape)


def _check_args(args: argparse.Namespace) -> torch.device:
    for key in ("frames", "size", "mel_bins", "mel_frames", "batch", "steps"):
        if getattr(args, key) < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(args, key)}")
    if args.warmup < 0:
        raise UsageError(f"--warmup must be >= 0, got {args.warmup}")
    return torch.device(resolve_device(args.device))


def time_training_steps(model: nn.Module, make_input: Callable[[int], torch.Tensor], batch: int, steps: int,
                        warmup: int, device: torch.device, precision: str = "fp32",
                        channels_last: bool = False, compile_model: bool = False) -> dict[str, Any]:
    """Time ``steps`` forward + backward passes after ``warmup`` untimed ones; returns the figures."""
    model = model.to(device).train()
    inputs = make_input(batch).to(device)
    if channels_last:
        memory_format = torch.channels_last_3d if inputs.dim() == 5 else torch.channels_last
        model = model.to(memory_format=memory_format)
        inputs = inputs.contiguous(memory_format=memory_format)
    labels = torch.randint(0, _BENCH_CLASSES, (batch,), device=device)
    step_model = torch.compile(model) if compile_model else model
    autocast = autocast_for(device, precision)

    def step() -> None:
        for p in model.parameters():
            p.grad = None
        with autocast:
            loss = nn.functional.cross_entropy(step_model(inputs).float(), labels)
        loss.backward()

    elapsed = timed_steps(step, warmup, steps, device)
    return {
        "clips_per_s": round(batch * steps / elapsed, 3),
        "ms_per_step": round(1000 * elapsed / steps, 2),
        "seconds": round(elapsed, 3),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.config:
        from avssl.bench.train_methods import run_method_benchmark

        return run_method_benchmark(args)
    if args.overrides:
        raise UsageError("key=value overrides need --config")
    args.batch = 8 if args.batch is None else args.batch
    device = _check_args(args)
    model, make_input = build_bench_model(args.model, args.frames, args.size, args.mel_bins, args.mel_frames)
    encoder = model[0]
    logger.info("benchmarking %s (%s) on %s", args.model, encoder.config, device)
    figures = time_training_steps(model, make_input, args.batch, args.steps, args.warmup, device,
                                  args.precision, args.channels_last, args.compile)
    input_shape = list(make_input(1).shape[1:])
    return {
        "benchmark": "train",
        "model": args.model,
        "encoder_config": encoder.config,
        "parameters": sum(p.numel() for p in model.parameters()),
        "input_shape": input_shape,
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "torch": torch.__version__,
        **figures,
    }
