"""`avssl demo --quick --method all` end to end: the report is written, every number in it is finite,
and each pretrained method beats its random initialisation on at least one headline metric."""

from __future__ import annotations

import argparse
import json
import math
import re

import pytest

from avssl.cli import demo as demo_cli
from avssl.errors import UsageError
from avssl.evaluate.demo import METHODS


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


def _report_numbers(text: str) -> list[str]:
    """Every number-like token of the report's table rows (nan and inf included)."""
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return [tok for line in rows for tok in re.findall(r"(?<![\w@])(?:-?\d+(?:\.\d+)?|nan|inf)(?![\w@])", line)]


@pytest.mark.slow
def test_demo_quick_every_method_beats_random(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo_cli.run(_parse(["--out", str(out), "--quick", "--method", "all"])) == 0
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == list(METHODS)

    numbers = list(_numbers(results))
    assert numbers and all(math.isfinite(v) for v in numbers)
    tokens = _report_numbers(report)
    # pretrained, random and chance in each row of the table
    assert len(tokens) == 3 * sum(len(r["comparison"]) for r in results["methods"].values())
    assert all(math.isfinite(float(t)) for t in tokens), tokens

    for method, r in results["methods"].items():
        for side in ("pretrained", "random"):
            assert 0.0 <= r[side]["ucf_video_linear"]["top1"] <= 1.0
            assert r[side]["cross_modal_retrieval"]["n_queries"] > 0
        headline = [row for row in r["comparison"] if row["headline"]]
        expected = {"ucf_video_linear", "esc_audio_linear", "cross_modal_retrieval"}
        assert {row["evaluation"] for row in headline} == expected | ({"avts_sync"} if method == "avts" else set())
        assert any(row["pretrained_better"] for row in headline), (method, headline)
        assert f"| {method} | ucf_video_linear | **top1** |" in report
        assert (out / f"loss_{method}.png").stat().st_size > 0
        assert (out / f"embedding_{method}.png").stat().st_size > 0

    # AVTS is judged on its own pretext too: held-out sync accuracy above the untrained model's and chance
    sync = {row["metric"]: row for row in results["methods"]["avts"]["comparison"] if row["evaluation"] == "avts_sync"}
    assert sync["all"]["pretrained"] > max(sync["all"]["random"], 0.5), sync
    loss = results["methods"]["avts"]["loss"]["train/loss"]
    assert loss["end"] < loss["start"]
    assert "report:" in capsys.readouterr().out
