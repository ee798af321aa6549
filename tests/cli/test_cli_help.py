"""`avssl --version`, and every `avssl eval TASK --help` describes the task with an example."""

from __future__ import annotations

import pytest

import avssl
from avssl import cli


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"avssl {avssl.__version__}"


@pytest.mark.parametrize("task", ["linear", "knn", "retrieval", "fingerprint-metric", "fingerprint", "compare"])
def test_each_eval_task_has_a_description_and_an_example(task, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["eval", task, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert stop.value.code == 0 and len(description.split()) > 10, out
    assert "examples:" in out and f"avssl eval {task} " in out.split("examples:")[1]
