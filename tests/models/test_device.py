"""avssl.models.device: `auto` is the best device available; a named one must exist here."""

from __future__ import annotations

import pytest
import torch

from avssl.errors import UsageError
from avssl.models import device as device_module
from avssl.models.device import best_device, resolve_device


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert best_device() == "cuda" and resolve_device("auto") == "cuda" and resolve_device(None) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_module, "mps_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(device_module, "mps_available", lambda: False)
    assert resolve_device("auto") == "cpu"


def test_a_missing_or_unknown_device_is_a_usage_error_naming_the_option(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="--device cuda:1: CUDA is not available"):
        resolve_device("cuda:1")
    with pytest.raises(UsageError, match="--device gpu0: not a torch device"):
        resolve_device("gpu0")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("argv", [["extract", "--checkpoint", "c", "--data", "d", "--out", "o"],
                                  ["eval", "fingerprint", "--checkpoint", "c", "--data", "d"],
                                  ["bench", "train", "--model", "r3d_18"]])
def test_verbs_default_to_the_best_device(argv):
    from avssl import cli

    parser = cli._build_parser(argv[0])
    assert parser.parse_args(argv).device == "auto"
