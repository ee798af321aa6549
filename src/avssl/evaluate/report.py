"""Evaluation results as JSON (with provenance) and as a Markdown report with PNG plots.

A result is a dict of metrics. Keys starting with "_" hold material for the report only (confusion
data, retrieval examples) and are left out of the JSON. `provenance` records what produced it: the
configuration, the seed(s), the SHA-256 of every input file and the code version.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import subprocess
from typing import Callable, Sequence

import numpy as np

import avssl
from avssl.evaluate import plots
from avssl.evaluate.features import Features, file_sha256

log = logging.getLogger(__name__)


def code_version() -> dict:
    """{"avssl": version, "git_commit": HEAD of the source checkout or None, "git_dirty": bool or None}."""
    source = os.path.dirname(os.path.abspath(avssl.__file__))
    commit = dirty = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip() or None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        log.debug("no git checkout around %s: code version without commit", source)
    return {"avssl": avssl.__version__, "git_commit": commit, "git_dirty": dirty}


def provenance(config: dict, seed: int | Sequence[int], inputs: Sequence[str]) -> dict:
    """What produced a result: config, seed(s), inputs with their SHA-256, code version, UTC time."""
    return {
        "config": config,
        "seed": seed if isinstance(seed, int) else list(seed),
        "inputs": [{"path": os.path.abspath(p), "sha256": file_sha256(p)} for p in inputs],
        "code_version": code_version(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def public(result: dict) -> dict:
    """The JSON-ready part of a result: "_" keys dropped, numpy values made plain Python, recursively."""
    def convert(value):
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items() if not str(k).startswith("_")}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, np.ndarray):
            return convert(value.tolist())
        if isinstance(value, np.generic):
            return value.item()
        return value
    return convert(result)


def write_json(result: dict, path: str) -> str:
    """Write public(result) as indented JSON; returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(public(result), f, indent=2, allow_nan=True)
        f.write("\n")
    return path


def run_seeds(evaluate: Callable[[int], dict], seeds: Sequence[int]) -> dict:
    """Run `evaluate(seed)` per seed. Top-level numbers become their mean, with `<key>_std` (population
    std over seeds) beside them; other values are kept when every seed agrees on them; `per_seed` keeps
    each run. Report-only ("_") keys come from the first seed."""
    if not seeds:
        raise ValueError("run_seeds needs at least one seed")
    results = [evaluate(int(s)) for s in seeds]
    out = {k: v for k, v in results[0].items() if k.startswith("_")}
    for key, value in results[0].items():
        if key.startswith("_"):
            continue
        if not _is_number(value):
            if all(r.get(key) == value for r in results):  # e.g. the protocol: the same for every seed
                out[key] = value
            continue
        values = np.array([r[key] for r in results], dtype=np.float64)
        counts = [r[key] for r in results if isinstance(r[key], (int, np.integer))]
        same_count = len(counts) == len(results) and len(set(counts)) == 1  # a count stays an int in the JSON
        out[key] = int(counts[0]) if same_count else float(values.mean())
        out[f"{key}_std"] = 0 if same_count else float(values.std())
    out["seeds"] = [int(s) for s in seeds]
    out["per_seed"] = [public(r) for r in results]
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _fmt(value) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if _is_number(value):
        value = float(value)
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def write_report(result: dict, out_dir: str, title: str, features: Features | None = None,
                 modality: str | None = None, metrics_csv: str | None = None, embedding: str = "pca",
                 max_points: int = 2000, seed: int = 0) -> str:
    """Write `out_dir/report.md`, `out_dir/result.json` and the PNGs the result allows; returns the .md path.

    Sections: headline metrics (with +/- std for multi-seed results), per-run table, per-transform
    table, confusion matrix (`_confusion`), embedding map (from `features`), retrieval examples
    (`_examples`), loss curves (from a run's `metrics_csv`), provenance.
    """
    os.makedirs(out_dir, exist_ok=True)
    lines = [f"# {title}", ""]
    headline = {k: v for k, v in result.items() if _is_number(v) and not k.endswith("_std") and k != "seed"}
    lines += ["| metric | value |", "| --- | --- |"]
    for key, value in headline.items():
        std = result.get(f"{key}_std")
        lines.append(f"| {key} | {_fmt(value)}{'' if std is None else ' ± ' + _fmt(std)} |")
    if "seeds" in result:
        lines += ["", f"Mean ± standard deviation over seeds {result['seeds']}."]
    runs = result.get("runs") or (result.get("per_seed") or [{}])[0].get("runs")
    if runs:
        lines += ["", "## Runs", ""] + _table(runs)
    if result.get("by_transform"):
        rows = [{"transform": name, **values} for name, values in result["by_transform"].items()]
        lines += ["", "## By transformation", ""] + _table(rows)
    confusion = result.get("_confusion")
    if confusion:
        plots.plot_confusion(confusion["classes"], np.asarray(confusion["y_true"]), np.asarray(confusion["y_pred"]),
                             os.path.join(out_dir, "confusion.png"))
        lines += ["", "## Confusion matrix (first run: counts; each true class's accuracy beside its name)", "",
                  "![confusion](confusion.png)"]
    if features is not None and modality is not None:
        rows = np.random.default_rng(seed).permutation(len(features))[:max_points]
        plots.plot_embedding_maps([(f"{modality} features", features.matrix(modality)[rows])], features.label[rows],
                                  features.split[rows], os.path.join(out_dir, "embedding.png"), embedding, seed)
        lines += ["", f"## Embedding map ({modality}, {embedding.upper()}; colour: class, marker: split)", "",
                  "![embedding](embedding.png)"]
    if result.get("_examples"):
        lines += ["", "## Retrieval examples"] + _examples_table(result["_examples"])
    if metrics_csv:
        lines += _run_sections(metrics_csv, out_dir)
    if "provenance" in result:
        lines += ["", "## Provenance", "", "```json", json.dumps(public(result["provenance"]), indent=2), "```"]
    write_json(result, os.path.join(out_dir, "result.json"))
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _table(rows: list[dict]) -> list[str]:
    columns = [k for k in rows[0] if not isinstance(rows[0][k], (dict, list))]
    out = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    out += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return out


def _examples_table(examples: list[dict]) -> list[str]:
    """One table per search direction ("audio → video": an audio query ranks the video gallery)."""
    out = []
    for direction in dict.fromkeys(e.get("direction", "") for e in examples):
        shown = [e for e in examples if e.get("direction", "") == direction]
        n = max(len(e["results"]) for e in shown)
        out += ["", f"### {direction}" if direction else "### (direction not recorded)", "",
                "| query (label) | " + " | ".join(f"top-{i + 1}" for i in range(n)) + " |", "|" + " --- |" * (n + 1)]
        for e in shown:
            cells = [f"{'✓' if r['hit'] else '✗'} {os.path.basename(r['path'])} ({r['label']})" for r in e["results"]]
            out.append(f"| {os.path.basename(e['query'])} ({e['label']}) | " + " | ".join(cells) + " |")
    return out


def _run_sections(metrics_csv: str, out_dir: str) -> list[str]:
    """One figure per family of the run's logged metrics (avssl.evaluate.run_plots)."""
    from avssl.evaluate.run_plots import plot_run

    figures = plot_run(metrics_csv, out_dir)
    if not figures:
        return []
    lines = ["", "## Training curves", "", f"From `{metrics_csv}`, one figure per family of logged metrics."]
    for family, png in figures:
        lines += ["", f"### {family.title}", "", f"![{family.name}]({os.path.basename(png)})"]
    return lines
