"""`avssl demo --quick` end to end for avts: the report is written, every number is finite, training
lowered the loss, and the pretrained model beats its random initialisation on a headline metric."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from avssl.cli import demo as demo_cli
from avssl.errors import UsageError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    demo_cli.add_arguments(parser)
    return parser.parse_args(argv)


def _numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield float(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)


def test_unknown_method_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="unknown method"):
        demo_cli.run(_parse(["--out", str(tmp_path / "d"), "--method", "simclr", "--quick"]))


@pytest.mark.slow
def test_demo_quick_avts(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo_cli.run(_parse(["--out", str(out), "--quick"])) == 0
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["avts"]
    numbers = list(_numbers(results))
    assert numbers and all(math.isfinite(v) for v in numbers)
    avts = results["methods"]["avts"]
    for side in ("pretrained", "random"):
        assert 0.0 <= avts[side]["ucf_video_linear"]["top1"] <= 1.0
        assert avts[side]["cross_modal_retrieval"]["n_queries"] > 0
    loss = avts["loss"]["train/loss"]
    assert loss["last"] < loss["first"]
    headline = [row for row in avts["comparison"] if row["headline"]]
    assert {row["evaluation"] for row in headline} == {"ucf_video_linear", "esc_audio_linear",
                                                       "cross_modal_retrieval"}
    assert any(row["pretrained"] > row["random"] for row in headline), headline
    assert "| avts | ucf_video_linear | top1 |" in report
    assert (out / "loss_avts.png").stat().st_size > 0 and (out / "embedding_avts.png").stat().st_size > 0
    assert "report:" in capsys.readouterr().out
