"""Video encoder weights in the layouts users already have, mapped onto avssl's encoders. Plain torch.

Layouts (the key names of the published code, followed from these files):

- ``torchvision``: ``torchvision.models.video`` r2plus1d_18 / r3d_18 / mc3_18 (``stem.*``,
  ``layer1..4.*``, ``fc.*``). avssl's VideoResNet has the same keys and shapes, so the map is the
  identity; the 400-class ``fc.*`` classifier is dropped and reported.
- ``xdc``: HumamAlwassel/XDC ``xdc.py`` (commit b88137398f53) loads its weights with
  ``load_state_dict(strict=False)`` into torchvision's ``r2plus1d_18``: torchvision's layout (``fc.*``,
  when present, dropped).
- ``gdt``: facebookresearch/GDT ``model.py`` (commit 11ded83af211): ``GDT.video_network`` is a
  ``VideoBaseNetwork`` whose ``base`` is ``src/vmz.py``'s r2plus1d_18 (torchvision's layout, with
  ``fc`` replaced by Identity); its checkpoints hold ``{"model": state_dict}`` with the video keys
  under ``video_network.base.`` (``module.`` first when saved from DDP). The audio network and the
  ``mlp_v`` / ``mlp_a`` heads are dropped and reported.
- ``avid-cma``: facebookresearch/AVID-CMA ``models/video.py`` and ``models/network_blocks.py``
  (commit 9250866718d0). Its ``R2Plus1D`` differs from torchvision's R(2+1)D-18 in structure, so it
  maps onto its own avssl encoder, ``avid_r2plus1d_18`` (``avssl.models.video_avid``), whose key
  names are upstream's: the map is the identity after the prefix. Pretraining checkpoints
  (``utils/main_utils.py`` ``CheckpointManager``) hold ``{"epoch", "model", "optimizer",
  "train_criterion"}`` with ``model`` the DDP-wrapped ``AV_Wrapper`` (``models/av_wrapper.py``): the
  video keys are under ``module.video_model.``; ``audio_model.*``, ``video_proj.*`` and
  ``audio_proj.*`` are dropped and reported. Fine-tuning checkpoints (``eval-action-recg.py``) hold
  ``{"state_dict"}`` with the trunk under ``module.feature_extractor.`` (the ``classifier.*`` is
  dropped); a bare ``R2Plus1D`` state dict (``conv1.*`` at top level) is taken as it is.

Wrapper prefixes (``module.``, ``model.``) are stripped and a checkpoint dict holding the weights
under ``state_dict`` or ``model`` is unwrapped first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from avssl.errors import UsageError
from avssl.models.state_dict import entries_under, strip_wrapper_prefixes
from avssl.models.video_avid import AVID_R2PLUS1D_NAME

LAYOUTS = ("torchvision", "xdc", "gdt", "avid-cma")
GDT_VIDEO_PREFIX = "video_network.base"
CLASSIFIER_PREFIX = "fc."
# where AVID-CMA's checkpoints keep the video trunk: AV_Wrapper's video_model (pretraining), the
# evaluation ClassificationWrapper's feature_extractor (fine-tuning)
AVID_CMA_VIDEO_PREFIXES = ("video_model", "feature_extractor")
AVID_CMA_STEM_KEY = "conv1.0.weight"


@dataclass
class ImportedWeights:
    """A state dict in the key names of the avssl encoder it fits, that encoder's config (for
    ``build_encoder``), and the keys dropped."""

    state_dict: dict[str, torch.Tensor]
    architecture: dict[str, Any]
    layout: str
    dropped: list[str] = field(default_factory=list)


def unwrap_checkpoint(payload: Any, source: str = "weights") -> dict[str, torch.Tensor]:
    """The state dict in `payload`: itself when all values are tensors, else its `state_dict` or
    `model` entry; wrapper prefixes stripped. UsageError naming `source` otherwise."""
    if isinstance(payload, Mapping) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return strip_wrapper_prefixes(payload)
    for key in ("state_dict", "model"):
        inner = payload.get(key) if isinstance(payload, Mapping) else None
        if isinstance(inner, Mapping):
            return unwrap_checkpoint(inner, source)
    raise UsageError(f"{source} holds no state dict (a mapping of tensors, or one under 'state_dict' or 'model')")


def infer_architecture(state: Mapping[str, torch.Tensor], source: str = "weights") -> dict[str, Any]:
    """The VideoResNet config (name, width, layers) that torchvision-layout keys describe."""
    if "stem.0.weight" not in state:
        raise UsageError(f"{source}: no 'stem.0.weight' key: not a torchvision-layout VideoResNet")
    blocks: dict[int, set[int]] = {}
    for key in state:
        match = re.match(r"layer(\d+)\.(\d+)\.", key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if not blocks or sorted(blocks) != list(range(1, len(blocks) + 1)):
        raise UsageError(f"{source}: no consecutive layer1.. layerN blocks: not a torchvision-layout VideoResNet")
    layers = [len(blocks[i]) for i in sorted(blocks)]
    if "stem.3.weight" in state:  # the factorised (2+1)D stem: 1x7x7 conv, BN, ReLU, 3x1x1 conv
        name, width = "r2plus1d_18", state["stem.3.weight"].shape[0]
    else:
        width = state["stem.0.weight"].shape[0]
        later = state.get("layer2.0.conv1.0.weight")
        name = "mc3_18" if later is not None and later.shape[2] == 1 else "r3d_18"
    return {"name": name, "width": int(width), "layers": layers, "in_channels": int(state["stem.0.weight"].shape[1])}


def infer_avid_architecture(state: Mapping[str, torch.Tensor], source: str = "weights") -> dict[str, Any]:
    """The ``avid_r2plus1d_18`` config (width, layers, in_channels) that AVID-CMA R2Plus1D keys describe."""
    if AVID_CMA_STEM_KEY not in state:
        raise UsageError(f"{source}: no '{AVID_CMA_STEM_KEY}' key: not an AVID-CMA R2Plus1D")
    blocks: dict[int, set[int]] = {}
    for key in state:
        match = re.match(r"conv(\d+)x\.(\d+)\.", key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    if not blocks or sorted(blocks) != list(range(2, len(blocks) + 2)):
        raise UsageError(f"{source}: no consecutive conv2x.0.. convNx.K blocks: not an AVID-CMA R2Plus1D "
                         "of depth 18 or 34 (depth 10's stages hold a bare block)")
    stem = state[AVID_CMA_STEM_KEY]
    return {"name": AVID_R2PLUS1D_NAME, "width": int(stem.shape[0]),
            "layers": [len(blocks[i]) for i in sorted(blocks)], "in_channels": int(stem.shape[1])}


def convert_avid_cma(state: Mapping[str, torch.Tensor], source: str = "weights") -> ImportedWeights:
    """An AVID-CMA state dict (wrapper prefixes stripped) -> the ``avid_r2plus1d_18`` trunk's entries;
    the other models' entries (audio, projection heads, classifier) dropped and reported."""
    for prefix in AVID_CMA_VIDEO_PREFIXES:
        video = entries_under(state, prefix)
        if video:
            dropped = [k for k in state if not k.startswith(prefix + ".")]
            return ImportedWeights(video, infer_avid_architecture(video, source), "avid-cma", dropped)
    if AVID_CMA_STEM_KEY in state:
        return ImportedWeights(dict(state), infer_avid_architecture(state, source), "avid-cma")
    raise UsageError(f"{source}: no keys under " + " or ".join(f"'{p}.'" for p in AVID_CMA_VIDEO_PREFIXES)
                     + f" and no '{AVID_CMA_STEM_KEY}': not an AVID-CMA checkpoint")


def convert_state_dict(payload: Any, layout: str, source: str = "weights") -> ImportedWeights:
    """`payload` (a state dict or a checkpoint dict) in `layout` -> the key names of an avssl encoder."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown weights layout {layout!r}; known: {', '.join(LAYOUTS)}")
    state = unwrap_checkpoint(payload, source)
    if layout == "avid-cma":
        return convert_avid_cma(state, source)
    dropped: list[str] = []
    if layout == "gdt":
        video = entries_under(state, GDT_VIDEO_PREFIX)
        if not video:
            raise UsageError(f"{source}: no keys under '{GDT_VIDEO_PREFIX}.': not a GDT checkpoint")
        dropped = [k for k in state if not k.startswith(GDT_VIDEO_PREFIX + ".")]
        state = video
    kept = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIX)}
    dropped += [k for k in state if k.startswith(CLASSIFIER_PREFIX)]
    return ImportedWeights(kept, infer_architecture(kept, source), layout, dropped)
