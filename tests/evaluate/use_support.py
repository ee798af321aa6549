"""Helpers of the "use your model" tests (avssl.load, avssl embed, avssl export): small media files,
run dirs with a checkpoint in the format `avssl pretrain` writes, and a verb called through its
own parser. A module with a unique name (several test folders have a conftest)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import numpy as np
import torch

from avssl.config.bundled import resolve_config_path
from avssl.config.schema import config_to_dict
from avssl.evaluate.model_loading import build_random
from avssl.media.writer import write_media
from avssl.methods.configs import load_config
from avssl.train.checkpoint_format import TRAINING_FORMAT_VERSION

# the tiny world's clip shape, smaller: 4 frames at 8 fps (0.5 s), 16 px crops; avts-tiny's audio
# embedding then has the tiny audio map's 3 time steps to bin, not 6
TINY_OVERRIDES = ("data.clip.frames=4", "data.video_augment.size=16", "data.logmel.n_mels=32",
                  "method.audio_time_bins=3")


def write_av(path: Path, seconds: float, *, fps: float = 25.0, audio: bool = True, video: bool = True,
             seed: int = 0, size: tuple[int, int] = (48, 64)) -> str:
    """An mp4 (or wav when video=False) of `seconds` with moving random blocks and noise audio."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    frames = None
    if video:
        blocks = rng.integers(0, 256, (1, size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        frames = np.kron(np.repeat(blocks, n, axis=0), np.ones((1, 8, 8, 1), dtype=np.uint8))
        frames = ((frames.astype(np.int16) + np.arange(n)[:, None, None, None] * 7) % 256).astype(np.uint8)
    wave = (rng.standard_normal(int(seconds * 16000)) * 0.1).astype(np.float32) if audio else None
    write_media(str(path), frames, fps, wave, 16000)
    return str(path)


def write_long_av(path: Path, seconds: float, *, fps: float = 16.0, size: tuple[int, int] = (128, 160)) -> str:
    """A long mp4 written a frame and a second of audio at a time (a moving gradient and a tone that
    changes every second), so that the test process never holds the file's frames."""
    n, (h, w) = int(round(seconds * fps)), size
    y, x, c = np.arange(h)[:, None, None], np.arange(w)[None, :, None], np.arange(3)[None, None, :]
    frames = (((x * 3 + y * 2 + c * 40 + i * 5) % 256).astype(np.uint8) for i in range(n))
    t = np.arange(16000) / 16000
    audio = ((0.2 * np.sin(2 * np.pi * (220 + 20 * (k % 10)) * t)).astype(np.float32) for k in range(int(seconds)))
    write_media(str(path), frames, fps, audio, 16000, num_frames=n, frame_size=(h, w), preset="ultrafast")
    return str(path)


def corrupt_file(path: Path) -> str:
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return str(path)


def tiny_config(name: str = "avts-tiny", overrides: tuple[str, ...] = TINY_OVERRIDES):
    return load_config(resolve_config_path(name), list(overrides))


def write_run(root: Path, name: str = "avts-tiny", overrides: tuple[str, ...] = TINY_OVERRIDES,
              step: int = 5) -> Path:
    """RUN_DIR/checkpoints/last.ckpt holding what `avssl pretrain` stores (state_dict, avssl_config,
    avssl_format_version, avssl_method, global_step), with weights moved away from random init."""
    config = tiny_config(name, overrides)
    method = build_random(config)
    generator = torch.Generator().manual_seed(step)
    with torch.no_grad():
        for p in method.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": method.state_dict(), "avssl_config": config_to_dict(config),
                "avssl_format_version": TRAINING_FORMAT_VERSION, "avssl_method": config.method.name,
                "global_step": step}, root / "checkpoints" / "last.ckpt")
    return root


def run_verb(module_name: str, argv: list[str]) -> int:
    """The verb avssl.cli.<module_name> run with `argv`, as `avssl VERB argv` runs it (UsageError -> 2)."""
    from avssl.errors import UsageError

    module = importlib.import_module(f"avssl.cli.{module_name}")
    parser = argparse.ArgumentParser(prog=module_name)
    module.add_arguments(parser)
    try:
        return int(module.run(parser.parse_args(argv)) or 0)
    except UsageError as err:
        print(f"avssl {module_name}: error: {err}")
        return 2


def pretrain_run(root: Path, name: str = "avts-tiny", steps: int = 2) -> Path:
    """A real `avssl pretrain` run of `steps` steps on four 3 s videos (a few seconds on a CPU)."""
    from avssl.data.probing import build_manifest, probe_paths
    from avssl.train.engine import pretrain

    videos = [write_av(root / f"train{i}.mp4", 3.0, seed=10 + i) for i in range(4)]
    manifest = root / "train.csv"
    build_manifest(videos, probe_paths(videos, workers=0, progress=False)).save(manifest)
    overrides = (*TINY_OVERRIDES, f"trainer.max_steps={steps}", "data.batch_size=4", "data.num_workers=0",
                 "data.persistent_workers=false", f"trainer.checkpoint_every_n_steps={steps}",
                 "trainer.progress_bar=false", "trainer.log_every_n_steps=1")
    pretrain(tiny_config(name, overrides), manifest, root / "run")
    return root / "run"
