"""What a run shows on a terminal (one line refreshed in place) and when its log is not one (log
lines), and the mode a method trains in."""

from __future__ import annotations

import io
import logging

import torch

from avssl.train.callbacks import ProgressLog, progress_line, terminal_line
from avssl.train.engine import pretrain
from train_support import tiny


def test_progress_line_reports_step_percent_time_left_and_metrics():
    line = progress_line(120, 600, 60.0, 100, {"train/loss": torch.tensor(3.21014), "train/clips_per_s": 12.43})
    # 100 steps took 60 s: the remaining 480 take 288 s
    assert line == "step 120/600 (20%), 60 s, 288 s left: train/clips_per_s 12.43, train/loss 3.21"


def test_terminal_line_shows_global_step_clips_per_s_and_time_left():
    line = terminal_line(120, 600, 60.0, 100, {"train/loss": torch.tensor(3.21014), "train/clips_per_s": 12.43})
    assert line == "step 120/600 (20%) | 12.4 clips/s | 4:48 left | loss 3.21"
    assert terminal_line(1, 5000, 1.0, 1, {}) == "step 1/5000 (0%) | - clips/s | 1:23:19 left"


def test_terminal_gets_one_line_refreshed_in_place(tmp_path, manifest, caplog):
    stream = io.StringIO()
    progress = ProgressLog(terminal=True, stream=stream, refresh_s=0.0)
    with caplog.at_level(logging.INFO, logger="avssl.train.callbacks"):
        pretrain(tiny(**{"trainer.max_steps": 3}), manifest, tmp_path / "run", callbacks=[progress])
    shown = stream.getvalue()
    assert shown.endswith("\n") and shown.count("\n") == 1  # redrawn with \r, one newline at the end
    frames = [f.removesuffix("\x1b[K") for f in shown.rstrip("\n").split("\r") if f]
    assert [f.split(" | ")[0] for f in frames] == ["step 1/3 (33%)", "step 2/3 (67%)", "step 3/3 (100%)"]
    assert "clips/s" in frames[-1] and "left" in frames[-1] and "loss " in frames[-1]
    assert not [r for r in caplog.records if r.getMessage().startswith("step ")]  # no log lines on a terminal


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
