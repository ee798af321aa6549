"""PNG plots for evaluation reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import csv
import math
import os

import matplotlib

matplotlib.use("Agg")  # reports are written on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_LEGEND = 20  # more classes than this: a colour bar instead of a legend


def confusion_matrix(classes: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """int [C, C] counts: row = true class, column = predicted class (rows with y_true -1 left out)."""
    n = len(classes)
    keep = (y_true >= 0) & (y_true < n)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (y_true[keep], y_pred[keep]), 1)
    return counts


def plot_confusion(classes: list[str], y_true: np.ndarray, y_pred: np.ndarray, path: str) -> str:
    """Confusion matrix with counts in the cells (scikit-learn's ConfusionMatrixDisplay; rows: true
    class, columns: predicted), each true class's accuracy beside its name; returns the PNG path.
    Test rows of a class unseen in training (y_true -1) are left out of the matrix, not of the title."""
    from sklearn.metrics import ConfusionMatrixDisplay

    counts = confusion_matrix(classes, y_true, y_pred)
    per_class = np.diag(counts) / np.maximum(counts.sum(axis=1), 1)
    names = [f"{c} ({a:.0%} of {n})" for c, a, n in zip(classes, per_class, counts.sum(axis=1))]
    size = min(5 + 0.3 * len(classes), 24)
    fig, ax = plt.subplots(figsize=(size + 2, size))
    display = ConfusionMatrixDisplay(confusion_matrix=counts, display_labels=names)
    display.plot(ax=ax, cmap="Blues", values_format="d", colorbar=True, xticks_rotation="vertical",
                 include_values=len(classes) <= 30)
    ax.set_xticklabels(list(classes), fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (accuracy of its test clips, of how many)")
    overall = float(np.mean(y_pred == y_true)) if len(y_true) else float("nan")
    ax.set_title(f"Confusion matrix (counts): {len(y_true)} test clips, top-1 {overall:.1%}", fontsize=9)
    return _save(fig, path)


def embed_2d(x: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """[N, 2] map of x [N, D] by PCA (default) or t-SNE (sklearn; slower)."""
    x = np.asarray(x, dtype=np.float64)
    if method == "pca":
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        out = centred @ vt[:2].T
        return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, random_state=seed, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3))).fit_transform(x)
    raise ValueError(f"embedding map method must be 'pca' or 'tsne', got {method!r}")


def plot_embedding(x: np.ndarray, labels: np.ndarray, path: str, method: str = "pca", seed: int = 0) -> str:
    """Scatter of the 2-D map of x [N, D], one colour per label; returns the PNG path."""
    points = embed_2d(x, method, seed)
    classes, index = np.unique(labels, return_inverse=True)
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab20" if len(classes) <= 20 else "turbo")
    colours = index / max(len(classes) - 1, 1) if len(classes) > 20 else index
    scatter = ax.scatter(points[:, 0], points[:, 1], c=colours, cmap=cmap, s=10,
                         vmin=0, vmax=1 if len(classes) > 20 else 19)
    if len(classes) <= MAX_LEGEND:
        for i, name in enumerate(classes):
            ax.scatter([], [], color=cmap(i), label=str(name), s=10)
        ax.legend(fontsize=7, loc="best", markerscale=1.5)
    else:
        fig.colorbar(scatter, ax=ax, label="class (sorted index)")
    ax.set_title(f"{method.upper()} of {len(x)} features, {len(classes)} classes")
    return _save(fig, path)


SPLIT_MARKERS = {"train": "o", "test": "^"}  # other split values (folds, unused): "s"


def plot_embedding_maps(maps: list[tuple[str, np.ndarray]], labels: np.ndarray, split: np.ndarray, path: str,
                        method: str = "pca", seed: int = 0) -> str:
    """Side-by-side 2-D maps (e.g. the pretrained model beside its random initialisation): `maps` of
    (title, x [N, D]) over the same rows; colour = class, marker = split (train o, test ^, other s);
    returns the PNG path."""
    classes, index = np.unique(labels, return_inverse=True)
    cmap = plt.get_cmap("tab20" if len(classes) <= 20 else "turbo")
    colour = [cmap(i if len(classes) <= 20 else i / max(len(classes) - 1, 1)) for i in index]
    fig, axes = plt.subplots(1, len(maps), figsize=(6 * len(maps), 5.5), squeeze=False)
    for ax, (title, x) in zip(axes[0], maps):
        points = embed_2d(x, method, seed)
        for value in np.unique(split):
            rows = np.flatnonzero(split == value)
            ax.scatter(points[rows, 0], points[rows, 1], c=[colour[r] for r in rows], s=14,
                       marker=SPLIT_MARKERS.get(str(value), "s"), edgecolors="none")
        ax.set_title(f"{title}: {method.upper()} of {len(x)} clips", fontsize=9)
        ax.set_xlabel(f"{method.upper()} 1")
        ax.set_ylabel(f"{method.upper()} 2")
    handles = [plt.Line2D([], [], color=cmap(i if len(classes) <= 20 else i / max(len(classes) - 1, 1)),
                          marker="o", linestyle="", label=str(c)) for i, c in enumerate(classes[:MAX_LEGEND])]
    handles += [plt.Line2D([], [], color="grey", marker=SPLIT_MARKERS.get(str(v), "s"), linestyle="",
                           label=f"split {v or '(none)'}") for v in np.unique(split)]
    axes[0][-1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


def is_accuracy_column(column: str) -> bool:
    """A metrics.csv column that holds an accuracy (a head's, a batch retrieval's, the online probe's)."""
    name = column.rsplit("/", 1)[-1]
    return name.startswith("acc") or "accuracy" in name or name.endswith("top1")


def read_loss_columns(metrics_csv: str, extra: tuple[str, ...] = ()) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{column: (steps, values)} of every column of a run's metrics.csv whose name contains "loss",
    and of the `extra` columns it has (a method's loss terms)."""
    return read_metric_columns(metrics_csv, lambda column: "loss" in column or column in extra)


def read_metric_columns(metrics_csv: str, wanted) -> dict[str, tuple[np.ndarray, np.ndarray]]:  # noqa: ANN001
    """{column: (steps, values)} of the columns of a run's metrics.csv for which `wanted(column)` holds."""
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "step" not in rows[0]:
        raise ValueError(f"{metrics_csv}: expected a metrics.csv with a 'step' column")
    out = {}
    for column in rows[0]:
        if column == "step" or not wanted(column):
            continue
        pairs = [(float(r["step"]), float(r[column])) for r in rows if r.get(column) not in ("", None)]
        pairs = [(s, v) for s, v in pairs if math.isfinite(v)]
        if pairs:
            steps, values = map(np.array, zip(*pairs))
            out[column] = (steps, values)
    return out


def plot_loss_curves(metrics_csv: str, path: str, extra: tuple[str, ...] = ()) -> str | None:
    """Every loss column of metrics.csv (and the `extra` columns) against step; None when the file
    logs no loss."""
    curves = read_loss_columns(metrics_csv, extra)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (steps, values) in curves.items():
        ax.plot(steps, values, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_accuracy_curves(metrics_csv: str, path: str, chance: dict[str, float] | None = None,
                         window: int = 10) -> str | None:
    """Every accuracy column of metrics.csv against step, as a running mean over `window` logged values
    (one value is one batch: noisy) over the raw values drawn faintly, with the chance level of the
    columns `chance` names as dotted lines; None when the run logs no accuracy."""
    curves = read_metric_columns(metrics_csv, is_accuracy_column)
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, (steps, values) in curves.items():
        smooth = np.convolve(values, np.ones(window) / window, mode="valid") if len(values) >= window else values
        line, = ax.plot(steps[len(steps) - len(smooth):], smooth, label=name)
        ax.plot(steps, values, color=line.get_color(), alpha=0.2, linewidth=0.8)
        if chance and name in chance:
            ax.axhline(chance[name], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel(f"accuracy (running mean of {window}); dotted: chance")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
