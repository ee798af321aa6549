"""What a resumed run must share with the run it continues: the config (except the keys that do not
change what a step computes) and the training table (a fingerprint stored in every checkpoint)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from avssl.config.schema import Config, config_to_dict
from avssl.config.typed import ConfigError
from avssl.data.dataset import FileTable
from avssl.errors import UsageError
from avssl.methods.configs import config_from_dict
from avssl.train.callbacks import DATA_FINGERPRINT_KEY

log = logging.getLogger(__name__)

# config keys a resumed run may change. max_steps extends (or shortens) the run; the others change
# how fast the data arrives or how often the run reports, never which samples or numbers a step uses
RESUMABLE_CHANGES = (
    "trainer.max_steps", "trainer.progress_bar", "trainer.log_every_n_steps", "trainer.checkpoint_every_n_steps",
    "trainer.logger",
    "data.num_workers", "data.pin_memory", "data.persistent_workers", "data.prefetch_factor", "data.cache_dir",
    "probe.manifest", "probe.every_n_steps", "probe.k", "probe.modality",
)


@dataclass
class RunPaths:
    """The files of a run folder."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def bad_files(self) -> Path:
        return self.root / "bad_files.csv"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and tuples compare as lists."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: list(data) if isinstance(data, tuple) else data}


def config_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two plain configs."""
    a, b = flatten(saved), flatten(new)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))


def check_resume_config(checkpoint: dict[str, Any], config: Config, path: Path) -> None:
    saved = checkpoint.get("avssl_config")
    if saved is None:
        raise UsageError(f"{path} holds no avssl config: not a checkpoint of `avssl pretrain`")
    # a key added to the schema after the run started is compared at its default: re-validating
    # the saved config fills it in, so that new code can resume an older run
    saved = with_schema_defaults(saved)
    new = config_to_dict(config)
    changed = [k for k in config_differences(saved, new) if k not in RESUMABLE_CHANGES]
    if changed:
        details = "; ".join(f"{k}: {flatten(saved).get(k, '<absent>')!r} -> {flatten(new).get(k, '<absent>')!r}"
                            for k in changed[:5])
        raise ConfigError(
            f"config key '{changed[0]}' differs from the run being resumed in {path.parent.parent} ({details}); "
            f"only {', '.join(RESUMABLE_CHANGES)} may change on resume. Use a new --out folder to start a new run."
        )


def with_schema_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config as today's schema reads it (new keys at their defaults); as saved if it no
    longer validates (the comparison then names the key that changed)."""
    try:
        return config_to_dict(config_from_dict(saved))
    except ConfigError:
        return saved




def table_fingerprint(table: FileTable) -> str:
    """sha256 over the training table's rows in order: paths, durations and groups ("sha256:<hex>")."""
    digest = hashlib.sha256()
    digest.update(len(table).to_bytes(8, "little"))
    for path in table.paths:
        encoded = str(path).encode("utf-8")
        digest.update(len(encoded).to_bytes(4, "little") + encoded)
    digest.update(np.ascontiguousarray(table.durations, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(table.groups, dtype="<i8").tobytes())
    return "sha256:" + digest.hexdigest()


def check_resume_data(checkpoint: dict[str, Any], fingerprint: str, rows: int, manifest: str, run_dir: Path,
                      allow_change: bool) -> bool:
    """Whether the run resumes on other data than it trained on (only with `allow_change`, logged at
    WARNING); a UsageError naming --data without it. A checkpoint from before fingerprints passes."""
    saved: Optional[str] = checkpoint.get(DATA_FINGERPRINT_KEY)
    if saved is None:
        log.info("%s holds no data fingerprint (an older checkpoint): the data is not checked", run_dir)
        return False
    if saved == fingerprint:
        return False
    what = (f"the training table of --data {manifest} ({rows} usable rows, {fingerprint[:19]}...) differs from "
            f"the one the run in {run_dir} trained on ({saved[:19]}...)")
    if not allow_change:
        raise UsageError(f"{what}: resume with the same manifest, give a new --out, or pass --allow-data-change "
                         "to continue this run on the new data")
    log.warning("%s; --allow-data-change: training continues on the new table (the current epoch goes on "
                "at its batch count in the new table's order)", what)
    return True
