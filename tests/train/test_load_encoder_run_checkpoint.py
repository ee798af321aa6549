"""load_encoder on a run's checkpoint: the encoder is rebuilt from the run config stored in it
(`avssl_config`: model.video / model.audio), the prefix picks `video_encoder.*` exactly (not
temporal-av's momentum copies `key_video.*`), and a missing prefix is a clear error."""

from __future__ import annotations

import pytest
import torch

from avssl.config.bundled import resolve_config_path
from avssl.config.schema import config_to_dict
from avssl.errors import UsageError
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class
from avssl.train.checkpoint_format import TRAINING_FORMAT_VERSION, load_encoder


def run_checkpoint(path, name="temporal-av-tiny"):
    """A checkpoint with what `avssl pretrain` stores (avssl.train.callbacks.RunRecord), whose
    momentum encoders differ from the online ones, as they do after training."""
    config = load_config(resolve_config_path(name))
    torch.manual_seed(0)
    method = method_class(config.method.name)(config)
    state = method.state_dict()
    for key in state:
        if key.startswith("key_") and state[key].is_floating_point():
            state[key] = state[key] + 1.0
    torch.save({"state_dict": state, "avssl_config": config_to_dict(config), "global_step": 3,
                "avssl_format_version": TRAINING_FORMAT_VERSION, "avssl_method": config.method.name}, path)
    return method, config


def test_encoders_are_rebuilt_from_the_run_config(tmp_path):
    path = tmp_path / "last.ckpt"
    method, config = run_checkpoint(path)
    assert any(k.startswith("key_video.") for k in method.state_dict())  # the momentum copy is there
    for prefix, key in (("video_encoder", "video"), ("audio_encoder", "audio")):
        encoder = load_encoder(path, prefix=prefix)
        original = getattr(method, prefix)
        assert encoder.config == original.config and encoder.config["name"] == getattr(config.model, key)["name"].split("-")[0]
        assert encoder.state_dict().keys() == original.state_dict().keys()
        for name, value in original.state_dict().items():
            assert torch.equal(encoder.state_dict()[name], value), name
    x = torch.randn(2, 3, 8, 32, 32)
    encoder = load_encoder(path, prefix="video_encoder").eval()
    torch.testing.assert_close(encoder(x), method.video_encoder.eval()(x))


def test_without_a_prefix_the_error_asks_for_one(tmp_path):
    path = tmp_path / "last.ckpt"
    run_checkpoint(path, "avts-tiny")
    with pytest.raises(UsageError, match=r"last.ckpt.*prefix='video_encoder' or prefix='audio_encoder'"):
        load_encoder(path)
    with pytest.raises(UsageError, match=r"prefix 'video_head' names no encoder"):
        load_encoder(path, prefix="video_head")


def test_a_given_encoder_still_loads_without_the_run_config(tmp_path):
    path = tmp_path / "last.ckpt"
    method, _ = run_checkpoint(path, "avts-tiny")
    payload = torch.load(path, weights_only=True)
    del payload["avssl_config"]
    torch.save(payload, path)
    with pytest.raises(UsageError, match="stores no architecture config"):
        load_encoder(path, prefix="audio_encoder")
    from avssl.models.factory import build_encoder

    encoder = load_encoder(path, build_encoder(method.audio_encoder.config), prefix="audio_encoder")
    assert torch.equal(next(iter(encoder.state_dict().values())), next(iter(method.audio_encoder.state_dict().values())))
