"""Helpers and fixtures of the training tests: a tiny config, generated videos, the CLI in a
subprocess. A module with a unique name, since `conftest` is not importable reliably when several
test folders have one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from avssl.data.probing import build_manifest, probe_paths
from avssl.media.writer import write_media

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "method": {"name": "avts", "min_offset": 0.5, "curriculum": {"easy_steps": 2, "ramp_steps": 0}},
    "seed": 0,
    "model": {"video": {"name": "r2plus1d_18-tiny"}, "audio": {"name": "vgg_audio-tiny"},
              "embed_dim": 16, "projection_hidden": 32},
    "data": {"batch_size": 4, "num_workers": 0, "pin_memory": False, "max_failures": 5,
             "clip": {"frames": 4, "fps": 8.0}, "video_augment": {"size": 16},
             "logmel": {"compute_dtype": "float32", "n_mels": 32}},
    "optim": {"lr": 0.003, "warmup_steps": 1},
    "trainer": {"max_steps": 6, "accelerator": "cpu", "devices": 1, "precision": "32",
                "log_every_n_steps": 1, "checkpoint_every_n_steps": 3, "progress_bar": False},
}


def write_videos(folder: Path, count: int, seed: int = 0) -> list[str]:
    """`count` mp4 files of 3 s (25 fps, 48x64, 16 kHz noise audio), different per file."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"clip{i}.mp4"
        frames = np.repeat(rng.integers(0, 256, (1, 6, 8, 3), dtype=np.uint8), 75, axis=0)
        frames = np.kron(frames, np.ones((1, 8, 8, 1), dtype=np.uint8))  # 75 x 48 x 64 blocks
        frames = (frames.astype(np.int16) + np.arange(75)[:, None, None, None] * (i + 1)) % 256
        audio = (rng.standard_normal(3 * 16000) * 0.1).astype(np.float32)
        write_media(str(path), frames.astype(np.uint8), 25, audio, 16000)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> list[str]:
    return write_videos(tmp_path_factory.mktemp("videos"), 8)


@pytest.fixture(scope="session")
def manifest(tmp_path_factory, videos) -> Path:
    path = tmp_path_factory.mktemp("manifest") / "train.csv"
    build_manifest(videos, probe_paths(videos, workers=0, progress=False)).save(path)
    return path


@pytest.fixture()
def tiny_config(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def tiny(**overrides):
    """The tiny config with dotted overrides, e.g. tiny(**{"trainer.max_steps": 2})."""
    from avssl.config.overrides import apply_overrides
    from avssl.methods.configs import config_from_dict

    return config_from_dict(apply_overrides(TINY, [f"{k}={v}" for k, v in overrides.items()]))


@pytest.fixture(scope="session")
def labelled_manifest(tmp_path_factory, videos) -> Path:
    """The same videos labelled 'even' / 'odd' (for the online probe)."""
    path = tmp_path_factory.mktemp("labelled") / "probe.csv"
    labels = {p: ("even" if i % 2 == 0 else "odd", "", "") for i, p in enumerate(videos)}
    build_manifest(videos, probe_paths(videos, workers=0, progress=False), labels).save(path)
    return path


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory, manifest, labelled_manifest) -> Path:
    """A finished 6-step run (checkpoints every 3 steps, a loss logged every step, the online probe
    every 3 steps; the probe does not change training, so a resume without it matches)."""
    from avssl.train.engine import pretrain

    run_dir = tmp_path_factory.mktemp("uninterrupted")
    probe = {"probe.manifest": str(labelled_manifest), "probe.every_n_steps": 3, "probe.k": 3}
    pretrain(tiny(**probe), manifest, run_dir)
    return run_dir


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m avssl ARGS` in a subprocess (as a user runs it): returncode, stdout, stderr."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", "avssl", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO)


def losses(metrics_csv: Path) -> dict[int, float]:
    """step -> train/loss from a metrics.csv."""
    import csv

    with open(metrics_csv, newline="") as f:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")}
