"""What produced a demo's results.json, in the shape `avssl eval` gives its result files
(avssl.evaluate.report.provenance: config, seed(s), inputs with their SHA-256, code version, UTC
time), and per method the resolved training config, the checkpoint's identity and the features
files each evaluation read."""

from __future__ import annotations

import glob
import os
from typing import Any


def method_provenance(config: Any, checkpoint: str, feature_dirs: dict[str, str], train_seed: int | None) -> dict:
    """The resolved config of the run, the checkpoint (path, SHA-256) and, per side
    (pretrained, random), the features files with their SHA-256 and recorded model and space."""
    from avssl.config.schema import config_to_dict
    from avssl.evaluate.features import file_sha256, load_features

    features = {}
    for side, folder in feature_dirs.items():
        features[side] = []
        for path in sorted(glob.glob(os.path.join(folder, "*.npz"))):
            loaded = load_features(path)
            features[side].append({"path": os.path.abspath(path), "sha256": file_sha256(path),
                                   "model": loaded.model, "space": loaded.space})
    return {"config": config_to_dict(config), "train_seed": train_seed,
            "checkpoint": {"path": os.path.abspath(checkpoint), "sha256": file_sha256(checkpoint)},
            "features": features}


def demo_provenance(results: dict, manifests: dict[str, str], plan: Any, workers: int) -> dict:
    """evaluate.report.provenance of the demo: its options as the config, the training seed(s) (the
    configs' own seed, 0, without --seeds), and the manifests as inputs."""
    import dataclasses

    from avssl.evaluate.report import provenance

    options = {"plan": dataclasses.asdict(plan), "methods": list(results["methods"]), "workers": workers,
               "world_seed": results["seed"]}
    seeds = results.get("seeds", 0)
    return provenance(options, seeds, [manifests[name] for name in sorted(manifests)])
