"""Per-video clip windows: determinism, hard-negative offsets from the given video window, inside the file."""


import numpy as np
import pytest

from avssl.data.sampling import (
    ClipSampler,
    WindowSpec,
    evenly_spaced_starts,
    hard_audio_fits,
    hard_audio_start,
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
    forward = [sampler.hard_negative(i, 3, 0.0) for i in range(4)]
    backward = [sampler.hard_negative(i, 3, 0.0) for i in reversed(range(4))][::-1]
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


def test_hard_negative_offsets_are_from_the_given_video_window(sampler):
    spec = sampler.spec
    signs = set()
    for epoch in range(150):
        for i in (0, 1, 2, 3):
            video = sampler.sync_pair(i, epoch).video_start
            audio = sampler.hard_negative(i, epoch, video)
            if audio is None:  # only where no start 0.5 s away fits beside this window
                assert i == 2 and max(video, DURATIONS[2] - spec.audio_duration - video) < 0.5
                continue
            assert abs(audio - video) >= 0.5 - EPS
            assert inside(audio, spec.audio_duration, DURATIONS[i])
            if spec.fps:
                assert on_grid(audio, 25)
            signs.add(np.sign(audio - video))
    assert signs == {-1.0, 1.0}


def test_hard_negative_max_offset_is_respected():
    spec = WindowSpec(1.0)
    sampler = ClipSampler(np.array([60.0]), spec, min_offset=2.0, max_offset=3.0)
    offsets = np.array([abs(sampler.hard_negative(0, e, 30.0) - 30.0) for e in range(300)])
    assert offsets.min() >= 2.0 and offsets.max() <= 3.0
    assert offsets.min() < 2.1 and offsets.max() > 2.9


def test_hard_audio_start_uses_the_only_side_left_and_none_when_no_side_fits():
    # 2.6 s file, 0.8 s audio: audio starts lie in [0, 1.8]
    spec = WindowSpec(1.0, 0.8)
    for seed in range(100):
        audio = hard_audio_start(spec, 2.6, 0.0, rng_for(seed, 0, 0), min_offset=1.7)
        assert 1.7 - EPS <= audio <= 1.8 + EPS  # only later audio fits beside a window at 0
    assert hard_audio_start(spec, 2.6, 0.9, rng_for(0, 0, 0), min_offset=1.0) is None
    assert hard_audio_fits(spec, 2.6, 1.8) and not hard_audio_fits(spec, 2.6, 1.81)


def test_hard_negative_impossible_names_the_video(sampler):
    # 1.5 s file, 1.0 s video, 0.8 s audio: at most 0.7 s of offset
    assert sampler.can_hard_negative(4)
    strict = ClipSampler(DURATIONS, sampler.spec, min_offset=0.75)
    assert not strict.can_hard_negative(4) and strict.can_hard_negative(0)
    assert strict.hard_negative(4, 0, 0.0) is None
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
