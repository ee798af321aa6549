"""`avssl eval compare` / report.comparison_table: results of several models side by side."""

from __future__ import annotations

import json

import pytest

from avssl import cli
from avssl.evaluate.report import comparison_table


@pytest.fixture(autouse=True)
def eval_verb(monkeypatch):
    monkeypatch.setitem(cli.VERBS, "eval", ("evaluate", "evaluate"))


def test_table_has_one_column_per_model_and_one_row_per_metric():
    lines = comparison_table([
        ("pretrained", "ucf linear", {"top1": 0.5, "top5": 0.75, "seed": 0, "n_queries": 3}),
        ("random", "ucf linear", {"top1": 0.25, "top1_std": 0.125, "top5": 0.5}),
        ("pretrained", "ucf a<->v", {"recall@1": 0.1}),
    ])
    assert lines[0] == "| evaluation | metric | pretrained | random |"
    assert lines[2:] == ["| ucf linear | top1 | 0.5000 | 0.2500 ± 0.1250 |",
                         "| ucf linear | top5 | 0.7500 | 0.5000 |",
                         "| ucf a<->v | recall@1 | 0.1000 |  |"]


def test_compare_cli_reads_result_files(tmp_path, capsys):
    (tmp_path / "a.json").write_text(json.dumps({"task": "linear", "top1": 0.9}))
    (tmp_path / "b.json").write_text(json.dumps({"task": "linear", "top1": 0.4}))
    code = cli.main(["eval", "compare", f"pre:lin={tmp_path / 'a.json'}", f"rnd:lin={tmp_path / 'b.json'}",
                     "--out", str(tmp_path / "t.md")])
    out = capsys.readouterr().out
    assert code == 0 and "| lin | top1 | 0.9000 | 0.4000 |" in out
    assert (tmp_path / "t.md").read_text() == out
    assert cli.main(["eval", "compare", "no-colon=a.json"]) == 2


def test_requested_metrics_appear_only_where_a_model_has_them():
    lines = comparison_table([("a", "linear", {"top1": 0.5}), ("a", "retrieval", {"recall@1": 0.25})],
                             metrics=["top1", "recall@1"])
    assert lines[2:] == ["| linear | top1 | 0.5000 |", "| retrieval | recall@1 | 0.2500 |"]
