"""State dicts of encoders and models, as plain mappings: wrapper prefixes, submodule selection, and the
first key where weights and a model differ. No file I/O (reading checkpoints is avssl.train's)."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from avssl.errors import UsageError

_LEADING_WRAPPERS = ("module.", "model.", "_orig_mod.")


class CheckpointMismatchError(UsageError):
    """The checkpoint's weights do not fit the model's architecture; the message names the first differing key."""


def strip_wrapper_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop leading ``module.``/``model.``/``_orig_mod.`` (repeatedly) and inner ``_orig_mod.`` segments
    (DDP, Lightning wrappers, torch.compile)."""
    stripped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new_key = key.replace("._orig_mod.", ".")
        changed = True
        while changed:
            changed = False
            for prefix in _LEADING_WRAPPERS:
                if new_key.startswith(prefix):
                    new_key, changed = new_key[len(prefix):], True
        stripped[new_key] = value
    return stripped


def entries_under(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries whose key starts with ``prefix.``, with the prefix removed (empty when none)."""
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}


def select_submodule(state_dict: Mapping[str, torch.Tensor], reference_keys: list[str], prefix: str | None,
                     source: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix.`` (prefix removed). With ``prefix=None``: the whole dict when the
    reference keys are at top level, else the entries under the one prefix that holds the reference's
    first key; several such prefixes (e.g. an encoder and its momentum copy) need an explicit prefix.
    ``source`` names the checkpoint in errors."""
    if prefix is not None:
        prefix = prefix.rstrip(".")
        for candidate in (prefix, *(prefix[len(w):] for w in _LEADING_WRAPPERS if prefix.startswith(w))):
            selected = entries_under(state_dict, candidate)
            if selected:
                return selected
        raise UsageError(f"checkpoint {source} has no weights under prefix {prefix!r}")
    if not reference_keys or reference_keys[0] in state_dict:
        return dict(state_dict)
    first = reference_keys[0]
    candidates = sorted({k[: -len(first) - 1] for k in state_dict if k.endswith("." + first)})
    if len(candidates) > 1:
        raise UsageError(f"checkpoint {source} holds several encoders {candidates}; pass prefix= to choose one")
    if len(candidates) == 1:
        return select_submodule(state_dict, reference_keys, candidates[0], source)
    return dict(state_dict)


def first_difference(state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> str | None:
    """A description of the first key (in the model's order) that is missing, extra or of another shape."""
    for key, value in expected.items():
        if key not in state_dict:
            return f"first differing key {key!r}: missing from the checkpoint"
        if tuple(state_dict[key].shape) != tuple(value.shape):
            return (f"first differing key {key!r}: shape {list(state_dict[key].shape)} in the checkpoint, "
                    f"{list(value.shape)} in the model")
    for key in state_dict:
        if key not in expected:
            return f"first differing key {key!r}: in the checkpoint but not in the model"
    return None


def load_submodule(module: nn.Module, state_dict: Mapping[str, torch.Tensor], prefixes: Sequence[str],
                   source: str) -> None:
    """Load ``module`` from the entries under the first of ``prefixes`` that has any (wrapper prefixes
    stripped first). CheckpointMismatchError when none has entries or they do not fit the module."""
    state = strip_wrapper_prefixes(state_dict)
    for prefix in prefixes:
        selected = entries_under(state, prefix)
        if selected:
            break
    else:
        raise CheckpointMismatchError(f"checkpoint {source} has no weights under "
                                      + " or ".join(f"'{p}.'" for p in prefixes))
    difference = first_difference(selected, module.state_dict())
    if difference is not None:
        raise CheckpointMismatchError(f"checkpoint {source}: {prefix} does not match the model: {difference}")
    module.load_state_dict(selected, strict=True)
