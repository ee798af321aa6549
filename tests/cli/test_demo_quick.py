"""`avssl demo --quick --method all` end to end: the report is written, every number in it is finite,
and each pretrained method beats its random initialisation on at least one headline metric."""

from __future__ import annotations

import argparse
import json
import math
import re

import numpy as np
import pytest

from avssl.cli import demo as demo_cli
from avssl.demo.pipeline import METHODS
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
        expected = {"ucf_video_linear", "esc_audio_linear", "cross_modal_retrieval",
                    *{"avts": ["avts_sync"], "temporal-av": ["temporal_pretext"]}.get(method, [])}
        assert {row["evaluation"] for row in headline} == expected
        assert any(row["pretrained_better"] for row in headline), (method, headline)
        assert f"| {method} | ucf_video_linear | **top1** |" in report
        assert (out / f"loss_{method}.png").stat().st_size > 0
        assert (out / f"accuracy_{method}.png").stat().st_size > 0  # every method logs an accuracy
        assert (out / f"embedding_{method}.png").stat().st_size > 0  # pretrained beside random init
        assert (out / f"probe_{method}.png").stat().st_size > 0  # the online probe's learning curve
        assert f"![probe](probe_{method}.png)" in report
        assert isinstance(r["pretrained"]["ucf_video_linear"]["n_classes"], int)
        assert isinstance(r["random"]["cross_modal_retrieval"]["n_queries"], int)
        assert r["provenance"]["checkpoint"]["sha256"] and r["provenance"]["features"]["random"]
    assert {"config", "inputs", "code_version", "created_utc"} <= set(results["provenance"])
    assert (out / "curriculum_avts.png").exists() and (out / "queue_temporal-av.png").exists()

    # AVTS is judged on its own pretext too: held-out sync accuracy above the untrained model's and chance
    sync = {row["metric"]: row for row in results["methods"]["avts"]["comparison"] if row["evaluation"] == "avts_sync"}
    assert sync["all"]["pretrained"] > max(sync["all"]["random"], 0.5), sync
    # temporal-av on its own heads: held-out direction and order accuracy above the untrained model's and chance
    heads = next(row for row in results["methods"]["temporal-av"]["comparison"]
                 if row["evaluation"] == "temporal_pretext" and row["metric"] == "mean")
    assert heads["pretrained"] > max(heads["random"], heads["chance"]), heads
    loss = results["methods"]["avts"]["loss"]["train/loss"]
    assert loss["end"] < loss["start"]
    assert "report:" in capsys.readouterr().out


def test_video_probe_runs_on_each_ucf_style_split(tiny_world):
    from avssl.data.adapters import get_adapter
    from avssl.demo.pipeline import UCF_SPLITS, ucf_split_features
    from avssl.evaluate.features import Features

    root = str(tiny_world / "ucf")
    entries = get_adapter("ucf101")(root, 1, class_list=None, name_template=None)
    n = len(entries)
    features = Features(path=np.array([e.path for e in entries]), label=np.array([e.label for e in entries]),
                        split=np.array([e.split for e in entries]), group=np.array([e.group for e in entries]),
                        video=np.zeros((n, 4), dtype=np.float32), source="ucf.npz")
    per_split = ucf_split_features(features, str(tiny_world))
    assert len(per_split) == len(UCF_SPLITS) == 3
    for k, f in zip(UCF_SPLITS, per_split):
        expected = {e.path: e.split for e in get_adapter("ucf101")(root, k, class_list=None, name_template=None)}
        assert f.split.tolist() == [expected[p] for p in f.path.tolist()]
        assert f.source == f"ucf.npz (split {k})"
    # the splits test different clips
    assert len({tuple(f.split.tolist()) for f in per_split}) == 3


def test_compare_counts_a_tie_as_not_better_and_ranks_lower_as_better():
    from avssl.demo.comparison import compare

    def results(top1, rank):
        return {"ucf_video_linear": {"top1": top1, "top5": 0.5, "n_classes": 12},
                "esc_audio_linear": {"top1": 1.0, "top5": 1.0, "n_classes": 6},
                "cross_modal_retrieval": {"median_rank": rank, "recall@1": 0.0, "recall@5": 0.0,
                                          "a2v_median_rank": rank, "v2a_median_rank": rank, "n_queries": 192}}

    # 23/144 twice, as two means over the three splits came out in one demo run
    a, b = 0.15972222222222224, 0.1597222222222222
    assert a > b
    rows = {(r["evaluation"], r["metric"]): r for r in compare(results(a, 50.0), results(b, 90.0))}
    assert not rows["ucf_video_linear", "top1"]["pretrained_better"]
    assert rows["cross_modal_retrieval", "median_rank"]["pretrained_better"]
    assert rows["cross_modal_retrieval", "median_rank"]["chance"] == 96.5
    assert rows["ucf_video_linear", "top1"]["chance"] == pytest.approx(1 / 12)
    assert rows["ucf_video_linear", "top1"]["headline"] and not rows["ucf_video_linear", "top5"]["headline"]
    rows = {(r["evaluation"], r["metric"]): r for r in compare(results(0.3, 95.0), results(0.2, 90.0))}
    assert rows["ucf_video_linear", "top1"]["pretrained_better"]
    assert not rows["cross_modal_retrieval", "median_rank"]["pretrained_better"]


def test_full_demo_trains_each_method_for_its_tiny_configs_steps_and_the_report_says_so():
    """Without --quick or --steps each method trains as long as its tiny config asks (AVTS needs more
    steps than the others to tell in-sync audio from shifted audio); --steps N overrides all."""
    import dataclasses

    from avssl.demo.pipeline import FULL, QUICK, method_steps
    from avssl.demo.report import _steps_phrase
    from avssl.methods.configs import load_config

    for method in METHODS:
        own = load_config(f"configs/{method}-tiny.yaml").trainer.max_steps
        assert method_steps(FULL, f"{method}-tiny") == own
        assert method_steps(QUICK, f"{method}-tiny") == 300
        assert method_steps(dataclasses.replace(FULL, steps=7), f"{method}-tiny") == 7
    own = {"scale": "default", "steps": None, "methods": {"avts": {"steps": 1500}, "av-nce": {"steps": 600}}}
    assert _steps_phrase(own) == "pretraining steps of each method's tiny config (avts 1500, av-nce 600)"
    assert _steps_phrase({**own, "steps": 300}) == "300 pretraining steps per method"
