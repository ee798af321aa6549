"""Pretext views: each label checked against the source frame / sample numbers the output carries."""

import itertools

import numpy as np
import pytest
import torch

from avssl.data.sampling import WindowSpec
from avssl.data.views import (
    AUDIO_AFTER,
    AUDIO_BEFORE,
    AUDIO_IN_SYNC,
    audio_at_speed,
    in_source_order,
    inter_modal_order_view,
    order_classes,
    order_label,
    order_view,
)

FPS, RATE = 25, 16000


def indexed_frames(count: int, first: int = 0, dtype=torch.float32) -> torch.Tensor:
    """[count, 2, 3, 3]: every pixel of frame i holds first + i."""
    values = torch.arange(first, first + count, dtype=torch.float64)
    return values.view(-1, 1, 1, 1).expand(count, 2, 3, 3).to(dtype).contiguous()


def frame_numbers(frames: torch.Tensor) -> list[int]:
    return [int(v) for v in frames[..., 0, 0, 0].reshape(-1).tolist()]


@pytest.mark.parametrize("speed", (1, 2, 4, 8))
def test_audio_speed_keeps_a_ramp_exact(speed):
    n = 4000
    # sample i holds (i - 2**14) / 2**15: its index, exactly, in the range of real audio
    ramp = (torch.arange(speed * n + 7, dtype=torch.float32) - 2**14) / 2**15
    out = audio_at_speed(ramp, speed, n)
    assert out.shape == (n,) and out.dtype == torch.float32
    source_index = out * 2**15 + 2**14  # output sample k is centred on source sample k * speed
    torch.testing.assert_close(source_index, speed * torch.arange(n, dtype=torch.float32), rtol=0, atol=0.05)


def dominant_hz(x: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(x.double() * torch.hann_window(len(x), dtype=torch.float64)).abs()
    return float(spectrum.argmax()) * RATE / len(x)


def test_audio_speed_raises_pitch_and_filters_what_would_alias():
    t = torch.arange(4 * RATE, dtype=torch.float64) / RATE
    tone = torch.sin(2 * torch.pi * 440 * t).float()
    assert dominant_hz(audio_at_speed(tone, 2, RATE)) == pytest.approx(880, abs=2)
    assert dominant_hz(audio_at_speed(tone, 4, RATE)) == pytest.approx(1760, abs=2)
    # 6 kHz is above the 4 kHz Nyquist of the 2x output: plain decimation would fold it to 2 kHz
    high = torch.sin(2 * torch.pi * 6000 * t).float()
    decimated = high[: 2 * RATE : 2]
    assert decimated.pow(2).mean().sqrt() > 0.6
    filtered = audio_at_speed(high, 2, RATE)[200:-200]  # away from the edge extension
    assert filtered.pow(2).mean().sqrt() < 0.03





def test_order_classes_are_fixed_lists():
    assert order_classes(3) == tuple(itertools.permutations(range(3)))
    assert order_classes(3, merge_reverse=True) == ((0, 1, 2), (0, 2, 1), (1, 0, 2))
    assert len(order_classes(4, True)) == 12
    assert order_label((2, 1, 0), True) == order_label((0, 1, 2), True) == 0
    with pytest.raises(ValueError, match="merge_reverse"):
        order_classes(2, True)


@pytest.mark.parametrize("merge_reverse", [False, True])
def test_order_view_label_matches_subclip_frames(merge_reverse):
    labels = set()
    for seed in range(40):
        parts, label = order_view(indexed_frames(31), np.random.default_rng(seed), 3, merge_reverse)
        assert parts.shape == (3, 10, 2, 3, 3)
        perm = tuple(frame_numbers(parts[j, :1])[0] // 10 for j in range(3))
        for j in range(3):  # each sub-clip is 10 consecutive source frames of one third
            assert frame_numbers(parts[j]) == list(range(10 * perm[j], 10 * perm[j] + 10))
        cls = order_classes(3, merge_reverse)[label]
        assert perm == cls or (merge_reverse and perm[::-1] == cls)
        labels.add(label)
    assert labels == set(range(3 if merge_reverse else 6))


def test_order_view_on_audio():
    parts, label = order_view(torch.arange(12.0), torch.Generator().manual_seed(1), 4)
    perm = tuple(int(p) // 3 for p in parts[:, 0])
    assert order_classes(4)[label] == perm
    assert torch.equal(parts[1], torch.arange(3.0) + 3 * perm[1])


def test_inter_modal_order_label_matches_read_windows():
    spec = WindowSpec(0.64, 0.64, fps=FPS)
    duration = 10.0
    frames = indexed_frames(int(duration * FPS))  # frame i shown at i / FPS
    ramp = torch.arange(int(duration * RATE), dtype=torch.float32)  # sample i at i / RATE
    labels = set()
    for seed in range(60):
        pair, label = inter_modal_order_view(spec, duration, np.random.default_rng(seed),
                                             min_offset=0.4, max_offset=1.2)
        first = round(pair.video_start * FPS)
        video = frames[first:first + spec.num_frames]
        begin = round(pair.audio_start * RATE)
        audio = ramp[begin:begin + round(spec.audio_duration * RATE)]
        assert len(video) == 16 and len(audio) == 10240
        shift = float(audio[0]) / RATE - frame_numbers(video)[0] / FPS  # audio minus video, seconds
        expected = {AUDIO_BEFORE: shift <= -0.4 + 1e-6, AUDIO_IN_SYNC: abs(shift) < 1e-6,
                    AUDIO_AFTER: shift >= 0.4 - 1e-6}
        assert expected[label] and abs(shift) <= 1.2 + 1e-6
        labels.add(label)
    assert labels == {0, 1, 2}


def test_inter_modal_order_position_does_not_leak_the_label():
    spec = WindowSpec(1.0)
    starts = {0: [], 1: [], 2: []}
    for seed in range(600):
        pair, label = inter_modal_order_view(spec, 8.0, np.random.default_rng(seed), min_offset=1.0, max_offset=2.0)
        assert 2.0 - 1e-9 <= pair.video_start <= 5.0 + 1e-9  # where all three cases fit
        starts[label].append(pair.video_start)
    means = [np.mean(v) for v in starts.values()]
    assert max(means) - min(means) < 0.25  # same distribution (uniform on [2, 5]) for each label
    with pytest.raises(ValueError, match="too short"):
        inter_modal_order_view(spec, 4.5, np.random.default_rng(0), min_offset=1.0, max_offset=2.0)


def test_every_speed_has_the_same_spectral_edge():
    """Speed 1 goes through the filter the other speeds get: the share of energy in the top 5% of the
    band is equally small at every speed, so it cannot tell speed 1 from the others."""
    noise = torch.randn(8 * 32000, generator=torch.Generator().manual_seed(0))
    shares = []
    for speed in (1, 2, 4, 8):
        out = audio_at_speed(noise, speed, 32000)
        power = torch.fft.rfft(out.double() * torch.hann_window(len(out), dtype=torch.float64)).abs() ** 2
        shares.append(float(power[int(0.95 * len(power)):].sum() / power.sum()))
    assert max(shares) < 0.01 and max(shares) < 2 * min(shares), shares
    unfiltered = torch.fft.rfft(noise[:32000].double()).abs() ** 2
    assert float(unfiltered[int(0.95 * len(unfiltered)):].sum() / unfiltered.sum()) > 0.04


def test_in_source_order_undoes_order_view_for_a_batch():
    rng = np.random.default_rng(0)
    clips = [torch.arange(11 * k, 11 * k + 11) for k in range(8)]  # each item tells its place
    views = [order_view(clip, rng, 3, gap=1) for clip in clips]
    shown = torch.stack([parts for parts, _ in views])  # [8, 3, 3]
    labels = torch.tensor([label for _, label in views])
    restored = in_source_order(shown, labels, 3)
    for k, clip in enumerate(clips):
        assert restored[k].flatten().tolist() == [*clip[0:3].tolist(), *clip[4:7].tolist(), *clip[8:11].tolist()]
    assert len(set(labels.tolist())) > 1
