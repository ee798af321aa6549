"""The report of `avssl demo`: OUT/report.md with the table of each method against its random
initialisation and chance (mean ± std over seeds with --seeds), the evaluations' legend, and per
method its loss summary, one figure per family of logged training metrics (loss, accuracies,
online probe, curriculum, queue, ...) and the embedding map of the pretrained model beside the
random model's."""

from __future__ import annotations

import math
import os

SUMMARY_ROWS = 5  # logged values averaged at each end of a loss curve (avssl.demo.pipeline)

# what a reader of a method's loss curve needs to know
LOSS_NOTES = {
    "temporal-av": "The contrastive terms (video_video, video_audio) rise while the feature queue fills: each "
                   "sample's softmax goes from the batch to the batch plus up to method.queue.size negatives, "
                   "so their chance level goes from log(B) to log(B + queue size). The pretext terms fall when "
                   "a head learns; piece_sync falls as clip B's video and audio pieces of one instant come to "
                   "agree (its chance level: log(B x pieces)).",
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


def _steps_phrase(results: dict) -> str:
    """'600 pretraining steps per method', or each method's own (its tiny config's) steps."""
    if results.get("steps"):
        return f"{results['steps']} pretraining steps per method"
    own = ", ".join(f"{method} {r['steps']}" for method, r in results["methods"].items() if "steps" in r)
    return f"pretraining steps of each method's tiny config ({own})"


def write_demo_report(results: dict, out_dir: str) -> str:
    """out_dir/report.md: method vs random table, then per method its training curves (one figure per
    family of logged metrics) and the embedding maps of the pretrained and the random model."""
    seeds = results.get("seeds")
    spread = (f"Mean ± standard deviation over training seeds {seeds} (n = {len(seeds)}; each seed pretrains "
              "and initialises anew); `better in` counts the seeds where pretrained beat random."
              if seeds else "One seed: small differences are noise (`avssl demo --seeds 3` gives the spread).")
    lines = ["# avssl demo", "",
             f"World scale `{results['scale']}`, world seed {results['seed']}, {_steps_phrase(results)}, "
             f"{results['seconds']:.0f} s in all. Random = the same architecture freshly "
             f"initialised. {spread}", "", *EVALUATIONS_LEGEND, ""]
    lines += _table(results, bool(seeds))
    for method, r in results["methods"].items():
        lines += _method_section(method, r, out_dir)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _table(results: dict, with_spread: bool) -> list[str]:
    head = "| method | evaluation | metric | pretrained | random | chance | pretrained better |"
    lines = [head + (" better in |" if with_spread else ""), "|" + " --- |" * (8 if with_spread else 7)]
    for method, r in results["methods"].items():
        for row in r["comparison"]:
            metric = f"**{row['metric']}**" if row["headline"] else row["metric"]
            pre, rnd = _fmt(row["pretrained"]), _fmt(row["random"])
            if with_spread:
                pre, rnd = f"{pre} ± {_fmt(row['pretrained_std'])}", f"{rnd} ± {_fmt(row['random_std'])}"
            line = (f"| {method} | {row['evaluation']} | {metric} | {pre} | {rnd} | {_fmt(row['chance'])} | "
                    f"{'yes' if row['pretrained_better'] else 'no'} |")
            lines.append(line + (f" {row['better_in_seeds']}/{row['n']} |" if with_spread else ""))
    return lines


def _method_section(method: str, r: dict, out_dir: str) -> list[str]:
    from avssl.evaluate.run_plots import plot_run

    first = r["per_seed"][0] if "per_seed" in r else r
    run_dir = os.path.dirname(os.path.dirname(first["checkpoint"]))
    which = f" (seed {r['per_seed'][0]['seed']} of {len(r['per_seed'])})" if "per_seed" in r else ""
    lines = ["", f"## {method}", "", f"Trained {r['train_seconds']:.0f} s. Loss and terms, mean of the first "
             f"{SUMMARY_ROWS} -> last {SUMMARY_ROWS} logged steps: " +
             (", ".join(f"{k} {v['start']:.3f} -> {v['end']:.3f}" for k, v in r["loss"].items()) or "none")]
    if method in LOSS_NOTES:
        lines += ["", LOSS_NOTES[method]]
    figures = plot_run(os.path.join(run_dir, "metrics.csv"), out_dir, f"{{family}}_{method}.png",
                       tuple(r["loss_terms"]), r.get("chance"))
    if figures:
        lines += ["", f"Training curves{which} from `{os.path.join(run_dir, 'metrics.csv')}`: running means over "
                  "the faint per-batch values; accuracies are on the batch being trained on; dotted: chance."]
    for family, png in figures:
        lines += ["", f"**{family.title}**", "", f"![{family.name}]({os.path.basename(png)})"]
    lines += _embedding_section(method, first, out_dir)
    return lines


def _embedding_section(method: str, r: dict, out_dir: str) -> list[str]:
    """The UCF-style clips' video features of the pretrained model beside the random model's."""
    from avssl.evaluate import plots
    from avssl.evaluate.features import load_features

    sides = r.get("provenance", {}).get("features", {})
    found = {side: next((f["path"] for f in files if os.path.basename(f["path"]) == "ucf1.npz"), None)
             for side, files in sides.items()}
    if not found.get("pretrained"):
        return []
    maps, shown = [], None
    for side in ("pretrained", "random"):
        if found.get(side):
            shown = load_features(found[side])
            maps.append((f"{side} ({method})" if side == "pretrained" else "random init", shown.matrix("video")))
    plots.plot_embedding_maps(maps, shown.label, shown.split, os.path.join(out_dir, f"embedding_{method}.png"), "pca")
    return ["", "Video features of the UCF-style clips (PCA; colour: class; marker: split 1 train o / test ^), "
            "pretrained beside random init:", "", f"![embedding maps](embedding_{method}.png)"]


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value:.3f}" if abs(value) <= 1 else f"{value:.1f}"
