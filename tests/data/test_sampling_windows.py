"""Per-video clip windows: determinism, offsets within bounds and inside the file, easy negatives."""

import math

import numpy as np
import pytest

from avssl.data.sampling import (
    ClipSampler,
    WindowSpec,
    evenly_spaced_starts,
    max_offset,
    offset_pair_starts,
    rng_for,
    window_capacity,
    window_starts,
)

EPS = 1e-9
DURATIONS = np.array([10.0, 4.0, 2.6, 30.0, 1.5, 7.25])
HAS_AUDIO = np.array([True, True, True, True, True, False])


def inside(start: float, window: float, duration: float) -> bool:
    return -EPS <= start and start + window <= duration + EPS


def on_grid(t: float, fps: float) -> bool:
    return abs(t * fps - round(t * fps)) < 1e-6


@pytest.fixture(params=[None, 25.0], ids=["continuous", "fps25"])
def sampler(request):
    spec = WindowSpec(1.0, 0.8, fps=request.param)
    return ClipSampler(DURATIONS, spec, has_audio=HAS_AUDIO, seed=7, min_offset=0.5)


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




def test_window_capacity_is_exact_and_enforced():
    # 10 s, 1 s windows, 2 s gaps: starts 0, 3, 6, 9 -> 4 fit, 5 do not
    assert window_capacity(1.0, 10.0, 2.0, None) == 4
    assert window_capacity(1.0, 10.0, 2.0, 25.0) == 4
    assert window_capacity(1.0, 0.5, 0.0, None) == 0
    starts = window_starts(1.0, 10.0, 4, rng_for(0, 0, 0), min_gap=2.0)
    np.testing.assert_allclose(starts, [0.0, 3.0, 6.0, 9.0])
    with pytest.raises(ValueError, match="at most 4"):
        window_starts(1.0, 10.0, 5, rng_for(0, 0, 0), min_gap=2.0)


def test_window_spec_validation():
    spec = WindowSpec(0.64, fps=25.0)
    assert spec.audio_duration == 0.64 and spec.num_frames == 16
    with pytest.raises(ValueError, match="video_duration"):
        WindowSpec(0.0)
    with pytest.raises(ValueError, match="durations\\[1\\]"):
        ClipSampler(np.array([1.0, np.nan]), spec)
    with pytest.raises(ValueError, match="has_audio must have shape"):
        ClipSampler(np.array([1.0, 2.0]), spec, has_audio=np.array([True]))



def test_evenly_spaced_starts_are_centres_of_equal_segments_on_the_frame_grid():
    assert evenly_spaced_starts(10.0, 2.0, 1, 8.0) == [4.0]
    # room 8 s: centres at 8/6, 8/2, 40/6 s, floored to 1/8 s
    assert evenly_spaced_starts(10.0, 2.0, 3, 8.0) == [1.25, 4.0, 6.625]
    assert evenly_spaced_starts(1.0, 2.0, 2, 8.0) == [0.0, 0.0]  # shorter than a clip: from the start


def test_evenly_spaced_start_of_one_clip_is_the_centre_floored_not_rounded():
    # centre of a 5.0 s file for a 1.0 s window: 2.0 s; of a 5.15 s file: 2.075 s -> 2.0 at 8 fps
    # (rounding would give 2.125), so every evaluation clip starts on or before its centre
    assert evenly_spaced_starts(5.0, 1.0, 1, 8.0) == [2.0]
    assert evenly_spaced_starts(5.15, 1.0, 1, 8.0) == [2.0]
    for duration in np.linspace(0.5, 12.0, 47):
        (start,) = evenly_spaced_starts(float(duration), 1.0, 1, 25.0)
        centre = max(0.0, (duration - 1.0) / 2)
        assert on_grid(start, 25.0) and centre - 1 / 25 < start <= centre + EPS
