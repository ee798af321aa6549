"""Retrieval by cosine similarity: class retrieval (UCF101/HMDB51 clip-retrieval protocol) and
cross-modal retrieval (audio -> video and video -> audio).

The rank of a query is 1 + the number of irrelevant gallery items at least as similar as its most
similar relevant item: a tie goes against the query. Ties are rare with float features, except where
a model's embeddings collapse onto a few vectors; counting them for the query would then turn the
collapse into hits (a video projection head that gave 226 of 286 clips one vector scored recall@5
0.60 from audio to video that way). recall@k is the share of queries with rank <= k; a query with no
relevant item in the gallery is a miss at every k and has no rank (it is left out of the median rank
and counted).
"""

from __future__ import annotations

import logging

import numpy as np

from avssl.errors import UsageError
from avssl.evaluate.features import Features
from avssl.evaluate.protocols import Run
from avssl.models.knn import CHUNK, l2_normalise

log = logging.getLogger(__name__)

DEFAULT_KS = (1, 5, 10, 20, 50)
MATCH_KEYS = ("path", "group", "label")


def relevance_ranks(query_x: np.ndarray, gallery_x: np.ndarray, query_keys: np.ndarray,
                    gallery_keys: np.ndarray, query_ids: np.ndarray | None = None,
                    gallery_ids: np.ndarray | None = None) -> np.ndarray:
    """float [Q] rank (1-based) of each query's best relevant gallery item; inf when it has none.

    query_x [Q, D], gallery_x [G, D]; an item is relevant when its key equals the query's key. With
    ids, a gallery item whose id equals the query's (its own clip) is out of that query's gallery:
    neither a hit nor ranked above one.
    """
    gallery_n = l2_normalise(gallery_x)
    ranks = np.full(len(query_x), np.inf)
    for start in range(0, len(query_x), CHUNK):
        sim = l2_normalise(query_x[start:start + CHUNK]) @ gallery_n.T  # [q, G]
        relevant = query_keys[start:start + CHUNK, None] == gallery_keys[None, :]
        if query_ids is not None:
            own = query_ids[start:start + CHUNK, None] == gallery_ids[None, :]
            sim, relevant = np.where(own, -np.inf, sim), relevant & ~own
        best = np.where(relevant, sim, -np.inf).max(axis=1, initial=-np.inf)
        has = relevant.any(axis=1)
        above = ((sim >= best[:, None]) & ~relevant).sum(axis=1)
        ranks[start:start + len(sim)] = np.where(has, above + 1, np.inf)
    return ranks


def warn_on_repeated_rows(x: np.ndarray, modality: str, source: str | None, warn: bool = True) -> int:
    """The number of rows of x [N, D] that repeat an earlier row exactly; a warning (unless `warn` is
    False) when they are 10 % or more of the rows. Float embeddings of distinct clips do not repeat:
    many repeats mean an encoder or projection head that collapsed (or copies of files), and such rows
    tie with each other, which the ranks count against the query."""
    repeats = int(len(x) - len(np.unique(x, axis=0))) if len(x) else 0
    if warn and repeats and repeats >= 0.1 * len(x):
        log.warning("%s: %d of %d %s embeddings repeat another row exactly: the model collapsed onto a few "
                    "vectors (or the files are copies); retrieval counts their ties against the query",
                    source or "features", repeats, len(x), modality)
    return repeats


def check_ks(ks) -> None:
    """UsageError unless every cut-off is a whole number >= 1 (recall@0 is 0 by definition)."""
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1]
    if bad or not len(ks):
        raise UsageError(f"--ks must be whole numbers >= 1, got {list(ks)}")


def check_two_keys(keys: np.ndarray, what: str, where: str) -> None:
    """UsageError when every gallery item shares one key: each would be a hit, recall 1.0 whatever the features."""
    found = np.unique(keys)
    if len(found) < 2:
        raise UsageError(f"{where}: every item has the same {what} ({str(found[0]) if len(found) else 'none'!r}): "
                         "every query would be a hit; retrieval needs at least 2")


def recall_at_k(ranks: np.ndarray, ks=DEFAULT_KS) -> dict[str, float]:
    """{"recall@k": share of ranks <= k} for each k (each >= 1)."""
    check_ks(ks)
    return {f"recall@{k}": float(np.mean(ranks <= k)) for k in ks}


def top_matches(query_x: np.ndarray, gallery_x: np.ndarray, n: int) -> np.ndarray:
    """int [Q, n] gallery indices of the n most similar items of each query, best first."""
    sim = l2_normalise(query_x) @ l2_normalise(gallery_x).T
    return np.argsort(-sim, axis=1, kind="stable")[:, :n]


def evaluate_class_retrieval(runs: list[Run], modality: str, ks=DEFAULT_KS, examples: int = 0) -> dict:
    """Test rows query the training rows; a hit is a gallery item of the query's class. Mean over runs.
    UsageError for a gallery of one class (every query would score 1.0) or a cut-off below 1."""
    check_ks(ks)
    per_run, shown = [], []
    for run in runs:
        f = run.features
        x = f.matrix(modality)
        check_two_keys(f.label[run.train], "class", f"{f.source} ({run.name}) training side")
        ranks = relevance_ranks(x[run.test], x[run.train], f.label[run.test], f.label[run.train])
        per_run.append({"name": run.name, **recall_at_k(ranks, ks),
                        "n_queries": int(len(run.test)), "n_gallery": int(len(run.train))})
        if examples and not shown:
            shown = retrieval_examples(f, run.test[:examples], run.train, x[run.test[:examples]], x[run.train],
                                       key="label", n=max(ks[:2]) if len(ks) > 1 else ks[0],
                                       direction=f"{modality} → {modality} (test clips query the training clips)")
    result = {name: float(np.mean([r[name] for r in per_run])) for name in per_run[0] if name.startswith("recall@")}
    return {**result, "runs": per_run, "_examples": shown}


def evaluate_cross_modal(features: Features, ks=DEFAULT_KS, match: str = "path", subset: str | None = None,
                         examples: int = 0, leave_out_own: bool = False, warn_repeated: bool = True) -> dict:
    """Audio queries against the video gallery and back, over the rows of `features` (or split == subset).

    A hit is the gallery item with the same `match` key ("path": the same clip; "group": any clip of
    the same source; "label": any clip of the same class). Keys: `a2v_recall@k`, `v2a_recall@k`, `a2v_median_rank`, `v2a_median_rank`,
    and `recall@k`, `median_rank` = the means of the two directions; `n_repeated_audio_rows` /
    `n_repeated_video_rows` count exact repeats (warn_on_repeated_rows; `warn_repeated=False` counts them
    without the warning, for a caller that scores the same features again). With `leave_out_own` each query's
    own clip (same path) is out of its gallery, so a "label" hit has to be another clip of the class,
    not the query's own audio or video found again.
    """
    if match not in MATCH_KEYS:
        raise UsageError(f"--match must be one of {MATCH_KEYS}, got {match!r}")
    if leave_out_own and match == "path":
        raise UsageError("retrieval by path with each query's own clip left out has no hit to find")
    check_ks(ks)
    if subset is not None:
        features = features.take(np.flatnonzero(features.split == subset))
        if len(features) == 0:
            raise UsageError(f"{features.source}: no rows with split {subset!r}")
    audio, video = features.matrix("audio"), features.matrix("video")
    keys = {"path": features.path, "group": features.groups(), "label": features.label}[match]
    check_two_keys(keys, f"--match {match} key", features.source or "features")
    result: dict = {"n_queries": int(len(features)),
                    "n_repeated_audio_rows": warn_on_repeated_rows(audio, "audio", features.source, warn_repeated),
                    "n_repeated_video_rows": warn_on_repeated_rows(video, "video", features.source, warn_repeated)}
    for name, query, gallery in (("a2v", audio, video), ("v2a", video, audio)):
        ids = features.path if leave_out_own else None
        ranks = relevance_ranks(query, gallery, keys, keys, ids, ids)
        for key, value in recall_at_k(ranks, ks).items():
            result[f"{name}_{key}"] = value
        finite = ranks[np.isfinite(ranks)]
        result[f"{name}_median_rank"] = float(np.median(finite)) if len(finite) else float("nan")
    for k in ks:
        result[f"recall@{k}"] = (result[f"a2v_recall@{k}"] + result[f"v2a_recall@{k}"]) / 2
    result["median_rank"] = (result["a2v_median_rank"] + result["v2a_median_rank"]) / 2
    if examples:
        rows, gallery = np.arange(min(examples, len(features))), np.arange(len(features))
        result["_examples"] = [
            *retrieval_examples(features, rows, gallery, audio[rows], video, key=match, n=5,
                                direction="audio → video"),
            *retrieval_examples(features, rows, gallery, video[rows], audio, key=match, n=5,
                                direction="video → audio")]
    return result


def retrieval_examples(features: Features, query_rows: np.ndarray, gallery_rows: np.ndarray,
                       query_x: np.ndarray, gallery_x: np.ndarray, key: str, n: int, direction: str) -> list[dict]:
    """For the report: each query's path and label with its top-n gallery paths and hit marks, and the
    `direction` of the search (e.g. "audio → video": an audio query ranks the video gallery)."""
    values = {"label": features.label, "path": features.path, "group": features.groups()}[key]
    top = top_matches(query_x, gallery_x, n)
    out = []
    for q, row in enumerate(query_rows):
        hits = [gallery_rows[j] for j in top[q]]
        out.append({"direction": direction, "query": str(features.path[row]), "label": str(features.label[row]),
                    "results": [{"path": str(features.path[g]), "label": str(features.label[g]),
                                 "hit": bool(values[g] == values[row])} for g in hits]})
    return out
