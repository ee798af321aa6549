"""Hierarchical (movies, then clips) batch sampler: within-movie share, min_gap, DDP, resume."""

import logging
from collections import Counter

import numpy as np
import pytest

from avssl.data.sampling import HierarchicalBatchSampler, WindowSpec, plan_batch

EPS = 1e-9
# 9 movies; movie 2 is split over two files, movie 7 is too short for 4 clips, file 10 has no audio
GROUPS = np.array([0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9])
DURATIONS = np.array([60.0, 45.0, 12.0, 9.0, 120.0, 30.0, 80.0, 50.0, 6.0, 40.0, 90.0])
HAS_AUDIO = np.array([True] * 10 + [False])
SPEC = WindowSpec(1.0, fps=25.0)


def make(rank=0, replicas=1, share=3 / 7, batch=8, **kwargs):
    return HierarchicalBatchSampler(GROUPS, DURATIONS, SPEC, batch, share, min_gap=2.0,
                                    has_audio=HAS_AUDIO, seed=13, num_replicas=replicas,
                                    rank=rank, **kwargs)


@pytest.mark.parametrize(
    "batch, share, groups, clips",
    # the fewest clips per movie whose share reaches the requested one (the method masks the surplus),
    # two movies at least below a share of 1: 0.5 of 31 needs K = 17, so K = 16 for batch 32
    [(8, 3 / 7, 2, 4), (32, 0.5, 2, 16), (12, 0.0, 12, 1), (12, 1.0, 1, 12), (12, 0.3, 2, 6),
     (6, 0.2, 3, 2), (6, 0.1, 3, 2)],
)
def test_plan_arithmetic(batch, share, groups, clips):
    plan = plan_batch(batch, share)
    assert (plan.groups_per_batch, plan.clips_per_group) == (groups, clips)
    assert plan.within_group_share == pytest.approx((clips - 1) / (batch - 1))


def test_every_clip_has_the_configured_within_movie_share():
    sampler = make()
    batches = list(sampler)
    assert batches
    for batch in batches:
        assert len(batch) == 8
        movies = [GROUPS[i] for i, _ in batch]
        counts = Counter(movies)
        assert sorted(counts.values()) == [4, 4]
        for movie in movies:  # share of this clip's 7 in-batch negatives from its own movie
            assert (counts[movie] - 1) / (len(batch) - 1) == pytest.approx(3 / 7)


def test_clips_fit_and_respect_min_gap():
    sampler = make(repeats=5)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for batch in sampler:
            by_file = {}
            for index, start in batch:
                assert HAS_AUDIO[index] and GROUPS[index] != 7
                assert start >= -EPS and start + SPEC.span <= DURATIONS[index] + EPS
                assert abs(start * 25 - round(start * 25)) < 1e-6
                by_file.setdefault(index, []).append(start)
            for starts in by_file.values():
                assert np.all(np.diff(sorted(starts)) >= SPEC.span + 2.0 - EPS)


def test_split_movie_spreads_clips_over_its_files():
    sampler = make(repeats=20)
    files = Counter(i for batch in sampler for i, _ in batch if GROUPS[i] == 2)
    assert files[2] > 0 and files[3] > 0  # both files of movie 2 are used


def test_short_movies_are_left_out_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        sampler = make()
    # movie 7 (one 6 s file) holds only 2 clips 2 s apart; movie 9 has no audio
    assert sampler.group_ids.tolist() == [0, 1, 2, 3, 4, 5, 6, 8]
    assert "cannot hold 4 clips" in caplog.text
    with pytest.raises(ValueError, match="a batch needs 12 groups"):
        make(share=0.0, batch=12)


def test_epoch_visits_every_movie_and_ddp_ranks_get_distinct_equal_batches():
    replicas = 3
    samplers = [make(rank=r, replicas=replicas) for r in range(replicas)]
    for s in samplers:
        s.set_epoch(1)
    per_rank = [list(s) for s in samplers]
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == len(samplers[0])
    positions = [set(s.rank_batch_positions().tolist()) for s in samplers]
    assert not positions[0] & positions[1] and not positions[1] & positions[2]
    # 8 eligible movies, 2 per batch: 4 batches padded to 6 for 3 ranks
    assert samplers[0].global_batches == 4 and len(per_rank[0]) == 2
    keys = [tuple(b) for batches in per_rank for b in batches]
    assert len(set(keys)) == len(keys)  # padded batches are new draws, not copies
    movies = {GROUPS[i] for batches in per_rank for b in batches for i, _ in b}
    assert movies == set(samplers[0].group_ids.tolist())


def test_same_batches_in_any_instance_and_new_ones_each_epoch():
    a, b = make(), make()
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert a.batch(1, epoch=2) == list(a)[1]


def test_resume_mid_epoch_gives_the_remaining_batches():
    full = make(repeats=4, rank=1, replicas=2)
    full.set_epoch(6)
    expected = list(full)
    first = make(repeats=4, rank=1, replicas=2)
    first.set_epoch(6)
    iterator = iter(first)
    done = [next(iterator) for _ in range(3)]
    resumed = make(repeats=4, rank=1, replicas=2)
    resumed.load_state_dict(first.state_dict())
    resumed.set_epoch(6)
    assert done + list(resumed) == expected
    with pytest.raises(ValueError, match="a mid-epoch resume needs the same"):
        make(repeats=4, share=1 / 7, rank=1, replicas=2).load_state_dict(first.state_dict())
