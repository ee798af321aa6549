"""Evaluation of frozen features: linear probe, kNN, retrieval, fingerprinting metrics and reports.

Modules: extract (+ model_loading: a checkpoint or random:CONFIG) computes features, features (the
.npz files `avssl extract` writes), finetune (the clip-averaged test of `avssl finetune`), fingerprint_driver (`avssl eval
fingerprint`), protocols (official splits / folds, leak checks), linear, knn, retrieval,
fingerprint (+ query_transforms), report (+ plots). Import them directly; this package imports
nothing so that `import avssl.evaluate` stays cheap.
"""
