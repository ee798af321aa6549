"""Linear probe against scikit-learn: the C that GridSearchCV picks and the predictions it makes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import top_k_accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from avssl.errors import UsageError
from avssl.evaluate.linear import group_folds, linear_probe, topk_accuracy

CS = (0.001, 0.01, 0.1, 1.0, 10.0)


@pytest.fixture
def data(make_clustered):
    rng = np.random.default_rng(3)
    labels = np.array([f"c{i % 7}" for i in range(140)])
    x = make_clustered(labels.tolist(), dim=12, spread=1.2, seed=1) * rng.uniform(0.5, 20, 12)  # uneven scales
    groups = np.array([f"g{i // 4}" for i in range(140)])  # 4 clips per source
    test = rng.random(140) < 0.3
    test_groups = np.unique(groups[test])
    test = np.isin(groups, test_groups)
    return x, labels, groups, test


def test_group_folds_never_split_a_group_and_cover_every_row():
    groups = np.array([f"g{i // 3}" for i in range(40)])
    folds = group_folds(groups, 5, seed=7)
    assert len(folds) == 5
    seen = np.concatenate([val for _, val in folds])
    assert sorted(seen.tolist()) == list(range(40))
    for train, val in folds:
        assert not set(groups[train]) & set(groups[val])
    assert [v.tolist() for _, v in group_folds(groups, 5, 7)] == [v.tolist() for _, v in folds]
    with pytest.raises(UsageError, match="at least 2 source groups"):
        group_folds(np.array(["a", "a"]), 5, 0)


def test_probe_matches_sklearn_grid_search_with_the_same_folds(data):
    x, labels, groups, test = data
    result = linear_probe(x[~test], labels[~test], x[test], labels[test], groups[~test], cs=CS, cv=4, seed=0)

    classes = sorted(set(labels[~test]))
    y = np.array([classes.index(v) for v in labels])
    search = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=0)),
                          {"logisticregression__C": list(CS)}, cv=group_folds(groups[~test], 4, 0), scoring="accuracy")
    with threadpool_limits(limits=1, user_api="blas"):  # speed only: 2 OpenBLAS threads slow L-BFGS-B here
        search.fit(x[~test], y[~test])
    assert result.c == search.best_params_["logisticregression__C"]
    np.testing.assert_allclose([result.cv_scores[c] for c in CS], search.cv_results_["mean_test_score"], atol=1e-12)
    proba = search.predict_proba(x[test])
    np.testing.assert_array_equal(result.y_pred, proba.argmax(axis=1))
    assert result.top1 == pytest.approx(np.mean(search.predict(x[test]) == y[test]))
    assert result.top5 == pytest.approx(top_k_accuracy_score(y[test], proba, k=5, labels=range(7)))
    assert result.top1 > 0.5  # well above the 1/7 chance on clustered features


def test_topk_accuracy_matches_sklearn_and_counts_unseen_classes_as_misses():
    rng = np.random.default_rng(0)
    scores, y = rng.normal(size=(200, 9)), rng.integers(0, 9, 200)
    for k in (1, 3, 5):
        assert topk_accuracy(scores, y, k) == pytest.approx(top_k_accuracy_score(y, scores, k=k, labels=range(9)))
    y[:10] = -1
    assert topk_accuracy(scores, y, 9) == pytest.approx(0.95)
