"""What every dataset adapter returns, and small helpers for reading annotation files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from avssl.errors import UsageError


@dataclass(frozen=True)
class Entry:
    """One file of a dataset: absolute `path`, class `label`, `split` name and source `group`.

    `group` identifies the source recording (clips of one group must stay on one side of a split);
    empty means unknown (each file is its own source).
    """

    path: str
    label: str
    split: str
    group: str


class Adapter(Protocol):
    def __call__(self, root: str, split: int | None = None, *, class_list: str | None = None,
                 name_template: str | None = None) -> list[Entry]: ...


def require_dir(path: str, what: str) -> str:
    if not os.path.isdir(path):
        raise UsageError(f"{path}: {what} not found (is the dataset root right?)")
    return path


def require_file(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise UsageError(f"{path}: {what} not found (is the dataset root right?)")
    return path


def first_existing(candidates: list[str], what: str) -> str:
    """The first existing path among `candidates`; a UsageError listing them all otherwise."""
    for path in candidates:
        if os.path.exists(path):
            return path
    raise UsageError(f"{what} not found; looked for: {', '.join(candidates)}")


def check_split(dataset: str, split: int | None, allowed: tuple[int, ...]) -> int:
    if split is None:
        raise UsageError(f"--dataset {dataset} needs --split N (one of {', '.join(map(str, allowed))})")
    if split not in allowed:
        raise UsageError(f"--dataset {dataset}: --split {split} is not one of {', '.join(map(str, allowed))}")
    return split


def reject_split(dataset: str, split: int | None, why: str) -> None:
    if split is not None:
        raise UsageError(f"--dataset {dataset} takes no --split: {why}")


def reject_option(dataset: str, option: str, value: str | None) -> None:
    if value is not None:
        raise UsageError(f"--dataset {dataset} takes no {option}")


def read_lines(path: str) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a text annotation file."""
    with open(path, encoding="utf-8-sig") as f:
        return [(n, line.strip()) for n, line in enumerate(f, start=1) if line.strip()]
