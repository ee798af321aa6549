"""The demo's comparison of a pretrained model with its random initialisation: one row per
(evaluation, metric) of HEADLINE with both values, chance, and whether pretraining helped."""

from __future__ import annotations

# (evaluation, metric) rows of the report's table; the first of each evaluation is its headline metric.
# An evaluation a method does not get (avts_sync for all but avts) has no rows.
HEADLINE = {
    "ucf_video_linear": ("top1", "top5"),
    "esc_audio_linear": ("top1", "top5"),
    # the median rank, not recall@1: recall@1 counts a handful of hits, the median rank uses every
    # query's rank
    "cross_modal_retrieval": ("median_rank", "recall@1", "recall@5", "a2v_median_rank", "v2a_median_rank"),
    "avts_sync": ("all", "easy", "hard"),
    "temporal_pretext": ("mean", "video_direction", "audio_direction", "video_order", "audio_order", "av_order"),
}
TIE_TOLERANCE = 1e-9
LOWER_IS_BETTER = {"median_rank", "a2v_median_rank", "v2a_median_rank"}


def chance_level(evaluation: str, metric: str, values: dict) -> float:
    """What guessing scores: 1/C (top-k: k/C), k/N for recall@k and (N + 1)/2 for the median rank
    over a gallery of N, 0.5 for a sync decision."""
    if evaluation == "avts_sync":
        return 0.5
    if evaluation == "temporal_pretext":
        return values[f"chance_{metric}"]
    if metric.startswith("top"):
        c = values["n_classes"]
        return min(int(metric[3:]), c) / c
    n = values["n_queries"]
    if metric.endswith("median_rank"):
        return (n + 1) / 2
    return min(int(metric.split("@")[1]), n) / n


def compare(pretrained: dict[str, dict], random: dict[str, dict]) -> list[dict]:
    """One row per (evaluation, metric) of HEADLINE: both values, chance, and whether pretrained is better."""
    rows = []
    for evaluation, metrics in HEADLINE.items():
        if evaluation not in pretrained:
            continue
        for metric in metrics:
            p, r = pretrained[evaluation][metric], random[evaluation][metric]
            # a tie is not better: means over splits of equal accuracies can differ in the last bit
            margin = TIE_TOLERANCE * max(1.0, abs(p), abs(r))
            better = p < r - margin if metric in LOWER_IS_BETTER else p > r + margin
            rows.append({"evaluation": evaluation, "metric": metric, "pretrained": p, "random": r,
                         "chance": chance_level(evaluation, metric, pretrained[evaluation]),
                         "pretrained_better": bool(better), "headline": metric == metrics[0]})
    return rows
