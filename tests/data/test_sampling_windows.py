"""Per-video clip windows: determinism, offsets within bounds and inside the file, easy negatives."""

import math

import numpy as np
import pytest

from avssl.data.sampling import (
    ClipSampler,
    WindowSpec,
    max_offset,
    offset_pair_starts,
    rng_for,
    window_capacity,
    window_starts,
)

EPS = 1e-9
DURATIONS = np.array([10.0, 4.0, 2.6, 30.0, 1.5, 7.25])
GROUPS = np.array([0, 0, 1, 2, 3, 3])
HAS_AUDIO = np.array([True, True, True, True, True, False])


def inside(start: float, window: float, duration: float) -> bool:
    return -EPS <= start and start + window <= duration + EPS


def on_grid(t: float, fps: float) -> bool:
    return abs(t * fps - round(t * fps)) < 1e-6


@pytest.fixture(params=[None, 25.0], ids=["continuous", "fps25"])
def sampler(request):
    spec = WindowSpec(1.0, 0.8, fps=request.param)
    return ClipSampler(DURATIONS, spec, has_audio=HAS_AUDIO, groups=GROUPS, seed=7, min_offset=0.5)


def test_rng_depends_only_on_its_key():
    a = rng_for(3, 1, 5, 2).random(4)
    assert np.array_equal(a, rng_for(3, 1, 5, 2).random(4))
    for other in [(4, 1, 5, 2), (3, 2, 5, 2), (3, 1, 6, 2), (3, 1, 5, 3)]:
        assert not np.array_equal(a, rng_for(*other).random(4))
    with pytest.raises(ValueError, match="epoch"):
        rng_for(0, -1, 0)


def test_same_sample_from_any_call_order(sampler):
    forward = [sampler.hard_negative(i, 3) for i in range(4)]
    backward = [sampler.hard_negative(i, 3) for i in reversed(range(4))][::-1]
    assert forward == backward
    assert sampler.sync_pair(0, 3) != sampler.sync_pair(0, 4)  # a new epoch, a new window
    assert sampler.easy_negative(2, 1) == sampler.easy_negative(2, 1)
    assert np.array_equal(sampler.windows(3, 2, 5, 1.0), sampler.windows(3, 2, 5, 1.0))


def test_sync_pairs_start_together_inside_the_file(sampler):
    spec = sampler.spec
    starts = []
    for epoch in range(200):
        for i in range(5):
            pair = sampler.sync_pair(i, epoch)
            assert pair.in_sync and pair.video_index == pair.audio_index == i
            assert inside(pair.video_start, spec.span, DURATIONS[i])
            if spec.fps:
                assert on_grid(pair.video_start, spec.fps)
            if i == 0:
                starts.append(pair.video_start)
    # the whole admissible range is used: [0, 10 - 1]
    assert min(starts) < 0.3 and max(starts) > 8.7


def test_hard_negative_offsets_within_bounds_and_inside(sampler):
    spec = sampler.spec
    signs = set()
    for epoch in range(150):
        for i in (0, 1, 2, 3):
            pair = sampler.hard_negative(i, epoch)
            assert pair.video_index == pair.audio_index == i
            assert abs(pair.offset) >= 0.5 - EPS
            assert inside(pair.video_start, spec.video_duration, DURATIONS[i])
            assert inside(pair.audio_start, spec.audio_duration, DURATIONS[i])
            if spec.fps:
                assert on_grid(pair.video_start, 25) and on_grid(pair.audio_start, 25)
            signs.add(np.sign(pair.offset))
    assert signs == {-1.0, 1.0}


def test_hard_negative_max_offset_is_respected():
    spec = WindowSpec(1.0)
    sampler = ClipSampler(np.array([60.0]), spec, min_offset=2.0, max_offset=3.0)
    offsets = np.array([abs(sampler.hard_negative(0, e).offset) for e in range(300)])
    assert offsets.min() >= 2.0 and offsets.max() <= 3.0
    assert offsets.min() < 2.1 and offsets.max() > 2.9


def test_hard_negative_in_a_tight_file_uses_the_only_room_left():
    # 2.6 s file, 1.0 s video, 0.8 s audio: audio later by at most 1.8 s, earlier by at most 1.6 s
    spec = WindowSpec(1.0, 0.8)
    assert math.isclose(max_offset(spec, 2.6), 1.8)
    for seed in range(100):
        v, a = offset_pair_starts(spec, 2.6, rng_for(seed, 0, 0), min_offset=1.7)
        assert a - v >= 1.7 - EPS and v >= -EPS and a + 0.8 <= 2.6 + EPS  # only audio-later fits


def test_hard_negative_impossible_names_the_video(sampler):
    # 1.5 s file, 1.0 s video, 0.8 s audio: at most 0.7 s of offset
    assert sampler.can_hard_negative(4)
    strict = ClipSampler(DURATIONS, sampler.spec, min_offset=0.75)
    assert not strict.can_hard_negative(4) and strict.can_hard_negative(0)
    with pytest.raises(ValueError, match="video 4: no offset of at least 0.75 s"):
        strict.hard_negative(4, 0)
    with pytest.raises(ValueError, match="video 5 has no audio"):
        sampler.sync_pair(5, 0)


def test_easy_negatives_come_from_another_group_with_audio(sampler):
    spec = sampler.spec
    seen = set()
    for epoch in range(100):
        for i in range(6):
            pair = sampler.easy_negative(i, epoch)
            j = pair.audio_index
            assert j != i and GROUPS[j] != GROUPS[i] and HAS_AUDIO[j]
            assert inside(pair.video_start, spec.video_duration, DURATIONS[i])
            assert inside(pair.audio_start, spec.audio_duration, DURATIONS[j])
            seen.add((i, j))
    # video 0 (group 0) may pair with files 2, 3, 4 and never with its group mate 1 or silent 5
    assert {j for i, j in seen if i == 0} == {2, 3, 4}


def test_easy_negative_without_candidates_is_a_clear_error():
    sampler = ClipSampler(np.array([5.0, 5.0]), WindowSpec(1.0), groups=np.array([1, 1]))
    with pytest.raises(ValueError, match="no easy negative for video 0"):
        sampler.easy_negative(0, 0)


@pytest.mark.parametrize("fps", [None, 30.0])
def test_several_windows_keep_the_gap_and_fit(fps):
    spec = WindowSpec(1.0, fps=fps)
    sampler = ClipSampler(np.array([12.0]), spec)
    for epoch in range(200):
        starts = sampler.windows(0, epoch, 4, min_gap=1.5)
        assert np.all(np.diff(starts) >= 2.5 - EPS)
        assert starts[0] >= -EPS and starts[-1] + 1.0 <= 12.0 + EPS
        if fps:
            assert all(on_grid(s, fps) for s in starts)


def test_window_capacity_is_exact_and_enforced():
    # 10 s, 1 s windows, 2 s gaps: starts 0, 3, 6, 9 -> 4 fit, 5 do not
    assert window_capacity(1.0, 10.0, 2.0, None) == 4
    assert window_capacity(1.0, 10.0, 2.0, 25.0) == 4
    assert window_capacity(1.0, 0.5, 0.0, None) == 0
    starts = window_starts(1.0, 10.0, 4, rng_for(0, 0, 0), min_gap=2.0)
    np.testing.assert_allclose(starts, [0.0, 3.0, 6.0, 9.0])
    with pytest.raises(ValueError, match="at most 4"):
        window_starts(1.0, 10.0, 5, rng_for(0, 0, 0), min_gap=2.0)


def test_window_spec_validation_and_speed():
    spec = WindowSpec(0.64, fps=25.0)
    assert spec.audio_duration == 0.64 and spec.num_frames == 16
    fast = spec.at_speed(4)
    assert math.isclose(fast.video_duration, 2.56) and fast.num_frames == 64
    with pytest.raises(ValueError, match="video_duration"):
        WindowSpec(0.0)
    with pytest.raises(ValueError, match="durations\\[1\\]"):
        ClipSampler(np.array([1.0, np.nan]), spec)
    with pytest.raises(ValueError, match="groups must have shape"):
        ClipSampler(np.array([1.0, 2.0]), spec, groups=np.array([1]))


def test_a_per_call_spec_sizes_the_source_window_for_speed():
    spec = WindowSpec(0.64, fps=25.0)
    sampler = ClipSampler(np.array([6.0]), spec, seed=2)
    fast = spec.at_speed(8)  # 5.12 s of source
    for epoch in range(50):
        pair = sampler.sync_pair(0, epoch, spec=fast)
        assert inside(pair.video_start, 5.12, 6.0)
    with pytest.raises(ValueError, match="video 0: a 6.000 s file is shorter"):
        sampler.sync_pair(0, 0, spec=spec.at_speed(10))
