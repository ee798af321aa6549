"""`avssl eval compare` / compare.comparison_table: results of several models side by side, with the
difference to the baseline, chance, and the spread over seeds."""

from __future__ import annotations

import json

import pytest

from avssl import cli
from avssl.evaluate.compare import chance_level, comparison_table


@pytest.fixture(autouse=True)
def eval_verb(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "eval", ("evaluate", "evaluate"))


def test_table_has_one_column_per_model_a_delta_and_chance():
    lines = comparison_table([
        ("pretrained", "ucf linear", {"top1": 0.5, "top5": 0.75, "seed": 0, "n_classes": 4}),
        ("random", "ucf linear", {"top1": 0.25, "top1_std": 0.125, "top5": 0.5, "seeds": [0, 1, 2], "n_classes": 4}),
        ("pretrained", "ucf a<->v", {"recall@1": 0.1}),
    ])
    assert lines[0] == "| evaluation | metric | pretrained | random | pretrained - random | chance |"
    assert lines[2:] == ["| ucf linear | top1 | 0.5000 | 0.2500 ± 0.1250 (n=3) | +0.2500 | 0.2500 |",
                         "| ucf linear | top5 | 0.7500 | 0.5000 | +0.2500 | 1.0000 |",
                         "| ucf a<->v | recall@1 | 0.1000 |  |  |  |"]


def test_several_files_of_one_model_are_seeds_mean_std_n():
    lines = comparison_table([("pre", "lin", {"top1": 0.6}), ("pre", "lin", {"top1": 0.8}),
                              ("random", "lin", {"top1": 0.2}), ("random", "lin", {"top1": 0.4})])
    assert lines[2] == "| lin | top1 | 0.7000 ± 0.1000 (n=2) | 0.3000 ± 0.1000 (n=2) | +0.4000 |  |"


def test_no_baseline_model_no_delta_column():
    lines = comparison_table([("a", "linear", {"top1": 0.5}), ("a", "retrieval", {"recall@1": 0.25})],
                             metrics=["top1", "recall@1"])
    assert lines[0] == "| evaluation | metric | a | chance |"
    assert lines[2:] == ["| linear | top1 | 0.5000 |  |", "| retrieval | recall@1 | 0.2500 |  |"]


def test_chance_of_cross_modal_recall_and_median_rank_over_files():
    one = {"a2v_median_rank": 3.0, "n_queries": 10, "provenance": {"config": {"match": "path"}}}
    assert chance_level("recall@5", one) == 0.5 and chance_level("a2v_recall@1", one) == 0.1
    assert chance_level("median_rank", one) == 5.5
    assert chance_level("recall@1", {**one, "provenance": {"config": {"match": "label"}}}) is None
    two = {**one, "n_queries": 30, "runs": [{"a2v_median_rank": 1.0, "n_queries": 10},
                                            {"a2v_median_rank": 1.0, "n_queries": 20}]}
    assert chance_level("recall@1", two) == pytest.approx((0.1 + 0.05) / 2)
    assert chance_level("mean", {"chance_mean": 0.3}) == 0.3


def test_compare_cli_reads_result_files(tmp_path, capsys):
    (tmp_path / "a.json").write_text(json.dumps({"task": "linear", "top1": 0.9}))
    (tmp_path / "b.json").write_text(json.dumps({"task": "linear", "top1": 0.4}))
    code = cli.main(["eval", "compare", f"pre:lin={tmp_path / 'a.json'}", f"rnd:lin={tmp_path / 'b.json'}",
                     "--baseline", "rnd", "--out", str(tmp_path / "t.md")])
    out = capsys.readouterr().out
    assert code == 0 and "| lin | top1 | 0.9000 | 0.4000 | +0.5000 |  |" in out
    assert (tmp_path / "t.md").read_text() == out
    assert cli.main(["eval", "compare", "no-colon=a.json"]) == 2
    (tmp_path / "list.json").write_text("[1, 2]")
    assert cli.main(["eval", "compare", f"a:b={tmp_path / 'list.json'}"]) == 2
    assert "not a result" in capsys.readouterr().err
