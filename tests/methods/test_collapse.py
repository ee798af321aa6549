"""The collapse watch: the share of a batch's embeddings that repeat exactly, logged and warned about."""

from __future__ import annotations

import logging

import pytest
import torch

from avssl.config.bundled import resolve_config_path
from avssl.methods.collapse import CollapseWatch, repeated_share
from avssl.methods.configs import load_config
from avssl.methods.registry import method_class


def test_repeated_share_counts_rows_equal_to_an_earlier_row():
    rows = torch.randn(8, 4)
    assert repeated_share(rows) == 0.0
    rows[5:] = rows[0]  # rows 5, 6, 7 repeat row 0
    assert repeated_share(rows) == pytest.approx(3 / 8)
    assert repeated_share(torch.ones(6, 2, 3)) == pytest.approx(5 / 6)  # rows are flattened
    assert repeated_share(torch.zeros(0, 4)) == 0.0


def test_the_watch_warns_once_per_name_from_half_a_batch(caplog):
    watch = CollapseWatch()
    healthy, collapsed = torch.randn(8, 4), torch.randn(1, 4).repeat(8, 1)
    with caplog.at_level(logging.WARNING, logger="avssl.methods.collapse"):
        assert watch.check("video", healthy, 3) == 0.0
        assert not caplog.records
        assert watch.check("video", collapsed, 4) == pytest.approx(7 / 8)
        watch.check("video", collapsed, 5)
        watch.check("audio", torch.randn(1, 4).repeat(3, 1), 5)  # a batch of 3 says too little
    assert len(caplog.records) == 1
    assert "step 4: 88 % of the batch's video embeddings repeat another row exactly" in caplog.text


def test_a_method_whose_head_gives_its_bias_is_caught(caplog):
    """av-nce-tiny with the video projection's last layer zeroed: every clip gets the layer's bias,
    the watch logs a share of (B - 1) / B and warns; the audio side stays distinct."""
    method = method_class("av-nce")(load_config(resolve_config_path("av-nce-tiny"))).eval()
    last = [m for m in method.video_head.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    clips = torch.randint(0, 256, (6, 3, 8, 32, 32), dtype=torch.uint8)
    waves = torch.randn(6, 16000) * 0.1
    with torch.no_grad():
        video = method.video_head(method.video_encoder(method.video_input(clips, train=False)))
        audio = method.audio_head(method.audio_encoder(method.audio_input(waves, train=False)))
    logged = {}
    method.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value))
    with caplog.at_level(logging.WARNING, logger="avssl.methods.collapse"):
        method.watch_collapse({"video": video, "audio": audio}, 6)
    assert logged == {"train/repeated_video": pytest.approx(5 / 6), "train/repeated_audio": 0.0}
    assert len(caplog.records) == 1 and "the video projection head has collapsed" in caplog.text
