"""docs/api.md runs: every ```python block, in order, in one namespace, in a folder holding a tiny
run (runs/avts-tiny), a 3-second clip.mp4 and a silent.mp4 without audio."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from use_support import write_av, write_run

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_page_has_examples():
    blocks = python_blocks(API_DOC.read_text())
    lines = [line for line in blocks[0].splitlines() if line.strip()]
    assert len(blocks) >= 6 and "avssl.load(" in lines[1] and len(lines) == 4  # import + three lines


def test_api_examples_run(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "runs" / "avts-tiny", overrides=(), step=5)
    write_av(tmp_path / "clip.mp4", 3.0)
    write_av(tmp_path / "silent.mp4", 1.0, audio=False)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, block in enumerate(python_blocks(API_DOC.read_text()), 1):
        try:
            exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)
        except Exception as err:  # noqa: BLE001 - report which block failed
            pytest.fail(f"docs/api.md python block {number} failed: {type(err).__name__}: {err}\n{block}")
    printed = capsys.readouterr().out
    assert "(3, 128) [0. 1. 2.]" in printed  # 1 s windows of a 3 s clip
    assert "avts 5 True" in printed and "silent.mp4: no audio stream" in printed
    assert "torch.Size([2, 128])" in printed and "torch.Size([64])" in printed
