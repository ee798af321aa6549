"""movie-nce: configs, hierarchical batches through the method, recipe starts, per-movie de-biasing,
near-duplicate masking, palette jitter, and 30 steps on the demo world's movies lowering the loss."""

from __future__ import annotations

import glob
import pickle
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.config.typed import ConfigError
from avssl.data.dataset import ClipDataset, FileTable, SampleKey, collate_samples
from avssl.data.recipes.movie_nce import MovieNCERecipe
from avssl.media import MediaReader
from avssl.methods.configs import load_config
from avssl.methods.movie_nce import (
    MovieNCE,
    near_duplicate_mask,
    batch_movie_centering,
    within_movie_exclusions,
    within_movie_share,
)

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "avssl" / "configs"
TINY = CONFIGS / "movie-nce-tiny.yaml"


def tiny_method(*overrides: str) -> MovieNCE:
    torch.manual_seed(0)
    return MovieNCE(load_config(TINY, list(overrides)))


def fake_table(groups: list[int], durations: list[float]) -> FileTable:
    n = len(groups)
    return FileTable(np.array([f"m{i}.mp4" for i in range(n)]), np.asarray(durations, dtype=np.float64),
                     np.ones(n, dtype=bool), np.asarray(groups, dtype=np.int64))


@pytest.fixture(autouse=True)
def one_thread():
    # tiny tensors: intra-op threads cost more in synchronisation than they gain, and on a busy
    # 2-core machine their spinning slows a step by an order of magnitude
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def demo_movies(tmp_path_factory) -> FileTable:
    from avssl.cli import main
    from avssl.data.probing import build_manifest, probe_paths

    out = tmp_path_factory.mktemp("demo") / "world"
    assert main(["make-demo-data", str(out), "--scale", "tiny", "--workers", "2", "--no-progress"]) == 0
    paths = sorted(glob.glob(str(out / "movies" / "*.mp4")))
    assert len(paths) >= 2
    return FileTable.from_manifest(build_manifest(paths, probe_paths(paths, workers=0, progress=False)))


def test_configs_load_and_the_paper_config_derives_clips_per_movie():
    tiny = load_config(TINY)
    paper = load_config(CONFIGS / "movie-nce.yaml")
    assert tiny.method.name == paper.method.name == "movie-nce"
    assert paper.method.params.temperature == pytest.approx(0.07)
    table = fake_table(list(range(4)), [3600.0] * 4)
    sampler, is_batch = MovieNCERecipe(table, paper).train_sampler(rank=0, world_size=1)
    assert is_batch
    # batch 64, share 0.5: 32 clips x 2 movies, the most a batch of two movies reaches (31/63)
    assert (sampler.plan.groups_per_batch, sampler.plan.clips_per_group) == (2, 32)


def test_bad_method_keys_name_themselves():
    with pytest.raises(ConfigError, match="within_movie_share"):
        load_config(TINY, ["method.within_movie_shar=0.5"])
    with pytest.raises(ConfigError, match="method.debias.strength"):
        load_config(TINY, ["method.debias.strength=1.5"])
    with pytest.raises(ConfigError, match="method.temperature"):
        load_config(TINY, ["method.temperature=0"])


def test_builds_from_the_tiny_config():
    method = tiny_method()
    assert not method.params.debias.enabled  # the papers' recipe: no de-biasing by default
    assert method.video_head(torch.zeros(2, method.video_encoder.out_dim)).shape == (2, 32)


@pytest.mark.parametrize("share, movies, clips", [(3 / 7, 2, 4), (0.0, 8, 1), (1 / 7, 4, 2)])
def test_train_sampler_batches_have_the_configured_within_movie_share(share, movies, clips):
    # 6 movies; movie 2 spans two files (parts), movie 5 is short but holds 4 clips of 1 s with 0.5 s gaps
    groups = [0, 1, 2, 2, 3, 4, 5, 6, 7]
    durations = [60.0, 45.0, 12.0, 20.0, 120.0, 30.0, 6.0, 40.0, 90.0]
    method = tiny_method(f"method.within_movie_share={share}", "data.batch_size=8")
    table = fake_table(groups, durations)
    sampler, is_batch = method.recipe(table).train_sampler(rank=0, world_size=1)
    assert is_batch and sampler.plan.clips_per_group == clips
    expected = (clips - 1) / (8 - 1)
    seen_batches = 0
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for batch in sampler:
            seen_batches += 1
            assert len(batch) == 8
            movie_of = [groups[i] for i, _ in batch]
            counts = Counter(movie_of)
            assert len(counts) == movies and set(counts.values()) == {clips}
            for movie in movie_of:  # this clip's share of its 7 negatives from its own movie
                assert (counts[movie] - 1) / 7 == pytest.approx(expected)
            assert float(within_movie_share(torch.tensor(movie_of))) == pytest.approx(expected)
            for i, start in batch:  # inside the file, on the 8 fps grid, >= span + min_gap apart
                assert 0 <= start and start + 1.0 <= durations[i] + 1e-9
                assert abs(start * 8 - round(start * 8)) < 1e-6
            for i in {i for i, _ in batch}:
                starts = sorted(s for j, s in batch if j == i)
                assert all(b - a >= 1.5 - 1e-9 for a, b in zip(starts, starts[1:]))
    assert seen_batches >= 3


def test_ranks_split_the_batches():
    method = tiny_method()
    table = fake_table([0, 1, 2, 3, 4, 5], [60.0] * 6)
    first, _ = method.recipe(table).train_sampler(rank=0, world_size=2)
    second, _ = method.recipe(table).train_sampler(rank=1, world_size=2)
    assert len(first) == len(second) >= 1
    assert [b for b in first] != [b for b in second]


def test_recipe_reads_at_the_key_start_and_draws_one_without(demo_movies):
    method = tiny_method()
    dataset = ClipDataset(demo_movies, method.recipe(demo_movies), seed=0)
    sample = dataset[SampleKey(1, 0, 3.25)]
    assert float(sample["start"]) == 3.25 and int(sample["file"]) == 1
    assert int(sample["group"]) == int(demo_movies.groups[1])
    assert sample["video"].shape == (3, 8, 32, 32) and sample["video"].dtype == torch.uint8
    with MediaReader(demo_movies.paths[1]) as reader:
        expected = reader.read_audio(3.25, 1.0, sample_rate=16000)
    assert torch.equal(sample["audio"], expected)
    drawn = dataset[SampleKey(0, 2)]
    start = float(drawn["start"])
    assert 0 <= start <= demo_movies.durations[0] - 1.0 and abs(start * 8 - round(start * 8)) < 1e-6
    assert float(dataset[SampleKey(0, 2)]["start"]) == start  # deterministic per (seed, epoch, index)
    assert pickle.loads(pickle.dumps(method.recipe(demo_movies))) is not None  # DataLoader workers


@pytest.mark.parametrize("share, kept", [(0.0, 0), (0.3, 3), (0.5, 7), (1.0, 7)])
def test_within_movie_shares_that_no_divisor_gives_are_met_by_masking(share, kept):
    """Batch 16 = 2 movies x 8 clips: each clip keeps `kept` of its 7 movie-mates as negatives (the
    ones that follow it, cyclically) beside the 8 clips of the other movie."""
    movies = torch.tensor([0, 1] * 8)
    exclude = within_movie_exclusions(movies, share)
    same = movies[:, None] == movies[None, :]
    assert not (exclude & ~same).any() and not exclude.diagonal().any()
    assert ((same & ~exclude).sum(1) - 1).tolist() == [kept] * 16
    realized = float(within_movie_share(movies, exclude))
    assert realized == pytest.approx(kept / (kept + 8))
    if 0 < share < 0.5:
        assert abs(realized - share) < 1 / 16  # 0.3 -> 3 / 11 = 0.273
    # clip 0 (movie 0, the clips of which sit at even positions) keeps the next ones: 2, 4, 6
    if share == 0.3:
        assert torch.nonzero(same[0] & ~exclude[0]).view(-1).tolist() == [0, 2, 4, 6]


def test_batch_centering_removes_a_per_movie_offset_from_the_current_batch():
    gen = torch.Generator().manual_seed(0)
    dim, movies = 16, torch.tensor([0, 0, 0, 1, 1, 1, 3, 3, 5])
    offsets = 5.0 * torch.randn(6, dim, generator=gen)
    z = torch.randn(len(movies), dim, generator=gen)
    plain = batch_movie_centering(z, movies, 1.0)
    torch.testing.assert_close(batch_movie_centering(z + offsets[movies], movies, 1.0)[:8], plain[:8])
    # a movie seen once in the batch is left as is (its mean would be the clip itself)
    torch.testing.assert_close(batch_movie_centering(z, movies, 1.0)[8], z[8])
    # per movie, not a global mean
    assert ((z - z.mean(0)) - plain).abs().max() > 0.1


def test_debiasing_lets_a_movie_constant_stop_dominating_retrieval():
    # audio and video share a per-movie constant much larger than the clip-level signal; the true
    # partner of a clip is then not the nearest audio, but it is after de-biasing both modalities
    gen = torch.Generator().manual_seed(1)
    dim, movies = 8, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    signal = torch.randn(8, dim, generator=gen)
    movie_v, movie_a = 10 * torch.randn(2, dim, generator=gen), 10 * torch.randn(2, dim, generator=gen)
    video = signal + movie_v[movies] + 0.05 * torch.randn(8, dim, generator=gen)
    audio = signal + movie_a[movies]

    def top1(v, a):
        v, a = torch.nn.functional.normalize(v, dim=1), torch.nn.functional.normalize(a, dim=1)
        return float(((v @ a.T).argmax(1) == torch.arange(8)).float().mean())

    assert top1(video, audio) < 1.0
    assert top1(batch_movie_centering(video, movies, 1.0), batch_movie_centering(audio, movies, 1.0)) == 1.0


def test_near_duplicate_mask_against_hand_computation():
    files = torch.tensor([0, 0, 0, 1, 1])
    starts = torch.tensor([0.0, 1.2, 5.0, 1.0, 1.0], dtype=torch.float64)
    mask = near_duplicate_mask(files, starts, window=1.5)
    expected = torch.zeros(5, 5, dtype=torch.bool)
    for i, j in [(0, 1), (1, 0), (3, 4), (4, 3)]:  # same file, starts < 1.5 s apart
        expected[i, j] = True
    assert torch.equal(mask, expected)


def test_palette_jitter_scatters_a_movie_palette():
    # 8 clips of one flat colour; base colour jitter and grayscale off, so only (b) can change them
    base = ["data.video_augment.jitter_p=0", "data.video_augment.grayscale_p=0"]
    clips = torch.zeros(8, 3, 2, 4, 4, dtype=torch.uint8)
    clips[:, 0], clips[:, 1], clips[:, 2] = 200, 60, 30
    off = tiny_method(*base).video_input(clips, train=True)
    on = tiny_method(*base, "method.palette_jitter.enabled=true").video_input(clips, train=True)
    assert off.mean(dim=(2, 3, 4)).std(dim=0).max() < 1e-6
    assert on.mean(dim=(2, 3, 4)).std(dim=0).max() > 0.3  # normalised units: a large hue spread


@pytest.mark.parametrize("debias", ["true", "false"])
def test_intra_video_loss_and_logged_components_on_a_synthetic_batch(debias):
    method = tiny_method("method.intra_video_weight=0.5", f"method.debias.enabled={debias}",
                         "method.within_movie_share=0.4")
    gen = torch.Generator().manual_seed(0)
    batch = {
        "video": torch.randint(0, 256, (8, 3, 4, 16, 16), dtype=torch.uint8, generator=gen),
        "audio": 0.1 * torch.randn(8, 8000, generator=gen),
        "group": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
        "file": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
        "start": torch.tensor([0.0, 0.5, 3.0, 6.0, 0.0, 2.0, 4.0, 6.0], dtype=torch.float64),
    }
    method.train()
    logged = {}
    method.log = lambda name, value, **kwargs: logged.__setitem__(name, float(value.detach()))
    loss = method.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(logged["train/audio_video_nce"] + 0.5 * logged["train/video_video_nce"])
    # each clip keeps round(0.4 / 0.6 * 4) = 3 movie-mates; clips 0 and 1 (0.5 s apart) are also
    # near-duplicates: clip 0 loses clip 1 (kept by the share) and clip 1 keeps 2, 3, 0 minus clip 0
    assert logged["train/excluded_pairs"] == 2
    assert logged["train/within_movie_share"] == pytest.approx((6 * 3 / 7 + 2 * 2 / 6) / 8)
    assert all(p.grad is not None for p in method.video_encoder.parameters() if p.requires_grad)


@pytest.mark.slow
def test_thirty_steps_on_demo_movies_lower_the_loss(demo_movies):
    method = tiny_method()
    sampler, _ = method.recipe(demo_movies).train_sampler(rank=0, world_size=1)
    dataset = ClipDataset(demo_movies, method.recipe(demo_movies), seed=0)
    batches = []
    for epoch in range(2):  # keys carry the epoch, as the training engine's wrapper makes them
        sampler.set_epoch(epoch)
        batches += [collate_samples([dataset[SampleKey(i, epoch, s)] for i, s in b]) for b in sampler]
    assert len(batches) >= 4
    optimizer = method.configure_optimizers()["optimizer"]
    method.train()
    method.log = lambda *args, **kwargs: None
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in range(30):
            loss = method.training_step(batches[step % len(batches)], step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
