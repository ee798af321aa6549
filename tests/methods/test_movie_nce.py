"""movie-nce: configs, hierarchical batches through the method, recipe starts, per-movie de-biasing,
near-duplicate masking, palette jitter, and 30 steps on the demo world's movies lowering the loss."""

from __future__ import annotations

import glob
import os
import pickle
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avssl.config.typed import ConfigError
from avssl.data.dataset import ClipDataset, FileTable, SampleKey, collate_samples
from avssl.data.recipes.movie_nce import MovieNCERecipe
from avssl.media import MediaReader
from avssl.methods.configs import load_config
from avssl.methods.movie_nce import (
    MovieMeanBank,
    MovieNCE,
    near_duplicate_mask,
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
    # batch 64, share 0.5: the divisor of 64 nearest to 0.5 * 63 + 1 is 32 -> 2 movies x 32 clips
    assert (sampler.plan.groups_per_batch, sampler.plan.clips_per_group) == (2, 32)


def test_bad_method_keys_name_themselves():
    with pytest.raises(ConfigError, match="within_movie_share"):
        load_config(TINY, ["method.within_movie_shar=0.5"])
    with pytest.raises(ConfigError, match="method.debias.momentum"):
        load_config(TINY, ["method.debias.momentum=1.5"])
    with pytest.raises(ConfigError, match="method.temperature"):
        load_config(TINY, ["method.temperature=0"])


def test_builds_from_the_tiny_config():
    method = tiny_method()
    assert method.video_bank is not None and method.audio_bank is not None
    assert method.video_head(torch.zeros(2, method.video_encoder.out_dim)).shape == (2, 32)


@pytest.mark.parametrize("share, movies, clips", [(0.43, 2, 4), (0.0, 8, 1), (0.15, 4, 2)])
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


def _bank_worker(rank: int, world: int, store_path: str, out_dir: str) -> None:
    store = dist.FileStore(store_path, world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        bank = MovieMeanBank(2, momentum=0.5)
        # rank 0 sees movie 0 only, rank 1 sees movies 1 and 3 (unequal batch sizes)
        movies = torch.tensor([0, 0]) if rank == 0 else torch.tensor([1, 3, 3])
        embeddings = torch.arange(len(movies) * 2, dtype=torch.float32).view(-1, 2) + 10 * rank
        out = bank(embeddings, movies)
        torch.save({"means": bank.means, "seen": bank.seen, "out": out}, os.path.join(out_dir, f"r{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_movie_means_are_the_same_on_every_ddp_rank(tmp_path):
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_bank_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2,
                       join=True, start_method=method)
    first, second = (torch.load(tmp_path / f"r{r}.pt") for r in range(2))
    assert torch.equal(first["means"], second["means"]) and torch.equal(first["seen"], second["seen"])
    # hand computation: movie 0 = mean of rows [0, 1], [2, 3]; movie 1 = [10, 11]; movie 3 = mean of
    # [12, 13], [14, 15]; movie 2 never seen
    expected = torch.tensor([[1.0, 2.0], [10.0, 11.0], [0.0, 0.0], [13.0, 14.0]])
    assert torch.equal(first["means"], expected) and first["seen"].tolist() == [True, True, False, True]
    assert torch.equal(second["out"], torch.tensor([[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0]]))


def test_movie_means_travel_in_the_method_state_dict():
    trained, fresh = tiny_method(), tiny_method()
    z = torch.randn(6, 32)
    trained.video_bank(z, torch.tensor([0, 0, 4, 4, 4, 2]))
    fresh.load_state_dict(trained.state_dict())  # strict: the banks take the checkpoint's size
    assert fresh.video_bank.means.shape == (5, 32)
    assert torch.equal(fresh.video_bank.means, trained.video_bank.means)
    assert fresh.video_bank.seen.tolist() == [True, False, True, False, True]


def test_debiasing_removes_a_per_movie_offset_exactly():
    gen = torch.Generator().manual_seed(0)
    dim, movies = 16, torch.tensor([0, 0, 0, 1, 1, 1, 3, 3])
    offsets = 5.0 * torch.randn(4, dim, generator=gen)  # movie 2 never appears: the bank grows past it
    plain, biased = MovieMeanBank(dim, momentum=0.7), MovieMeanBank(dim, momentum=0.7)
    for _ in range(4):  # several updates: the running mean must track the offset, not just the batch
        z = torch.randn(len(movies), dim, generator=gen)
        out_plain = plain(z, movies)
        out_biased = biased(z + offsets[movies], movies)
        torch.testing.assert_close(out_biased, out_plain, atol=1e-4, rtol=0)
    # what it removes is per movie: a single global mean would leave the offsets' differences
    global_removed = (z + offsets[movies]) - (z + offsets[movies]).mean(0)
    assert (global_removed - out_plain).abs().max() > 1.0
    # without updates the stored means are used; a checkpoint restores them into a fresh bank
    fresh = MovieMeanBank(dim, momentum=0.7)
    fresh.load_state_dict(biased.state_dict())
    assert fresh.means.shape == (4, dim) and fresh.seen.tolist() == [True, True, False, True]
    torch.testing.assert_close(fresh(z + offsets[movies], movies, update=False),
                               biased(z + offsets[movies], movies, update=False))


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
    assert top1(MovieMeanBank(dim)(video, movies), MovieMeanBank(dim)(audio, movies)) == 1.0


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
    method = tiny_method("method.intra_video_weight=0.5", f"method.debias.enabled={debias}")
    assert (method.video_bank is not None) == (debias == "true")
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
    assert logged["train/within_movie_share"] == pytest.approx(3 / 7)
    assert logged["train/masked_near_duplicates"] == 2  # clips 0 and 1: 0.5 s apart < 1.5 s
    assert all(p.grad is not None for p in method.video_encoder.parameters() if p.requires_grad)
    if method.video_bank is not None:  # the step updated both modalities' means of movies 0 and 1
        assert method.video_bank.seen.tolist() == [True, True] == method.audio_bank.seen.tolist()


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
