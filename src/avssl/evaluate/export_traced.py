"""TorchScript and ONNX variants of an export's two encoders, traced at the config's clip shape.

Each variant takes what the eager encoder takes (avssl.evaluate.export.input_shapes: normalised
video [B, 3, T, S, S], log-mel [B, 1, n_mels, frames]) with the batch dimension free and T, S,
n_mels and frames fixed to the config's clip; the preprocessing (uint8 -> normalised, waveform ->
log-mel) stays outside and is described in config.json. ONNX needs the optional packages `onnx`
and `onnxscript` (pip install 'avssl[export]'); `onnxruntime` runs the files.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from avssl.errors import UsageError

log = logging.getLogger(__name__)

ONNX_PACKAGES = ("onnx", "onnxscript")
ONNX_OPSET = 18


def example_inputs(config: Any) -> dict[str, torch.Tensor]:
    """One zero input of batch 2 per encoder, at the config's clip shape."""
    from avssl.evaluate.export_format import input_shapes

    shapes = input_shapes(config)
    return {"video_encoder": torch.zeros(2, *shapes["video"]), "audio_encoder": torch.zeros(2, *shapes["audio"])}


def require_onnx() -> None:
    """UsageError naming the missing package when ONNX export cannot run here."""
    for name in ONNX_PACKAGES:
        if importlib.util.find_spec(name) is None:
            raise UsageError(f"--onnx needs the `{name}` package, which is not installed: "
                             "pip install 'avssl[export]'")


def export_torchscript(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """torch.jit.trace of `module` on `example`, saved to `path`."""
    with warnings.catch_warnings():
        # the encoders' input checks become constants of the trace, which is what a fixed shape means
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(module, example)
    traced.save(str(path))


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str) -> None:
    """ONNX (opset ONNX_OPSET) of `module` with a free batch dimension, saved to `path`."""
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(path), input_names=[input_name], output_names=["features"],
                          dynamo=True, dynamic_shapes=({0: batch},), opset_version=ONNX_OPSET, verbose=False)


def export_variants(method: Any, config: Any, out: Path, *, torchscript: bool, onnx: bool) -> dict[str, dict[str, str]]:
    """Write the requested variants of method.video_encoder / audio_encoder into `out`;
    returns {"torchscript": {encoder: file}, "onnx": {encoder: file}} for config.json."""
    if onnx:
        require_onnx()
    written: dict[str, dict[str, str]] = {}
    for name, example in example_inputs(config).items():
        module = getattr(method, name).eval()
        if torchscript:
            export_torchscript(module, example, out / f"{name}.torchscript.pt")
            written.setdefault("torchscript", {})[name] = f"{name}.torchscript.pt"
        if onnx:
            export_onnx(module, example, out / f"{name}.onnx", name.split("_")[0])
            written.setdefault("onnx", {})[name] = f"{name}.onnx"
    log.info("wrote %s", ", ".join(f for files in written.values() for f in files.values()))
    return written
