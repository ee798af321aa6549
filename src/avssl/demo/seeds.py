"""`avssl demo --seeds N`: the results of one method over N training seeds, as the mean and the
spread (population standard deviation) of every metric, with the number of seeds and, per table
row, in how many seeds the pretrained model beat its random initialisation."""

from __future__ import annotations

from typing import Any

import numpy as np

from avssl.demo.comparison import compare


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def mean_and_std(dicts: list[dict]) -> tuple[dict, dict]:
    """({key: mean}, {key: population std}) of the numbers of `dicts`, recursively for nested dicts;
    an integer count the same in every dict stays that integer (with std 0)."""
    means, stds = {}, {}
    for key, first in dicts[0].items():
        values = [d.get(key) for d in dicts]
        if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            means[key], stds[key] = mean_and_std(values)
        elif all(_is_number(v) for v in values):
            array = np.asarray(values, dtype=np.float64)
            same_int = all(isinstance(v, (int, np.integer)) for v in values) and len(set(values)) == 1
            means[key] = int(values[0]) if same_int else float(array.mean())
            stds[key] = 0 if same_int else float(array.std())
    return means, stds


def aggregate_method(per_seed: list[dict], seeds: list[int]) -> dict:
    """One method's entry of results.json over seeds: `pretrained` / `random` hold the means (with
    `pretrained_std` / `random_std` beside them), `comparison` compares the means and adds `*_std`,
    `n` and `better_in_seeds`; `per_seed` keeps each seed's own results."""
    first = per_seed[0]
    pre, pre_std = mean_and_std([r["pretrained"] for r in per_seed])
    rnd, rnd_std = mean_and_std([r["random"] for r in per_seed])
    loss, _ = mean_and_std([r["loss"] for r in per_seed])
    rows = compare(pre, rnd)
    for row in rows:
        evaluation, metric = row["evaluation"], row["metric"]
        row["pretrained_std"] = pre_std[evaluation][metric]
        row["random_std"] = rnd_std[evaluation][metric]
        row["n"] = len(per_seed)
        row["better_in_seeds"] = sum(
            next(r["pretrained_better"] for r in seed["comparison"]
                 if r["evaluation"] == evaluation and r["metric"] == metric) for seed in per_seed)
    keep = ("config", "steps", "loss_terms", "chance")
    return {**{k: first[k] for k in keep}, "seeds": list(seeds),
            "train_seconds": round(float(np.mean([r["train_seconds"] for r in per_seed])), 1),
            "pretrained": pre, "pretrained_std": pre_std, "random": rnd, "random_std": rnd_std,
            "comparison": rows, "loss": loss,
            "per_seed": [{"seed": s, **{k: v for k, v in r.items() if k not in keep}}
                         for s, r in zip(seeds, per_seed)]}
