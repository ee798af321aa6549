"""Fingerprinting metrics: retrieve each query's reference by cosine similarity; micro AP and recall@1.

Micro average precision follows the descriptor track of the Video Similarity Challenge 2022
(facebookresearch/vsc2022, `vsc/metrics.py: average_precision`): every candidate (query, reference)
pair from all queries is ranked by score in one global list, precision is taken at each true pair,
and the sum is divided by the number of true pairs in the ground truth (true pairs never retrieved
count as misses). Pairs with equal scores are ranked as one block (precision at the block's end),
which equals `sklearn.metrics.average_precision_score` over the candidate pairs and does not depend
on input order. A query whose true reference id is "" has no reference (a distractor): its pairs can
only be false positives. recall@1 is the share of queries with a reference whose top-scored
reference is the true one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from avssl.errors import UsageError
from avssl.evaluate.features import Features
from avssl.evaluate.progress import progress
from avssl.evaluate.query_transforms import DEFAULT_TRANSFORMS, AVClip, Transform
from avssl.models.knn import cosine_similarity

log = logging.getLogger(__name__)

Embed = Callable[[torch.Tensor, torch.Tensor], "np.ndarray | torch.Tensor"]


def micro_average_precision(scores: np.ndarray, is_true: np.ndarray, n_true: int) -> float:
    """VSC 2022 micro AP of candidate pairs: scores [P], is_true bool [P], n_true true pairs in total."""
    if n_true <= 0:
        raise UsageError("micro AP needs at least one true query-reference pair")
    order = np.argsort(-scores, kind="stable")
    s, hit = scores[order], is_true[order].astype(np.int64)
    cum_hits = np.cumsum(hit)
    # end index of each block of equal scores: precision is read there for all of the block's hits
    block_end = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    block_hits = np.diff(np.r_[0, cum_hits[block_end]])
    precision = cum_hits[block_end] / (block_end + 1)
    return float(np.sum(block_hits * precision) / n_true)


def fingerprint_metrics(ref_x: np.ndarray, ref_ids: np.ndarray, query_x: np.ndarray, query_true: np.ndarray,
                        query_transform: np.ndarray | None = None,
                        candidates_per_query: int | None = None) -> dict:
    """`map` and `recall@1` overall and per transformation (`by_transform`).

    ref_x [R, D] with unique ids ref_ids [R]; query_x [Q, D]; query_true [Q] the true reference id
    ("" for none); query_transform [Q] names. candidates_per_query: keep only each query's top-k
    references as candidates (None: all R).
    """
    ref_ids = np.asarray(ref_ids).astype(str)
    query_true = np.asarray(query_true).astype(str)
    if len(np.unique(ref_ids)) != len(ref_ids):
        raise UsageError("reference ids must be unique")
    unknown = sorted(set(query_true.tolist()) - set(ref_ids.tolist()) - {""})
    if unknown:
        raise UsageError(f"{len(unknown)} query true reference id(s) not among the references, e.g. {unknown[0]!r}")
    sim = cosine_similarity(query_x, ref_x)  # [Q, R]
    truth = query_true[:, None] == ref_ids[None, :]
    transforms = np.full(len(query_x), "all") if query_transform is None else np.asarray(query_transform).astype(str)
    out = _metrics(sim, truth, candidates_per_query)
    out["by_transform"] = {name: _metrics(sim[transforms == name], truth[transforms == name], candidates_per_query)
                           for name in sorted(set(transforms.tolist()))}
    return out


def _metrics(sim: np.ndarray, truth: np.ndarray, candidates_per_query: int | None) -> dict:
    keep = np.ones_like(truth)
    if candidates_per_query is not None and candidates_per_query < sim.shape[1]:
        top = np.argsort(-sim, axis=1, kind="stable")[:, :candidates_per_query]
        keep = np.zeros_like(truth)
        np.put_along_axis(keep, top, True, axis=1)
    with_ref = truth.any(axis=1)
    n_true = int(with_ref.sum())
    best = sim.argmax(axis=1)
    recall1 = float(np.mean(truth[np.arange(len(sim)), best][with_ref])) if n_true else float("nan")
    ap = micro_average_precision(sim[keep], truth[keep], n_true) if n_true else float("nan")
    return {"map": ap, "recall@1": recall1, "n_queries": int(len(sim)), "n_true_pairs": n_true}


def fingerprint_metrics_from_features(features: Features, modality: str,
                                      candidates_per_query: int | None = None) -> dict:
    """Metrics of a fingerprint features file: rows with split "reference" (id = `group`, or the path
    when empty) and split "query" (`group` = its reference's id, "" for none; `label` = transform)."""
    refs = np.flatnonzero(features.split == "reference")
    queries = np.flatnonzero(features.split == "query")
    if len(refs) == 0 or len(queries) == 0:
        raise UsageError(f"{features.source}: a fingerprint features file needs rows with split "
                         f"'reference' and 'query'")
    x = features.matrix(modality)
    ref_ids = features.groups()[refs]
    return fingerprint_metrics(x[refs], ref_ids, x[queries], features.group[queries], features.label[queries],
                               candidates_per_query)


@dataclass(frozen=True)
class Reference:
    """A decoded reference clip and its id."""

    id: str
    clip: AVClip


def embed_queries(embed: Embed, references: Sequence[Reference],
                  transforms: Mapping[str, Transform] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Descriptors of every reference and of one query per (reference, transform).

    Returns ref_x [R, D], ref_ids [R], query_x [R * n_transforms, D], query_true, query_transform.
    The transform of reference i draws from a Generator seeded by (seed, i): queries are reproducible.
    """
    transforms = DEFAULT_TRANSFORMS if transforms is None else transforms
    ref_x, query_x, query_true, query_transform = [], [], [], []
    for i, ref in enumerate(progress(references, len(references), "fingerprint: embed", "reference")):
        ref_x.append(_vector(embed(ref.clip.video, ref.clip.audio), ref.id))
        for name, transform in transforms.items():
            query = transform(ref.clip, np.random.default_rng([seed, i]))
            query_x.append(_vector(embed(query.video, query.audio), f"{ref.id} ({name})"))
            query_true.append(ref.id)
            query_transform.append(name)
    return {"ref_x": np.stack(ref_x), "ref_ids": np.array([r.id for r in references]),
            "query_x": np.stack(query_x), "query_true": np.array(query_true),
            "query_transform": np.array(query_transform)}


def evaluate_fingerprinting(embed: Embed, references: Sequence[Reference],
                            transforms: Mapping[str, Transform] | None = None, seed: int = 0,
                            candidates_per_query: int | None = None) -> dict:
    """Build the queries, embed everything with `embed(video [T, H, W, 3] uint8, audio [N]) -> [D]`,
    and return fingerprint_metrics (overall and per transformation)."""
    d = embed_queries(embed, references, transforms, seed)
    return fingerprint_metrics(d["ref_x"], d["ref_ids"], d["query_x"], d["query_true"], d["query_transform"],
                               candidates_per_query)


def _vector(value, what: str) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    array = array.astype(np.float64).reshape(-1)
    if not np.isfinite(array).all():
        raise ValueError(f"embed returned non-finite values for {what}")
    return array
