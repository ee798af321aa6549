"""`avssl eval compare`: results of several models side by side, each with its spread over seeds, the
chance level of the metric, and its difference to a baseline model (pretrained - random).

A cell is the mean of the results given for one (model, evaluation): one result file of a run with
`--seeds` (its mean, its `<metric>_std` and its number of seeds), or several files (one per seed:
the mean, population standard deviation and number of the files' values). Chance is what guessing
scores, from the counts the result records: k/C for top-k over C classes, k/N for cross-modal
recall@k over a gallery of N clips matched by path and (N + 1)/2 for their median rank, and the
`chance_<metric>` a result states itself; blank when the result does not say enough.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from avssl.errors import UsageError

DEFAULT_BASELINE = "random"
_TOPK = re.compile(r"^top(\d+)$")
_RECALL = re.compile(r"^(?:a2v_|v2a_)?recall@(\d+)$")


@dataclass(frozen=True)
class Cell:
    """One table cell: the mean over `n` values (seeds or files) and their population std (None: one value)."""

    mean: float
    std: float | None
    n: int

    def text(self) -> str:
        if self.std is None or self.n <= 1:
            return fmt(self.mean)
        return f"{fmt(self.mean)} ± {fmt(self.std)} (n={self.n})"


def fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def chance_level(metric: str, result: dict) -> float | None:
    """What guessing scores on `metric` of `result`, or None when the result does not record enough."""
    stated = result.get(f"chance_{metric}")
    if is_number(stated):
        return float(stated)
    topk = _TOPK.match(metric)
    classes = result.get("n_classes")
    if topk and is_number(classes) and classes > 0:
        return min(int(topk.group(1)), int(classes)) / int(classes)
    cross_modal = "a2v_median_rank" in result and _match_of(result) == "path"
    runs = result.get("runs")
    if cross_modal and isinstance(runs, list) and len(runs) > 1:  # a mean over files: the mean of their chances
        chances = [chance_level(metric, {**run, "provenance": result.get("provenance")}) for run in runs]
        return None if any(c is None for c in chances) else float(np.mean(chances))
    n = result.get("n_queries")
    if not cross_modal or not is_number(n) or n <= 0:
        return None
    recall = _RECALL.match(metric)
    if recall:
        return min(int(recall.group(1)), int(n)) / int(n)
    if metric.endswith("median_rank"):
        return (int(n) + 1) / 2
    return None


def _match_of(result: dict) -> str:
    config = (result.get("provenance") or {}).get("config") or {}
    return str(config.get("match", result.get("match", "path")))


def cell(results: Sequence[dict], metric: str) -> Cell | None:
    """The cell of `metric` over the results of one (model, evaluation); None when none has it."""
    having = [r for r in results if is_number(r.get(metric))]
    if not having:
        return None
    if len(having) == 1:
        r = having[0]
        std = r.get(f"{metric}_std")
        return Cell(float(r[metric]), float(std) if is_number(std) else None, len(r.get("seeds") or []) or 1)
    values = np.array([float(r[metric]) for r in having])
    return Cell(float(values.mean()), float(values.std()), len(values))


def metric_keys(results: Sequence[dict], wanted: Sequence[str] | None) -> list[str]:
    """The metrics shown for an evaluation: `wanted`, or every top-level number but seeds, counts and stds."""
    keys: list[str] = []
    for result in results:
        found = wanted or [k for k, v in result.items() if is_number(v) and k != "seed" and not k.startswith("n_")
                           and not k.endswith("_std") and not k.startswith("chance_")]
        keys += [k for k in found if k not in keys and k in result]
    return keys


def comparison_table(entries: Sequence[tuple[str, str, dict]], metrics: Sequence[str] | None = None,
                     baseline: str | None = DEFAULT_BASELINE) -> list[str]:
    """Markdown lines: entries of (model, evaluation, result); one row per (evaluation, metric), one
    column per model in first-seen order, then `<model> - <baseline>` per other model (when the
    baseline model is among the entries), then chance. Repeated (model, evaluation) entries are
    seeds of one cell (mean ± std (n=...))."""
    models = list(dict.fromkeys(model for model, _, _ in entries))
    evaluations = list(dict.fromkeys(evaluation for _, evaluation, _ in entries))
    grouped: dict[tuple[str, str], list[dict]] = {}
    for model, evaluation, result in entries:
        grouped.setdefault((model, evaluation), []).append(result)
    others = [m for m in models if m != baseline] if baseline in models else []
    header = ["evaluation", "metric", *models, *(f"{m} - {baseline}" for m in others), "chance"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for evaluation in evaluations:
        results = [r for m in models for r in grouped.get((m, evaluation), [])]
        for key in metric_keys(results, metrics):
            cells = {m: cell(grouped.get((m, evaluation), []), key) for m in models}
            row = [evaluation, key, *("" if cells[m] is None else cells[m].text() for m in models)]
            base = cells.get(baseline) if others else None
            row += ["" if base is None or cells[m] is None else f"{cells[m].mean - base.mean:+.4f}" for m in others]
            chances = {c for c in (chance_level(key, r) for r in results) if c is not None}
            row.append(fmt(chances.pop()) if len(chances) == 1 else "")
            lines.append("| " + " | ".join(row) + " |")
    return lines


def parse_entry(item: str) -> tuple[str, str, str]:
    """MODEL:EVALUATION=RESULT.json -> (model, evaluation, path); UsageError naming the item otherwise."""
    name, sep, path = item.partition("=")
    model, colon, evaluation = name.partition(":")
    if not sep or not colon or not model or not evaluation or not path:
        raise UsageError(f"{item!r}: expected MODEL:EVALUATION=RESULT.json")
    return model, evaluation, path
