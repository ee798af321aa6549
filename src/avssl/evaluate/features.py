"""Features files: the .npz written by `avssl extract` and read by every `avssl eval` verb.

A features file holds `video` and/or `audio` (float32 [N, D], D >= 1) and the string columns `path`,
`label`, `split`, `group` ([N] each, from the manifest the features were extracted from), and, when
`avssl extract` wrote it, `model`: one string that identifies the model and feature space (files of one
model share it; evaluations refuse to average files of different models), and `space`: the feature
space of the rows, `backbone` (the encoders' outputs: linear probe, kNN, class retrieval) or `embedding`
(the projection heads' L2-normalised outputs, where audio and video are compared: cross-modal
retrieval). Strings are stored as numpy unicode arrays so the file loads with
`np.load(allow_pickle=False)`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from avssl.errors import UsageError

MODALITY_ARRAYS = ("video", "audio")
STRING_ARRAYS = ("path", "label", "split", "group")
SCALAR_STRINGS = ("model", "space")  # one string each, optional (files written before avssl recorded them)
JOINT_SPACE = "embedding"  # the space where audio and video rows are comparable


@dataclass(frozen=True)
class Features:
    """One features file in memory. `video` / `audio`: float32 [N, D] or None; strings: [N] 'U' arrays."""

    path: np.ndarray
    label: np.ndarray
    split: np.ndarray
    group: np.ndarray
    video: np.ndarray | None = None
    audio: np.ndarray | None = None
    source: str = ""
    model: str = ""  # the model and feature space the rows come from ("" when the file does not say)
    space: str = ""  # "backbone" or "embedding" ("" when the file does not say)

    def __len__(self) -> int:
        return len(self.path)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITY_ARRAYS if getattr(self, m) is not None)

    def matrix(self, modality: str) -> np.ndarray:
        """float32 [N, D] of `modality` ("video" or "audio"); a UsageError naming the file if absent."""
        if modality not in MODALITY_ARRAYS:
            raise UsageError(f"modality must be one of {MODALITY_ARRAYS}, got {modality!r}")
        value = getattr(self, modality)
        if value is None:
            raise UsageError(f"{self.source or 'features'}: no {modality!r} array "
                             f"(the file holds {', '.join(self.modalities) or 'no features'})")
        return value

    def groups(self) -> np.ndarray:
        """The source group of each row; an empty group means "its own source", so the path stands in."""
        return np.where(self.group == "", self.path, self.group)

    def take(self, indices: np.ndarray) -> Features:
        """The rows at `indices` (ints or bool mask), in that order."""
        pick = lambda a: None if a is None else a[indices]  # noqa: E731
        return Features(path=self.path[indices], label=self.label[indices], split=self.split[indices],
                        group=self.group[indices], video=pick(self.video), audio=pick(self.audio),
                        source=self.source, model=self.model, space=self.space)


def default_modality(features: Features, modality: str | None) -> str:
    """`modality` when given, else video when present, else audio."""
    if modality is not None:
        features.matrix(modality)
        return modality
    if not features.modalities:
        raise UsageError(f"{features.source}: holds neither a 'video' nor an 'audio' array")
    return features.modalities[0]


def save_features(path: str | os.PathLike, *, path_column, label, split, group,
                  video: np.ndarray | None = None, audio: np.ndarray | None = None, model: str = "",
                  space: str = "") -> str:
    """Write a features file (uncompressed .npz) after validating it; returns the path written.

    video / audio: [N, D] float arrays (at least one); path_column, label, split, group: N strings;
    model: what identifies the model and feature space (see the module docstring), "" for unknown;
    space: "backbone" or "embedding", "" for unknown.
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    for name, value in (("path", path_column), ("label", label), ("split", split), ("group", group)):
        arrays[name] = np.asarray([str(v) for v in value], dtype=str)
    for name, value in (("video", video), ("audio", audio)):
        if value is not None:
            arrays[name] = np.asarray(value, dtype=np.float32)
    for name, value in (("model", model), ("space", space)):
        if value:
            arrays[name] = np.asarray(str(value))
    _validate(arrays, path)
    with open(path, "wb") as f:  # np.savez appends .npz to a bare name; a file object keeps the name given
        np.savez(f, **arrays)
    return path


def load_features(path: str | os.PathLike) -> Features:
    """Read and validate a features file; errors are UsageErrors that name the file and the array."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UsageError(f"{path}: features file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as err:
        raise UsageError(f"{path}: not a readable features .npz ({err})") from None
    _validate(arrays, path)
    strings = {name: arrays[name].astype(str) for name in STRING_ARRAYS}
    scalars = {name: str(arrays[name]) if name in arrays else "" for name in SCALAR_STRINGS}
    return Features(**strings, video=arrays.get("video"), audio=arrays.get("audio"), source=path, **scalars)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (the provenance of features and manifests in reports)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _validate(arrays: dict[str, np.ndarray], path: str) -> None:
    missing = [name for name in STRING_ARRAYS if name not in arrays]
    if missing:
        raise UsageError(f"{path}: features file lacks array(s) {', '.join(missing)} "
                         f"(has {', '.join(sorted(arrays)) or 'none'})")
    if not any(name in arrays for name in MODALITY_ARRAYS):
        raise UsageError(f"{path}: features file lacks both 'video' and 'audio' arrays")
    for name in SCALAR_STRINGS:
        value = arrays.get(name)
        if value is not None and (value.ndim != 0 or value.dtype.kind not in "US"):
            raise UsageError(f"{path}: array {name!r} must be one string, got {value.dtype} {value.shape}")
    n = len(arrays["path"])
    for name in STRING_ARRAYS:
        value = arrays[name]
        if value.ndim != 1 or value.dtype.kind not in "US":
            raise UsageError(f"{path}: array {name!r} must be 1-D strings, got {value.dtype} {value.shape}")
        if len(value) != n:
            raise UsageError(f"{path}: array {name!r} has {len(value)} rows, 'path' has {n}")
    for name in MODALITY_ARRAYS:
        if name not in arrays:
            continue
        value = arrays[name]
        if value.ndim != 2 or value.dtype.kind != "f":
            raise UsageError(f"{path}: array {name!r} must be float [N, D], got {value.dtype} {value.shape}")
        if value.shape[1] == 0:
            raise UsageError(f"{path}: array {name!r} has 0 feature dimensions ({value.shape}): nothing to "
                             "evaluate; extract it again")
        if len(value) != n:
            raise UsageError(f"{path}: array {name!r} has {len(value)} rows, 'path' has {n}")
        bad = ~np.isfinite(value).all(axis=1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise UsageError(f"{path}: array {name!r} has non-finite values in {int(bad.sum())} row(s), "
                             f"first row {first} ({arrays['path'][first]})")


def require_joint_space(features: Features) -> None:
    """UsageError unless the file holds audio and video rows of one joint space (`space` embedding):
    audio and video backbone features live in unrelated spaces, so cross-modal retrieval on them scores
    chance whatever the model learnt. The error says which extract command writes the joint space."""
    extract = ("avssl extract --checkpoint CKPT --data MANIFEST.csv --out JOINT.npz --modality both "
               "--space embedding")
    where = features.source or "features"
    if features.space == JOINT_SPACE:
        return
    if not features.space:
        raise UsageError(f"{where}: the file does not record its feature space (written before avssl recorded "
                         f"it), and cross-modal retrieval needs audio and video in one joint space; extract it "
                         f"again with: {extract}")
    raise UsageError(f"{where}: holds {features.space} features, whose audio and video live in unrelated spaces "
                     f"(cross-modal recall on them is chance); cross-modal retrieval needs the joint space: {extract}")
