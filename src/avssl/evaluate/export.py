"""`avssl export`: a checkpoint's encoders and heads as safetensors, a config.json and a model card.

The format (what the folder holds, what is kept, how it is read back) is avssl.evaluate.export_format;
the model card is avssl.evaluate.model_card; TorchScript / ONNX variants avssl.evaluate.export_traced.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from avssl.config.schema import config_to_dict
from avssl.errors import UsageError
from avssl.evaluate.export_format import (
    CONFIG_FILE,
    DATA_FINGERPRINT_KEY,
    EXPORT_FORMAT,
    EXPORT_VERSION,
    safetensors_module,
    exported_modules,
    input_shapes,
)

log = logging.getLogger(__name__)


def _source_info(source: str, loaded: Any, kind: str) -> dict[str, Any]:
    from avssl.evaluate.features import file_sha256

    info: dict[str, Any] = {"path": os.path.abspath(source) if kind == "checkpoint" else source,
                            "step": loaded.step, "random_init": loaded.random_init, "sha256": "",
                            "data_fingerprint": None}
    if kind == "checkpoint":
        from avssl.train.checkpoint_format import safe_load

        info["sha256"] = file_sha256(source)
        # the fingerprint of the training table (paths, durations, groups) that `avssl pretrain` stores
        info["data_fingerprint"] = safe_load(source, mmap=True).get(DATA_FINGERPRINT_KEY)
    return info


def _manifest_info(data: str | None) -> dict[str, str] | None:
    from avssl.evaluate.features import file_sha256

    if data is None:
        return None
    if not os.path.isfile(data):
        raise UsageError(f"--data {data}: manifest not found")
    return {"path": os.path.abspath(data), "sha256": file_sha256(data)}


def write_modules(method: Any, out: Path) -> dict[str, dict[str, Any]]:
    """One <name>.safetensors per exported module of `method`; returns config.json's `modules`."""
    st = safetensors_module()
    modules = {}
    for name, module in exported_modules(method).items():
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        st.save_file(state, str(out / f"{name}.safetensors"), metadata={"format": "pt", "module": name})
        architecture = getattr(module, "config", None)
        modules[name] = {"file": f"{name}.safetensors", "tensors": len(state),
                         "parameters": sum(p.numel() for p in module.parameters()),
                         **({"architecture": dict(architecture)} if isinstance(architecture, dict) else {})}
    return modules


def export_model(source: str, out: str | os.PathLike, *, torchscript: bool = False, onnx: bool = False,
                 data: str | None = None) -> dict[str, Any]:
    """Export `source` (a run dir, a last.ckpt or random:CONFIG) into the folder `out`; returns the
    config.json written. `data`: the manifest the run trained on (its path and hash go in the card).
    Bad options and inputs are refused (UsageError) before anything is written."""
    import avssl
    from avssl.evaluate.export_traced import export_variants, require_onnx
    from avssl.evaluate.model_card import write_model_card
    from avssl.evaluate.model_loading import load_model
    from avssl.evaluate.pretrained import resolve_model_path
    from avssl.methods.registry import method_class

    kind, resolved = resolve_model_path(source)
    if kind == "export":
        raise UsageError(f"{source} is already an export of `avssl export`")
    if onnx:
        require_onnx()
    manifest = _manifest_info(data)
    loaded = load_model(resolved, "cpu")
    if type(loaded.method) is not method_class(loaded.config.method.name):
        raise UsageError(f"{resolved}: a fine-tuned checkpoint ({type(loaded.method).__name__}); "
                         "avssl export writes pretrained models")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "avssl_version": avssl.__version__,
              "method": loaded.config.method.name, "source": _source_info(resolved, loaded, kind),
              "data_manifest": manifest, "modules": write_modules(loaded.method, out),
              "inputs": input_shapes(loaded.config), "variants": {}, "config": config_to_dict(loaded.config)}
    if torchscript or onnx:
        record["variants"] = export_variants(loaded.method, loaded.config, out, torchscript=torchscript, onnx=onnx)
    (out / CONFIG_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    write_model_card(out / "README.md", record, resolved if kind == "checkpoint" else None)
    return record
