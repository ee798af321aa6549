"""av-nce: its spatial_pool option, the multiple-instance contrast whose per-position map is what
`avssl localize` draws."""

from __future__ import annotations

import pytest
import torch

from avssl.config.typed import ConfigError
from avssl.losses.infonce import cross_modal_info_nce, pair_mask
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class


def tiny(*overrides: str):
    return method_class("av-nce")(load_config("configs/av-nce-tiny.yaml", ["data.num_workers=0", *overrides]))


def batch(size: int = 4, side: int = 48) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"video": torch.randint(0, 256, (size, 3, 8, side, side), dtype=torch.uint8, generator=g),
            "audio": torch.randn(size, 16000, generator=g) * 0.1,
            "group": torch.tensor([0, 1, 1, 2][:size])}


def test_max_pool_trains_the_best_position_of_the_map_that_localize_reads():
    method = tiny("method.spatial_pool=max").eval()  # eval: no augmentation, so the step is reproducible
    data = batch()
    with torch.no_grad():
        positions = method.embed_video_positions(method.video_input(data["video"], train=False))
        audio = method.embed_audio(method.audio_input(data["audio"], train=False))
        loss = method.training_step(data, 0)
    assert positions.shape == (4, 3, 3, 32)  # 48 px at the tiny encoder's stride 16
    # by hand: each (video, audio) pair scores its best position's cosine
    scores = torch.einsum("bhwe,ke->bkhw", positions, audio).flatten(2).amax(dim=2)
    exclude = pair_mask(data["group"], data["group"]) & ~torch.eye(4, dtype=torch.bool)
    logits = scores / method.params.temperature
    masked = logits.masked_fill(exclude, float("-inf"))
    by_hand = 0.5 * ((masked.logsumexp(1) - logits.diag()).mean() + (masked.T.logsumexp(1) - logits.diag()).mean())
    torch.testing.assert_close(loss, by_hand, atol=1e-5, rtol=1e-5)
    assert not torch.isclose(loss, cross_modal_info_nce(positions.mean(dim=(1, 2)), audio, 0.07, exclude))
    # the clip embedding is the normalised mean of the positions'
    clip = method.embed_video(method.video_input(data["video"], train=False))
    torch.testing.assert_close(clip, torch.nn.functional.normalize(positions.mean(dim=(1, 2)), dim=1))


def test_mean_pool_is_the_pooled_clip_embedding():
    method = tiny().eval()
    data = batch()
    with torch.no_grad():
        x = method.video_input(data["video"], train=False)
        video = method.video_head(method.video_encoder(x))
        audio = method.audio_head(method.audio_encoder(method.audio_input(data["audio"], train=False)))
        loss = method.training_step(data, 0)
    exclude = pair_mask(data["group"], data["group"]) & ~torch.eye(4, dtype=torch.bool)
    torch.testing.assert_close(loss, cross_modal_info_nce(video, audio, 0.07, exclude))


def test_an_unknown_spatial_pool_names_the_key():
    with pytest.raises(ConfigError, match="method.spatial_pool"):
        tiny("method.spatial_pool=attention")
