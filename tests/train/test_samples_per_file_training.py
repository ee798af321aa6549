"""data.samples_per_file in training: the config keys, a loader epoch in which every file gives its
count of samples with different windows, 7 files filling a batch of 16, the refusal that says how
many samples an epoch has, and a SIGKILL resume of a weighted run to the same keys and losses."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections import defaultdict

import pytest
import torch
import yaml
from train_support import REPO, TINY, losses, tiny

from avssl.config.typed import ConfigError
from avssl.data.dataset import usable_table
from avssl.data.manifest import Manifest
from avssl.data.probing import build_manifest, probe_paths
from avssl.errors import UsageError
from avssl.methods.registry import method_class
from avssl.train.checkpoint_io import safe_load
from avssl.train.data import build_loader
from avssl.train.engine import pretrain

WEIGHTED = {"data.samples_per_file.seconds": 1.0}  # the 3 s test videos give 3 samples each


def test_config_default_overrides_and_refusals():
    default = tiny().data.samples_per_file
    assert (default.seconds, default.max) == (10.0, 64)
    custom = tiny(**{"data.samples_per_file.seconds": "null", "data.samples_per_file.max": 8})
    assert (custom.data.samples_per_file.seconds, custom.data.samples_per_file.max) == (None, 8)
    with pytest.raises(ConfigError, match="did you mean 'data.samples_per_file.max'"):
        tiny(**{"data.samples_per_file.maxi": 8})
    with pytest.raises(ConfigError, match="did you mean 'data.samples_per_file'"):
        tiny(**{"data.sample_per_file.max": 8})
    with pytest.raises(ConfigError, match="data.samples_per_file.seconds"):
        tiny(**{"data.samples_per_file.seconds": 0})
    with pytest.raises(ConfigError, match="data.samples_per_file.max"):
        tiny(**{"data.samples_per_file.max": 0})


def loader_for(config, manifest, rank=0, world_size=1):
    table, _ = usable_table(Manifest.load(manifest))
    return build_loader(method_class(config.method.name)(config), table, config, rank, world_size)


def test_an_epoch_draws_each_file_by_its_length_with_its_own_windows(manifest):
    loader = loader_for(tiny(**WEIGHTED), manifest)
    assert len(loader) == 6  # 8 files x 3 samples, batches of 4
    samples = defaultdict(dict)
    for batch in loader:
        for i, (index, draw) in enumerate(zip(batch["key_index"].tolist(), batch["key_draw"].tolist())):
            samples[index][draw] = (float(batch["video_start"][i]), batch["video"][i])
    assert sorted(samples) == list(range(8))
    for draws in samples.values():
        assert sorted(draws) == [0, 1, 2]
        videos = [video for _, video in draws.values()]
        assert not any(torch.equal(videos[a], videos[b]) for a, b in ((0, 1), (0, 2), (1, 2)))
    starts = {(index, start) for index, draws in samples.items() for start, _ in draws.values()}
    assert len(starts) > 16  # most draws of a file start elsewhere in it


@pytest.fixture(scope="module")
def seven(tmp_path_factory, videos):
    path = tmp_path_factory.mktemp("seven") / "seven.csv"
    build_manifest(videos[:7], probe_paths(videos[:7], workers=0, progress=False)).save(path)
    return path


def test_seven_files_train_a_batch_of_16_when_their_samples_fill_it(tmp_path, seven):
    config = tiny(**{"data.batch_size": 16, "trainer.max_steps": 2, **WEIGHTED})  # 21 samples
    pretrain(config, seven, tmp_path / "run")
    assert sorted(losses(tmp_path / "run" / "metrics.csv")) == [0, 1]


def test_too_few_samples_for_a_batch_say_how_many_and_which_key(tmp_path, seven):
    with pytest.raises(UsageError) as refused:
        pretrain(tiny(**{"data.batch_size": 16}), seven, tmp_path / "run")
    message = str(refused.value)
    assert "'data.batch_size': 16 is more than the 7 usable files give per epoch: 7 samples" in message
    assert "data.samples_per_file.seconds" in message
    with pytest.raises(UsageError, match="21 samples, 11 per process over 2 processes"):
        loader_for(tiny(**{"data.batch_size": 16, **WEIGHTED}), seven, rank=1, world_size=2)


KILL_SCRIPT = """
import os, signal, sys
import lightning as L
import torch
from avssl.methods.configs import load_config
from avssl.train.engine import pretrain

class KillAfterStep(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == 4:
            os.kill(os.getpid(), signal.SIGKILL)

torch.set_num_threads(int(sys.argv[4]))
pretrain(load_config(sys.argv[1]), sys.argv[2], sys.argv[3], callbacks=[KillAfterStep()])
"""


def key_rows(folder):
    return [tuple(map(int, line.split(","))) for line in (folder / "keys-rank0.csv").read_text().split()]


def test_weighted_run_killed_mid_epoch_resumes_to_the_same_keys_and_losses(tmp_path, manifest, monkeypatch):
    overrides = {"samples_per_file": {"seconds": 1.0}}  # 24 samples: 6 batches, all in epoch 0
    monkeypatch.setenv("AVSSL_RECORD_KEYS", str(tmp_path / "keys-whole"))
    pretrain(tiny(**WEIGHTED), manifest, tmp_path / "whole")
    config = tmp_path / "weighted.yaml"
    config.write_text(yaml.safe_dump({**TINY, "data": {**TINY["data"], **overrides}}))
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    monkeypatch.setenv("AVSSL_RECORD_KEYS", str(tmp_path / "keys-killed"))
    run_dir = tmp_path / "run"
    threads = str(torch.get_num_threads())
    proc = subprocess.run([sys.executable, str(script), str(config), str(manifest), str(run_dir), threads],
                          capture_output=True, text=True, timeout=180, cwd=REPO, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 3  # mid-epoch

    monkeypatch.setenv("AVSSL_RECORD_KEYS", str(tmp_path / "keys-resumed"))
    pretrain(tiny(**{"data.num_workers": 2, **WEIGHTED}), manifest, run_dir)

    resumed = key_rows(tmp_path / "keys-resumed")
    assert resumed == [row for row in key_rows(tmp_path / "keys-whole") if row[0] >= 3]
    assert len({index for _, index, _, _ in resumed}) < len(resumed)  # files drawn more than once
    assert len({(index, draw) for _, index, _, draw in resumed}) == len(resumed)  # each draw once
    expected, got = losses(tmp_path / "whole" / "metrics.csv"), losses(run_dir / "metrics.csv")
    assert sorted(got) == list(range(6))
    for step in range(6):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    with pytest.raises(ConfigError, match="data.samples_per_file.seconds"):  # other samples: not this run
        pretrain(tiny(**{"data.samples_per_file.seconds": 2.0, "trainer.max_steps": 8}), manifest, run_dir)
