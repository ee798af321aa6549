"""AVTS: config, curriculum, negative selection, and a few optimisation steps that lower the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avssl.config.typed import ConfigError
from avssl.data.dataset import ClipDataset, FileTable, SampleKey, collate_samples
from avssl.data.probing import build_manifest, probe_paths
from avssl.errors import UsageError
from avssl.media.writer import write_media
from avssl.methods.avts import moving_positions, nearest_position
from avssl.methods.configs import load_config
from avssl.methods.curriculum import HardNegativeCurriculum
from avssl.methods.registry import method_class
from avssl.models import build_encoder, build_video_encoder


def tiny_config(*overrides: str):
    return load_config("configs/avts-tiny.yaml", ["data.num_workers=0", *overrides])


def test_paper_and_tiny_configs_load():
    full = load_config("configs/avts.yaml")
    assert full.model.video["name"] == "mc3_18" and full.data.clip.frames == 16
    assert full.method.params.video_time_bins == 4 and full.method.params.audio_time_bins == 4
    assert full.method.params.margin == pytest.approx(0.99)
    tiny = tiny_config()
    assert tiny.method.params.curriculum.final_hard_share == pytest.approx(0.25)


def test_localize_configs_train_the_map_at_each_position_of_a_finer_map():
    full = load_config("configs/avts-localize.yaml")
    assert full.method.params.spatial_pool == "max" and full.model.video["name"] == "mc3_18"
    encoder = build_encoder(full.model.video)
    assert sum(p.numel() for p in encoder.parameters()) == sum(p.numel() for p in build_video_encoder("mc3_18").parameters())
    with torch.no_grad():
        assert tuple(encoder(torch.randn(1, 3, 16, 112, 112), return_map=True).shape[2:]) == (16, 14, 14)
    tiny = load_config("configs/avts-localize-tiny.yaml")
    method = method_class("avts")(tiny)
    assert tiny.method.params.spatial_pool == "max"
    assert tiny.method.params.moving_share == full.method.params.moving_share == pytest.approx(0.1)
    with torch.no_grad():
        assert tuple(method.video_encoder(torch.randn(1, 3, 8, 32, 32), return_map=True).shape[2:]) == (8, 16, 16)


def test_bad_method_key_names_it():
    with pytest.raises(ConfigError, match="did you mean 'method.min_offset'"):
        tiny_config("method.min_ofset=1.0")


def test_curriculum_moves_from_easy_to_hard():
    c = HardNegativeCurriculum(easy_steps=10, final_hard_share=0.25, ramp_steps=5)
    assert [c.hard_share(s) for s in (0, 9)] == [0.0, 0.0]
    assert c.hard_share(10) == pytest.approx(0.05)
    assert c.hard_share(14) == pytest.approx(0.25)
    assert c.hard_share(1000) == pytest.approx(0.25)
    assert c.state_dict(12) == {"step": 12, "hard_share": pytest.approx(0.15)}


def test_easy_negatives_come_from_other_groups_and_hard_ones_only_where_possible():
    method = method_class("avts")(tiny_config())
    groups = torch.tensor([0, 0, 1, 1, 2, 5])
    has_hard = torch.tensor([True, False, True, True, False, True])
    use_hard, easy = method.negative_audio_index(groups, has_hard, hard_share=1.0)
    assert torch.equal(use_hard, has_hard)
    assert (groups[easy] != groups).all()
    use_hard, _ = method.negative_audio_index(groups, has_hard, hard_share=0.0)
    assert not use_hard.any()


def test_all_easy_negatives_loss_matches_a_hand_computation():
    """In "all" mode the hard negatives are the curriculum's share of the negative term, however few they
    are beside the easy pairs: (1 - h) x mean easy cost + h x mean hard cost."""
    # a margin near the diameter of the unit sphere, so that every negative pair costs something
    method = method_class("avts")(tiny_config("method.margin=1.9"))
    assert method.params.easy_negatives == "all"
    g = torch.Generator().manual_seed(0)
    video, audio, hard = (torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=1) for _ in range(3))
    use_hard = torch.tensor([False, True, False])
    out = {"video": video, "audio": audio, "easy": audio[[2, 2, 0]], "hard": torch.where(use_hard[:, None], hard, audio[[2, 2, 0]]),
           "use_hard": use_hard, "has_easy": torch.ones(3, dtype=torch.bool)}
    margin = method.params.margin

    def cost(v, a, positive):
        d = float((v - a).norm())
        return d * d if positive else max(0.0, margin - d) ** 2

    positives = [cost(video[i], audio[i], True) for i in range(3)]
    # groups 0, 0, 1: rows 0 and 1 are one source, so only pairs across sources are easy negatives
    easy = [cost(video[i], audio[j], False) for i, j in [(0, 2), (1, 2), (2, 0), (2, 1)]]
    hard_cost = cost(video[1], hard[1], False)
    share = 0.25
    expected = 0.5 * (np.mean(positives) + (1 - share) * np.mean(easy) + share * hard_cost)
    loss = method.margin_loss(out, torch.tensor([0, 0, 1]), share)
    assert min(easy) > 0 and float(loss) == pytest.approx(expected, rel=1e-5)
    pooled = 0.5 * (np.mean(positives) + np.mean(easy + [hard_cost]))  # the hard pair as 1 of 5 negatives
    assert float(loss) != pytest.approx(pooled, rel=1e-3)
    only_easy = 0.5 * (np.mean(positives) + np.mean(easy))
    no_hard = dict(out, use_hard=torch.zeros(3, dtype=torch.bool))
    assert float(method.margin_loss(no_hard, torch.tensor([0, 0, 1]), 0.0)) == pytest.approx(only_easy, rel=1e-5)


def test_one_negative_per_video_loss_matches_a_hand_computation():
    method = method_class("avts")(tiny_config("method.margin=1.9", "method.easy_negatives=one"))
    g = torch.Generator().manual_seed(1)
    video, audio, hard = (torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=1) for _ in range(3))
    use_hard = torch.tensor([False, True, False])
    out = {"video": video, "audio": audio, "easy": audio[[2, 2, 0]], "hard": hard, "use_hard": use_hard,
           "has_easy": torch.ones(3, dtype=torch.bool)}
    d = lambda v, a: float((v - a).norm())  # noqa: E731
    costs = [d(video[i], audio[i]) ** 2 for i in range(3)]
    costs += [max(0.0, 1.9 - d(video[0], audio[2])) ** 2, max(0.0, 1.9 - d(video[1], hard[1])) ** 2,
              max(0.0, 1.9 - d(video[2], audio[0])) ** 2]
    assert float(method.margin_loss(out, torch.tensor([0, 0, 1]), 0.5)) == pytest.approx(np.mean(costs), rel=1e-5)


def test_spatial_max_compares_each_pair_through_the_position_nearest_its_audio():
    """spatial_pool: max: every pair's distance is the smallest over the video map's positions, each pair
    choosing its own position (the in-sync audio and a negative may pick different ones)."""
    method = method_class("avts")(tiny_config("method.margin=1.9", "method.spatial_pool=max"))
    g = torch.Generator().manual_seed(2)
    unit = lambda *shape: torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)  # noqa: E731
    video, audio, hard = unit(3, 5, 4), unit(3, 4), unit(3, 4)
    use_hard = torch.tensor([False, True, False])
    out = {"video": video, "audio": audio, "easy": audio[[2, 2, 0]], "hard": torch.where(use_hard[:, None], hard, audio[[2, 2, 0]]),
           "use_hard": use_hard, "has_easy": torch.ones(3, dtype=torch.bool)}

    def d(i, a):
        return min(float((video[i, p] - a).norm()) for p in range(5))

    positives = [d(i, audio[i]) ** 2 for i in range(3)]
    easy = [max(0.0, 1.9 - d(i, audio[j])) ** 2 for i, j in [(0, 2), (1, 2), (2, 0), (2, 1)]]
    expected = 0.5 * (np.mean(positives) + 0.75 * np.mean(easy) + 0.25 * max(0.0, 1.9 - d(1, hard[1])) ** 2)
    assert float(method.margin_loss(out, torch.tensor([0, 0, 1]), 0.25)) == pytest.approx(expected, rel=1e-5)
    mean_pooled = torch.nn.functional.normalize(video.mean(dim=1), dim=1)
    assert float(method.margin_loss(dict(out, video=mean_pooled), torch.tensor([0, 0, 1]), 0.25)) != pytest.approx(expected, rel=1e-3)
    picked = nearest_position(video, audio)
    assert all(float((picked[i] - audio[i]).norm()) == pytest.approx(d(i, audio[i])) for i in range(3))


def test_spatial_max_trains_every_position_of_the_map_through_the_head():
    method = method_class("avts")(tiny_config("method.spatial_pool=max", "model.video.stage_strides=[1,2,1,1]"))
    batch = {"video": torch.randint(0, 255, (4, 3, 8, 32, 32), dtype=torch.uint8), "audio": torch.randn(4, 16000),
             "audio_hard": torch.randn(4, 16000), "group": torch.tensor([0, 1, 2, 3]),
             "has_hard": torch.ones(4, dtype=torch.bool)}
    out = method.embed_pairs(batch, hard_share=0.25)
    assert tuple(out["video"].shape) == (4, 8 * 8, 64)  # 32 px frames at stride 4: 8 x 8 positions
    method.margin_loss(out, batch["group"], 0.25).backward()
    assert all(p.grad is not None for p in method.video_head.parameters())
    with pytest.raises(ConfigError, match="method.spatial_pool"):
        tiny_config("method.spatial_pool=attention")


def test_moving_share_keeps_only_the_positions_under_the_moving_pixels():
    """moving_share: the nearest position is chosen among the positions whose pixels change most over
    the clip; a still position of the same map is never a candidate, however near its audio."""
    video = torch.nn.functional.normalize(torch.randn(2, 4, 4, 3), dim=-1)
    clips = torch.zeros(2, 3, 6, 8, 8)
    clips[0, :, ::2, 0:2, 6:8] = 1.0  # clip 0 flickers under map cell (0, 3) only
    clips[1, :, ::2, 4:6, 0:2] = 1.0  # clip 1 under (2, 0) only, and faintly under (3, 3)
    clips[1, :, ::2, 7, 7] = 0.5
    kept = moving_positions(video, clips, share=2 / 16)
    assert tuple(kept.shape) == (2, 2, 3)
    assert torch.equal(kept[0, 0], video[0, 0, 3]) and torch.equal(kept[1, 0], video[1, 2, 0])
    assert torch.equal(kept[1, 1], video[1, 3, 3])
    assert nearest_position(kept, video[:, 1, 1]).tolist() != video[:, 1, 1].tolist()

    method = method_class("avts")(tiny_config("method.spatial_pool=max", "method.moving_share=0.1",
                                              "model.video.stage_strides=[1,2,1,1]"))
    batch = {"video": torch.randint(0, 255, (4, 3, 8, 32, 32), dtype=torch.uint8), "audio": torch.randn(4, 16000),
             "audio_hard": torch.randn(4, 16000), "group": torch.tensor([0, 1, 2, 3]),
             "has_hard": torch.ones(4, dtype=torch.bool)}
    assert tuple(method.embed_pairs(batch, hard_share=0.25)["video"].shape) == (4, 7, 64)  # ceil(0.1 x 64)
    with pytest.raises(ConfigError, match="method.moving_share"):
        tiny_config("method.moving_share=0.1")  # spatial_pool mean has no positions to choose from
    with pytest.raises(ConfigError, match="method.moving_share"):
        tiny_config("method.spatial_pool=max", "method.moving_share=0")


def test_bad_easy_negatives_value_is_refused():
    with pytest.raises(ConfigError, match="easy_negatives"):
        tiny_config("method.easy_negatives=some")


class _MapOnly(torch.nn.Module):
    """An encoder that returns its input as the map (audio [B, C, F, T], video [B, C, T, H, W]), or
    its mean over everything but the channels."""

    out_dim = 4

    def forward(self, x: torch.Tensor, return_map: bool = False) -> torch.Tensor:
        return x if return_map else x.flatten(2).mean(dim=2)


def test_audio_time_bins_keep_when_an_event_sounds():
    """The same event early or late in the window: one embedding when the map is averaged over time,
    two with time bins, and the head's input is the bins' means over frequency, side by side."""
    early, late = torch.zeros(1, 4, 2, 6), torch.zeros(1, 4, 2, 6)
    early[0, 1, :, 0] = 3.0
    late[0, 1, :, 5] = 3.0
    maps = torch.cat([early, late])
    for bins, same in ((1, True), (3, False)):
        method = method_class("avts")(tiny_config(f"method.audio_time_bins={bins}")).eval()
        method.audio_encoder = _MapOnly()
        method.audio_head = torch.nn.Linear(4 * bins, 8)
        embedded = method.embed_audio(maps)
        assert torch.allclose(embedded[0], embedded[1]) == same
    expected = torch.nn.functional.normalize(method.audio_head(maps.mean(dim=2).reshape(2, 4, 3, 2).mean(dim=3).flatten(1)),
                                             dim=1)
    assert torch.allclose(embedded, expected, atol=1e-6)


def test_audio_time_bins_below_one_or_above_the_maps_steps_are_refused():
    """0 bins is a config error; more bins than the audio map has time steps (the tiny encoder gives 3
    for 0.5 s) is refused by name at the first embedding, not pooled into repeats of one step."""
    with pytest.raises(ConfigError, match="method.audio_time_bins"):
        tiny_config("method.audio_time_bins=0")
    half_second = torch.randn(2, 1, 64, 51)  # 0.5 s of log-mel at hop 160 (16 kHz)
    method = method_class("avts")(tiny_config()).eval()
    with pytest.raises(UsageError, match=r"method.audio_time_bins is 6 .*vgg_audio-tiny.* 3 time step"):
        method.embed_audio(half_second)
    method = method_class("avts")(tiny_config("method.audio_time_bins=3")).eval()
    assert method.embed_audio(half_second).shape == (2, 64)


def test_video_time_bins_keep_when_the_picture_changes():
    """A change early or late in the clip: one embedding when the map is averaged over time, two with
    time bins; the head's input is the bins' means over space, side by side, and the map of positions
    of a one-position map is the clip's embedding."""
    early, late = torch.zeros(1, 4, 6, 1, 1), torch.zeros(1, 4, 6, 1, 1)
    early[0, 2, 0] = 3.0
    late[0, 2, 5] = 3.0
    clips = torch.cat([early, late])
    for bins, same in ((1, True), (3, False)):
        method = method_class("avts")(tiny_config(f"method.video_time_bins={bins}")).eval()
        method.video_encoder = _MapOnly()
        method.video_head = torch.nn.Linear(4 * bins, 8)
        embedded = method.embed_video(clips)
        assert torch.allclose(embedded[0], embedded[1]) == same
        assert torch.allclose(method.embed_video_positions(clips)[:, 0, 0], embedded, atol=1e-6)
    expected = torch.nn.functional.normalize(method.video_head(clips.flatten(2).reshape(2, 4, 3, 2).mean(dim=3).flatten(1)),
                                             dim=1)
    assert torch.allclose(embedded, expected, atol=1e-6)


def test_video_time_bins_need_an_encoder_that_keeps_time():
    """R(2+1)D-tiny ends 8 frames in one time step: 4 bins of it are refused by name (no silent
    repeat of one step); mc3 keeps the 8 frames and embeds them, a spatial map of positions too."""
    clips = torch.randn(2, 3, 8, 32, 32)
    method = method_class("avts")(tiny_config("model.video.name=r2plus1d_18-tiny")).eval()
    with pytest.raises(UsageError, match=r"method.video_time_bins is 4 .*r2plus1d_18-tiny.* 1 time step"):
        method.embed_video(clips)
    method = method_class("avts")(tiny_config()).eval()
    assert method.params.video_time_bins == 4 and method.config.model.video["name"] == "mc3_18-tiny"
    assert method.embed_video(clips).shape == (2, 64)
    assert method.embed_video_positions(torch.randn(2, 3, 8, 64, 64)).shape == (2, 4, 4, 64)
    with pytest.raises(ConfigError, match="method.video_time_bins"):
        tiny_config("method.video_time_bins=0")


@pytest.fixture(scope="module")
def av_files(tmp_path_factory):
    """Six 4 s mp4 files whose audio onsets coincide with flashes in the video."""
    root = tmp_path_factory.mktemp("avts_media")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        frames = np.zeros((100, 48, 64, 3), np.uint8)
        audio = rng.standard_normal(64000).astype(np.float32) * 0.01
        for t in rng.uniform(0.2, 3.6, size=5):
            f = int(t * 25)
            frames[f:f + 3] = 40 * (i + 1)
            s = int(t * 16000)
            audio[s:s + 1600] += np.sin(np.arange(1600) * 2 * np.pi * (300 + 100 * i) / 16000) * 0.5
        paths.append(write_media(root / f"v{i}.mp4", frames, 25, audio, 16000))
    return [str(p) for p in paths]


def test_recipe_returns_sync_and_hard_negative_audio(av_files):
    cfg = tiny_config("data.video_augment.size=32")
    method = method_class("avts")(cfg)
    table = FileTable.from_manifest(build_manifest(av_files, probe_paths(av_files, workers=0, progress=False)))
    sample = ClipDataset(table, method.recipe(table), seed=0)[SampleKey(2, 0)]
    assert sample["video"].shape == (3, 8, 32, 32) and sample["video"].dtype == torch.uint8
    assert sample["audio"].shape == sample["audio_hard"].shape == (16000,)
    assert bool(sample["has_hard"]) and not torch.equal(sample["audio"], sample["audio_hard"])
    assert sample["failures"] == []


def test_thirty_steps_lower_the_loss(av_files):
    torch.manual_seed(0)
    cfg = tiny_config("data.video_augment.size=32", "method.curriculum.easy_steps=1000")
    method = method_class("avts")(cfg)
    table = FileTable.from_manifest(build_manifest(av_files, probe_paths(av_files, workers=0, progress=False)))
    dataset = ClipDataset(table, method.recipe(table), seed=0)
    batch = collate_samples([dataset[SampleKey(i, 0)] for i in range(len(table))])
    optimizer = torch.optim.Adam(method.parameters(), lr=2e-3)
    method.train()
    losses = []
    for _ in range(30):
        loss = method.training_step(batch, 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
