"""The model card (README.md) of an export: what the model is, where its weights came from, what its
run recorded, and how to use it.

From the run dir (the folder above `checkpoints/` when the checkpoint lies in one): the last
`train/loss` of metrics.csv, the number of files listed in bad_files.csv, and the evaluation figures
of every JSON file in the run dir or its `eval/` folder that holds any of the metrics `avssl eval`
writes (top1, top5, recall@1, recall@5, recall@10, map). The training manifest is not stored by
`avssl pretrain`; `avssl export --data MANIFEST` records its path and SHA-256.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

METRICS = ("top1", "top5", "recall@1", "recall@5", "recall@10", "map")


def run_dir_of(checkpoint: str | None) -> Path | None:
    """The run dir of `RUN_DIR/checkpoints/X.ckpt`, else None."""
    if checkpoint is None:
        return None
    parent = Path(checkpoint).resolve().parent
    return parent.parent if parent.name == "checkpoints" else None


def last_loss(metrics_csv: Path) -> tuple[int, float] | None:
    """(step, train/loss) of the last row of metrics.csv that logs a loss."""
    if not metrics_csv.is_file():
        return None
    last = None
    with open(metrics_csv, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("train/loss"):
                last = (int(float(row.get("step") or 0)), float(row["train/loss"]))
    return last


def evaluation_figures(run_dir: Path) -> dict[str, dict[str, float]]:
    """file name -> {metric: value} for the run's evaluation JSON files."""
    found: dict[str, dict[str, float]] = {}
    for path in sorted([*run_dir.glob("*.json"), *run_dir.glob("eval/*.json")]):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            figures = {k: data[k] for k in METRICS if isinstance(data.get(k), (int, float))}
            if figures:
                found[str(path.relative_to(run_dir))] = figures
    return found


def run_lines(run_dir: Path | None) -> list[str]:
    """The card's "Run" section."""
    if run_dir is None:
        return ["No run dir: the checkpoint does not lie in RUN_DIR/checkpoints/."]
    lines = [f"- run dir: `{run_dir}`"]
    loss = last_loss(run_dir / "metrics.csv")
    if loss is not None:
        lines.append(f"- last logged train/loss: {loss[1]:.4f} at step {loss[0]}")
    bad = run_dir / "bad_files.csv"
    if bad.is_file():
        with open(bad, newline="", encoding="utf-8") as f:
            lines.append(f"- files left out as bad (bad_files.csv): {max(0, sum(1 for _ in f) - 1)}")
    figures = evaluation_figures(run_dir)
    if not figures:
        lines.append("- evaluation figures: none found in the run dir")
    for name, values in figures.items():
        lines.append(f"- `{name}`: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    return lines


def write_model_card(path: Path, record: dict[str, Any], checkpoint: str | None) -> None:
    """Write the model card of the export described by `record` (its config.json)."""
    source, config = record["source"], record["config"]
    manifest = record.get("data_manifest")
    data = (f"`{manifest['path']}` (sha256 `{manifest['sha256']}`)" if manifest
            else "not recorded (`avssl pretrain` does not store it; pass `avssl export --data MANIFEST`)")
    weights = "random initialisation (the baseline)" if source["random_init"] else f"`{source['path']}`"
    inputs = record["inputs"]
    lines = [
        f"# {record['method']} ({config['model']['video']['name']} + {config['model']['audio']['name']})", "",
        f"Exported by avssl {record['avssl_version']} (export format {record['version']}).", "",
        "## Weights", "",
        f"- method: `{record['method']}`; steps trained: {source['step'] if source['step'] is not None else 'n/a'}",
        f"- from: {weights}" + (f", sha256 `{source['sha256']}`" if source["sha256"] else ""),
        f"- training data manifest: {data}",
        f"- training table fingerprint (paths, durations, groups): `{source.get('data_fingerprint') or 'not recorded'}`",
        "- files: " + ", ".join(f"`{m['file']}` ({m['parameters']:,} parameters)" for m in record["modules"].values()),
        *[f"- {kind}: " + ", ".join(f"`{f}`" for f in files.values()) for kind, files in record["variants"].items()],
        "", "## Inputs", "",
        f"- video: uint8 RGB clips of {inputs['video'][1]} frames at {inputs['video_fps']:g} fps, "
        f"{inputs['video'][2]}x{inputs['video'][3]} centre crop, normalised with mean {inputs['video_normalize']['mean']} "
        f"and std {inputs['video_normalize']['std']} after /255",
        f"- audio: {inputs['audio_samples']} mono samples at {inputs['audio_sample_rate']} Hz as a log-mel "
        f"spectrogram {inputs['audio']}",
        "", "## Run", "", *run_lines(run_dir_of(checkpoint)),
        "", "## Use", "", "```python", "import avssl", "",
        f'model = avssl.load("{path.parent}")',
        'emb = model.embed_video("clip.mp4", space="joint")  # per-window vectors and start times',
        "```", "", f"or `avssl embed VIDEOS... --model {path.parent} --out embeddings.parquet`.", "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
