"""The report of `avssl demo`: OUT/report.md with the table of each method against its random
initialisation and chance, the evaluations' legend, and per method its loss summary, loss curves
and an embedding map."""

from __future__ import annotations

import math
import os

SUMMARY_ROWS = 5  # logged values averaged at each end of a loss curve (avssl.demo.pipeline)

# what a reader of a method's loss curve needs to know
LOSS_NOTES = {
    "temporal-av": "The contrastive terms (video_video, video_audio) rise while the feature queue fills: each "
                   "sample's softmax goes from the batch to the batch plus up to method.queue.size negatives, "
                   "so their chance level goes from log(B) to log(B + queue size). The pretext terms fall when "
                   "a head learns.",
}


EVALUATIONS_LEGEND = (
    "- `ucf_video_linear`: logistic regression on frozen video backbone features, mean over UCF-style "
    "splits 1-3 (train and test clips of different source groups).",
    "- `esc_audio_linear`: the same on audio backbone features, ESC-style 5-fold cross-validation.",
    "- `cross_modal_retrieval`: each UCF-style clip's audio embedding ranks every clip's video embedding "
    "and back (none was seen in pretraining); recall@k and median_rank average the two directions.",
    "- `avts_sync` (avts only): share of window pairs of the UCF-style clips where the in-sync audio is nearer "
    "the video than another clip's audio (easy) or the same clip's audio shifted by at least min_offset (hard).",
    "- `temporal_pretext` (temporal-av only): accuracy of the playback-direction and order heads on the "
    "UCF-style clips (random windows, centre crops); `mean` averages the five heads.",
    "- The headline metric of each evaluation is in bold; median ranks are better when lower.",
)


def write_demo_report(results: dict, out_dir: str) -> str:
    """out_dir/report.md: method vs random table, loss curves and an embedding map per method."""
    from avssl.evaluate import plots
    from avssl.evaluate.features import load_features

    lines = ["# avssl demo", "",
             f"World scale `{results['scale']}`, seed {results['seed']}, {results['steps']} pretraining steps "
             f"per method, {results['seconds']:.0f} s in all. Random = the same architecture freshly "
             "initialised. One seed: small differences are noise.", "", *EVALUATIONS_LEGEND, "",
             "| method | evaluation | metric | pretrained | random | chance | pretrained better |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for method, r in results["methods"].items():
        for row in r["comparison"]:
            metric = f"**{row['metric']}**" if row["headline"] else row["metric"]
            lines.append(f"| {method} | {row['evaluation']} | {metric} | {_fmt(row['pretrained'])} | "
                         f"{_fmt(row['random'])} | {_fmt(row['chance'])} | "
                         f"{'yes' if row['pretrained_better'] else 'no'} |")
    for method, r in results["methods"].items():
        lines += ["", f"## {method}", "", f"Trained {r['train_seconds']:.0f} s. Loss and terms, mean of the first "
                  f"{SUMMARY_ROWS} -> last {SUMMARY_ROWS} logged steps: " +
                  (", ".join(f"{k} {v['start']:.3f} -> {v['end']:.3f}" for k, v in r["loss"].items()) or "none")]
        if method in LOSS_NOTES:
            lines += ["", LOSS_NOTES[method]]
        metrics_csv = os.path.join(out_dir, "runs", method, "metrics.csv")
        loss_png = os.path.join(out_dir, f"loss_{method}.png")
        if os.path.isfile(metrics_csv) and plots.plot_loss_curves(metrics_csv, loss_png, tuple(r["loss_terms"])):
            lines += ["", f"![loss curves](loss_{method}.png)"]
        accuracy_png = os.path.join(out_dir, f"accuracy_{method}.png")
        if os.path.isfile(metrics_csv) and plots.plot_accuracy_curves(metrics_csv, accuracy_png, r.get("chance")):
            lines += ["", "Accuracies logged during training (each on the batch being trained on; dotted: "
                      "chance):", "", f"![accuracy curves](accuracy_{method}.png)"]
        feats = os.path.join(out_dir, "features", method, "ucf1.npz")
        if os.path.isfile(feats):
            f = load_features(feats)
            plots.plot_embedding(f.matrix("video"), f.label, os.path.join(out_dir, f"embedding_{method}.png"), "pca")
            lines += ["", "Video features of the UCF-style clips (PCA, coloured by class):", "",
                      f"![embedding map](embedding_{method}.png)"]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value:.3f}" if abs(value) <= 1 else f"{value:.1f}"
