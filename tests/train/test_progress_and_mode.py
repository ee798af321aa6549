"""What a run shows when its log is not a terminal, and the mode a method trains in."""

from __future__ import annotations

import logging

import torch

from avssl.train.callbacks import progress_line
from avssl.train.engine import pretrain
from train_support import tiny


def test_progress_line_reports_step_percent_time_left_and_metrics():
    line = progress_line(120, 600, 60.0, 100, {"train/loss": torch.tensor(3.21014), "train/clips_per_s": 12.43})
    # 100 steps took 60 s: the remaining 480 take 288 s
    assert line == "step 120/600 (20%), 60 s, 288 s left: train/clips_per_s 12.43, train/loss 3.21"


def test_log_file_gets_progress_lines_not_a_bar(tmp_path, manifest, caplog, capsys):
    # under pytest stderr is captured, so not a terminal
    config = tiny(**{"trainer.progress_bar": "true", "trainer.max_steps": 3})
    with caplog.at_level(logging.INFO, logger="avssl.train.callbacks"):
        pretrain(config, manifest, tmp_path / "run")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert lines[0].startswith("step 1/3 (33%)") and lines[-1].startswith("step 3/3 (100%)")
    assert "train/loss" in lines[-1]
    assert "it/s]" not in capsys.readouterr().err  # no tqdm bar


def test_method_evaluated_before_fit_trains_in_train_mode(tmp_path, manifest, monkeypatch):
    from lightning.pytorch import Callback

    import avssl.train.engine as engine

    seen = []

    class RecordModes(Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(all(m.training for m in pl_module.modules()))

    # pretrain builds its own method: put it in eval mode the way an evaluation before fit would
    original = engine.prepare_method
    monkeypatch.setattr(engine, "prepare_method", lambda method, config: original(method, config).eval())
    pretrain(tiny(**{"trainer.max_steps": 2}), manifest, tmp_path / "run", callbacks=[RecordModes()])
    assert seen == [True, True]
