"""Plots of a training run's metrics.csv, one figure per family of logged metrics.

Every numeric column of metrics.csv (but `step` and `epoch`) goes to the first family whose rule
takes its name: the loss and its terms; the online probe (`probe/*`: kNN top-1 of the frozen
features on a labelled set, the learning curve a reader looks at to see whether training still
helps); accuracies on the batch being trained on (pretext heads, sync decisions, batch retrieval);
the curriculum (`curriculum/*`); the feature queue (`*queue*`); the batch composition (within-movie
share, excluded pairs, missing audio); throughput (`*clips_per_s`); data health (`data/*`); and
whatever is left. Each figure has a title saying what it shows, labelled axes, the raw values drawn
faintly under a running mean, and dotted chance lines where the method states them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from avssl.evaluate import plots
from avssl.evaluate.plots import is_accuracy_column, read_metric_columns

WINDOW = 10  # logged values in the running mean (one logged value is one batch: noisy)
SKIPPED = ("epoch",)


@dataclass(frozen=True)
class Family:
    """A group of metrics.csv columns plotted together."""

    name: str
    title: str
    ylabel: str
    takes: Callable[[str, tuple[str, ...]], bool]  # (column, the method's loss-term columns) -> belongs here
    unit_range: bool = False  # values in [0, 1]: the y axis shows all of it
    per_batch: bool = True  # one value per batch (noisy: smoothed); False: each value is a whole evaluation


BATCH_COMPOSITION = ("within_movie_share", "excluded_pairs", "audio_missing")

FAMILIES = (
    Family("loss", "Loss and its terms (lower is better)", "loss",
           lambda c, terms: "loss" in c or c in terms),
    Family("probe", "Online probe: kNN top-1 of the frozen features on a labelled set (the learning curve)",
           "top-1 accuracy", lambda c, terms: c.startswith("probe/"), unit_range=True, per_batch=False),
    Family("accuracy", "Accuracies on the batch being trained on (pretext heads, sync, batch retrieval)",
           "accuracy", lambda c, terms: is_accuracy_column(c), unit_range=True),
    Family("curriculum", "Curriculum: hard-negative share and hard negatives per batch", "value",
           lambda c, terms: c.startswith("curriculum/")),
    Family("queue", "Feature queue: positives and negatives per sample drawn from the queue", "count per sample",
           lambda c, terms: "queue" in c),
    Family("batch", "Batch composition (within-movie share, excluded pairs, clips without audio)", "value",
           lambda c, terms: c.rsplit("/", 1)[-1] in BATCH_COMPOSITION),
    Family("throughput", "Training throughput", "clips per second", lambda c, terms: c.endswith("clips_per_s")),
    Family("data", "Data health: failed files and padded clips (0 is healthy)", "count / seconds",
           lambda c, terms: c.startswith("data/")),
    Family("other", "Other logged metrics", "value", lambda c, terms: True),
)


def group_columns(columns: list[str], terms: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """{family name: its columns}, in FAMILIES order, each column in the first family that takes it;
    `step` and SKIPPED columns in none, families without a column left out."""
    out: dict[str, list[str]] = {}
    for column in columns:
        if column == "step" or column in SKIPPED:
            continue
        family = next(f for f in FAMILIES if f.takes(column, terms))
        out.setdefault(family.name, []).append(column)
    return {f.name: out[f.name] for f in FAMILIES if f.name in out}


def plot_family(family: Family, curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str,
                chance: dict[str, float] | None = None, window: int = WINDOW) -> str:
    """One figure of `curves` ({column: (steps, values)}): a per-batch column with at least 2 * `window`
    values as its running mean over the raw values drawn faintly, any other as its values (with markers
    when few), chance as dotted lines; returns the PNG path."""
    fig, ax = plots.plt.subplots(figsize=(7, 4))
    has_chance = smoothed = False
    for name, (steps, values) in curves.items():
        if family.per_batch and len(values) >= 2 * window:
            smooth = np.convolve(values, np.ones(window) / window, mode="valid")
            line, = ax.plot(steps[len(steps) - len(smooth):], smooth, label=name)
            ax.plot(steps, values, color=line.get_color(), alpha=0.2, linewidth=0.8)
            smoothed = True
        else:
            line, = ax.plot(steps, values, label=name, marker="o" if len(values) <= 30 else None, markersize=3)
        if chance and name in chance:
            ax.axhline(chance[name], color=line.get_color(), linestyle=":", linewidth=1)
            has_chance = True
    ax.set_title(family.title, fontsize=9)
    ax.set_xlabel("training step")
    smoothing = f" (running mean of {window})" if smoothed else ""
    ax.set_ylabel(f"{family.ylabel}{smoothing}" + ("; dotted: chance" if has_chance else ""), fontsize=8)
    if family.unit_range:
        ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, ncol=2)
    return plots._save(fig, path)


def plot_run(metrics_csv: str, out_dir: str, pattern: str = "curve_{family}.png", terms: tuple[str, ...] = (),
             chance: dict[str, float] | None = None) -> list[tuple[Family, str]]:
    """One PNG per family with data, `out_dir/<pattern with {family} filled in>`; returns (family, path)
    pairs. `terms`: the method's loss-term columns; `chance`: column -> chance level. No file or no
    logged row: an empty list."""
    if not os.path.isfile(metrics_csv):
        return []
    try:
        curves = read_metric_columns(metrics_csv, lambda column: column not in SKIPPED)
    except ValueError:  # an empty file: the run logged nothing yet
        return []
    if not curves:
        return []
    by_name = {f.name: f for f in FAMILIES}
    out = []
    for name, columns in group_columns(list(curves), terms).items():
        path = os.path.join(out_dir, pattern.format(family=name))
        out.append((by_name[name], plot_family(by_name[name], {c: curves[c] for c in columns}, path, chance)))
    return out
