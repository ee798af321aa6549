"""`avssl finetune` on pretraining's engine: each split a run folder (config.yaml, metrics.csv,
checkpoints/last.ckpt) and results.json with each split's top-1 and their mean; a run killed with
SIGKILL resumes to the losses of an uninterrupted one; a finished split is not trained again; a
changed protocol is refused on resume; linear mode trains the head alone; 2-process CPU DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml
from train_support import REPO, TINY, losses, run_cli

from avssl import cli
from avssl.data.probing import build_manifest, probe_paths
from avssl.train.checkpoint_io import safe_load

RECIPE = {
    "finetune": {"model": "video", "mode": "full", "dropout": 0.0, "clips_per_video": 2},
    "seed": 0,
    "data": {"batch_size": 2, "num_workers": 0},
    "optim": {"lr": 0.01, "warmup_steps": 1},
    "trainer": {"max_steps": 6, "accelerator": "cpu", "devices": 1, "precision": "32", "log_every_n_steps": 1,
                "checkpoint_every_n_steps": 3, "progress_bar": False},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, videos):
    """The 8 training-test videos labelled even/odd, 6 in 'train' and 2 in 'test'; the tiny model
    config (random:CONFIG is the checkpoint); the recipe."""
    root = tmp_path_factory.mktemp("finetune_inputs")
    labels = {p: ("even" if i % 2 == 0 else "odd", "train" if i < 6 else "test", "") for i, p in enumerate(videos)}
    build_manifest(videos, probe_paths(videos, workers=0, progress=False), labels).save(root / "split.csv")
    (root / "model.yaml").write_text(yaml.safe_dump(TINY))
    (root / "recipe.yaml").write_text(yaml.safe_dump(RECIPE))
    return root


def finetune_args(inputs, out, *extra, splits=1):
    data = [a for _ in range(splits) for a in ("--data", str(inputs / "split.csv"))]
    return ["finetune", "--recipe", str(inputs / "recipe.yaml"), "--checkpoint", f"random:{inputs / 'model.yaml'}",
            *data, "--out", str(out), "--device", "cpu", *extra]


@pytest.fixture(scope="module")
def finished(inputs, tmp_path_factory):
    """A two-split run of 6 steps, run in a subprocess (the thread count of the SIGKILL test's)."""
    out = tmp_path_factory.mktemp("finished") / "ft"
    proc = run_cli(*finetune_args(inputs, out, splits=2), env={"OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_each_split_is_a_run_folder_and_results_hold_each_top1_and_the_mean(finished):
    out, proc = finished
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    results = json.loads((out / "results.json").read_text())
    assert printed["top1"] == results["top1"]
    assert [s["split"] for s in results["splits"]] == ["split1", "split2"]
    top1 = [s["top1"] for s in results["splits"]]
    assert results["top1"] == pytest.approx(sum(top1) / 2) and results["n_splits"] == 2
    for split in results["splits"]:
        assert split["n_test"] == 2 and split["n_train"] == 6 and split["step"] == 6 and split["model"] == "video"
        assert split["top1"] * 2 == round(split["top1"] * 2)  # a share of whole test files
    for name in ("split1", "split2"):
        run = out / name
        assert (run / "config.yaml").read_text().startswith("# avssl pretrain:")
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["finetune"]["clips_per_video"] == 2 and saved["trainer"]["max_steps"] == 6
        assert sorted(losses(run / "metrics.csv")) == list(range(6))
        checkpoint = safe_load(run / "checkpoints" / "last.ckpt")
        assert checkpoint["global_step"] == 6 and checkpoint["avssl_task"] == "finetune"
        assert checkpoint["avssl_finetune"]["model"] == "video" and checkpoint["avssl_class_names"] == ["even", "odd"]
        assert safe_load(run / "checkpoints" / "last.prev.ckpt")["global_step"] == 3
    # two splits of one manifest and one seed train alike
    assert losses(out / "split1" / "metrics.csv") == losses(out / "split2" / "metrics.csv")


def test_a_finetuned_checkpoint_loads_as_its_classifier(finished):
    from avssl.evaluate.model_loading import load_model
    from avssl.methods.finetune import VideoClassifier

    path = finished[0] / "split1" / "checkpoints" / "last.ckpt"
    loaded = load_model(str(path))
    assert isinstance(loaded.method, VideoClassifier) and loaded.step == 6
    assert torch.equal(loaded.method.head.fc.weight, safe_load(path)["state_dict"]["head.fc.weight"])


def test_a_finished_run_is_not_trained_again_and_a_changed_protocol_is_refused(finished, inputs, tmp_path, capsys):
    import shutil

    out = tmp_path / "ft"
    shutil.copytree(finished[0], out)
    before = (out / "split1" / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    assert cli.main(finetune_args(inputs, out, splits=2)) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [s["top1"] for s in again["splits"]] == [s["top1"] for s in json.loads((finished[0] / "results.json")
                                                                                  .read_text())["splits"]]
    assert (out / "split1" / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before
    # more steps: a resume; another dropout: another protocol, refused naming the key
    code = cli.main(finetune_args(inputs, out, "max_steps=8", "finetune.dropout=0.2"))
    assert code == 2 and "finetune.dropout" in capsys.readouterr().err


KILL_AT_STEP_4 = """
import os, signal, sys
import torch
from avssl.train import callbacks
real = callbacks.Throughput.on_train_batch_end
def on_train_batch_end(self, trainer, *args):
    real(self, trainer, *args)
    if trainer.global_step == 4:
        os.kill(os.getpid(), signal.SIGKILL)
callbacks.Throughput.on_train_batch_end = on_train_batch_end
from avssl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_then_resume_matches_uninterrupted(inputs, finished, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILL_AT_STEP_4))
    out = tmp_path / "ft"
    env = {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(script), *finetune_args(inputs, out)], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, **env})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert safe_load(out / "split1" / "checkpoints" / "last.ckpt")["global_step"] == 3
    assert not (out / "results.json").exists()

    # the same command again, with a loader worker this time (it fetches ahead of training)
    proc = run_cli(*finetune_args(inputs, out, "data.num_workers=1"), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected, got = losses(finished[0] / "split1" / "metrics.csv"), losses(out / "split1" / "metrics.csv")
    assert sorted(got) == list(range(6)), "earlier rows kept, each step logged once"
    for step in range(6):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    result = json.loads((out / "results.json").read_text())
    assert result["splits"][0]["top1"] == json.loads((finished[0] / "results.json").read_text())["splits"][0]["top1"]


def test_linear_mode_trains_the_head_alone(inputs, tmp_path, capsys):
    from avssl.evaluate.model_loading import load_model

    out = tmp_path / "ft"
    assert cli.main(finetune_args(inputs, out, "finetune.mode=linear", "max_steps=3", "optim.lr=0.1")) == 0
    state = safe_load(out / "split1" / "checkpoints" / "last.ckpt")["state_dict"]
    initial = load_model(f"random:{inputs / 'model.yaml'}").method.video_encoder.state_dict()
    # weights and batch-norm running statistics: the frozen encoder stays as pretrained (eval mode)
    assert all(torch.equal(value, state[f"video_encoder.{key}"]) for key, value in initial.items())
    assert not any(k.startswith("audio_encoder.") for k in state)
    assert state["head.fc.weight"].shape[0] == 2
    assert state["head.fc.weight"].abs().max() > 0.05  # moved from its N(0, 0.01) start at lr 0.1


@pytest.mark.slow
def test_two_process_ddp_finetune_completes(inputs, tmp_path):
    out = tmp_path / "ft"
    # two splits: the processes Lightning starts for the first fit take part in the second
    proc = run_cli(*finetune_args(inputs, out, "trainer.strategy=ddp", "trainer.devices=2", "max_steps=3", splits=2),
                   timeout=300)  # 6 training files, 2 ranks: 3 each, a batch of 2 per rank
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("split1", "split2"):
        assert safe_load(out / name / "checkpoints" / "last.ckpt")["global_step"] == 3
        assert sorted(losses(out / name / "metrics.csv")) == [0, 1, 2]
    # rank 0 alone tests and reports
    assert len([line for line in proc.stdout.splitlines() if line.startswith("{")]) == 1
    assert [s["n_test"] for s in json.loads((out / "results.json").read_text())["splits"]] == [2, 2]


def test_device_defaults_to_auto_and_sets_the_trainer():
    from avssl.cli.finetune import device_overrides

    for verb in ("finetune", "embed"):
        parser = cli._build_parser(verb)
        verb_parser = parser._subparsers._group_actions[0].choices[verb]
        assert verb_parser.get_default("device") == "auto", verb
    assert device_overrides("auto") == []
    assert device_overrides("cpu") == ["trainer.accelerator=cpu", "trainer.devices=1"]


def test_folds_of_one_manifest_each_test_on_their_fold(inputs, videos, tmp_path, capsys):
    labels = {p: ("even" if i % 2 == 0 else "odd", str(1 + i // 4), "") for i, p in enumerate(videos)}
    build_manifest(videos, probe_paths(videos, workers=0, progress=False), labels).save(tmp_path / "folds.csv")
    out = tmp_path / "ft"
    args = finetune_args(inputs, out, "finetune.folds=[1,2]", "max_steps=2")
    args[args.index(str(inputs / "split.csv"))] = str(tmp_path / "folds.csv")
    assert cli.main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(s["split"], s["n_train"], s["n_test"]) for s in result["splits"]] == [("fold1", 4, 4), ("fold2", 4, 4)]
    assert (out / "fold2" / "checkpoints" / "last.ckpt").is_file()
    # two manifests for a folds protocol: refused naming the key
    assert cli.main(args + ["--data", str(tmp_path / "folds.csv")]) == 2
    assert "finetune.folds" in capsys.readouterr().err
