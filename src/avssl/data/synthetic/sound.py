"""Synthesised sounds of the demo world: impact timbres per object class, theme music, noise floor.

Every impact sound has a sharp attack (2 ms) and an exponential decay, so its onset marks the
impact's sample and reversed audio (slow swell, abrupt stop) is easy to tell from forward audio.
Themes have soft attacks (tens of ms) and a low level, so they colour a recording without making
onsets that could be mistaken for impacts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ATTACK_S = 0.002


def _envelope(n: int, sr: int, decay_s: float) -> np.ndarray:
    t = np.arange(n) / sr
    attack = np.clip(t / _ATTACK_S, 0.0, 1.0)
    return (attack * np.exp(-t / decay_s)).astype(np.float64)


def _partials(t: np.ndarray, f0: float, ratios, amps) -> np.ndarray:
    out = np.zeros_like(t)
    for r, a in zip(ratios, amps):
        out += a * np.sin(2 * np.pi * f0 * r * t)
    return out


def _band_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(freqs < lo) | (freqs > hi)] = 0.0
    out = np.fft.irfft(spec, n)
    return out / (np.abs(out).max() + 1e-12)


def impact_sound(timbre: str, sr: int, pitch: float = 1.0, seed: int = 0) -> np.ndarray:
    """One impact of a timbre, peak 1, float32 [N]. `pitch` scales every frequency (1.0 = nominal).

    Timbres differ in spectrum and decay, not only in pitch, so that a class stays recognisable when
    a speed-changing pretext task resamples the audio.
    """
    dur = {"bell": 0.45, "gong": 0.5, "woodblock": 0.08, "snare": 0.15, "drum": 0.3}.get(timbre, 0.3)
    n = int(round(dur * sr))
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    p = pitch
    if timbre == "marimba":
        wave = _partials(t, 330 * p, (1.0, 3.93, 9.2), (1.0, 0.35, 0.1))
        env = _envelope(n, sr, 0.09)
    elif timbre == "buzzer":
        wave = _partials(t, 196 * p, (1, 3, 5, 7, 9, 11), (1, 1 / 3, 1 / 5, 1 / 7, 1 / 9, 1 / 11))
        env = _envelope(n, sr, 0.07)
    elif timbre == "bell":
        wave = _partials(t, 880 * p, (1.0, 2.76, 5.40, 8.93), (1.0, 0.6, 0.3, 0.15))
        env = _envelope(n, sr, 0.16)
    elif timbre == "woodblock":
        wave = _band_noise(rng, n, sr, 1800 * p, 3200 * p) + 0.5 * np.sin(2 * np.pi * 2400 * p * t)
        env = _envelope(n, sr, 0.015)
    elif timbre == "gong":
        wave = _partials(t, 523 * p, (1.0, 1.59, 2.14, 2.30, 2.65), (1.0, 0.8, 0.6, 0.5, 0.3))
        wave *= 1.0 + 0.3 * np.sin(2 * np.pi * 6.0 * t)
        env = _envelope(n, sr, 0.2)
    elif timbre == "drum":
        freq = 60 * p + 100 * p * np.exp(-t / 0.04)  # the pitch drop of a struck membrane
        wave = np.sin(2 * np.pi * np.cumsum(freq) / sr) + 0.15 * _band_noise(rng, n, sr, 100, 2000)
        env = _envelope(n, sr, 0.1)
    elif timbre == "pluck":
        k = np.arange(1, 12)
        wave = _partials(t, 440 * p, k, 1.0 / k)  # sawtooth-like
        env = _envelope(n, sr, 0.07)
    elif timbre == "snare":
        wave = _band_noise(rng, n, sr, 1200, 7000) + 0.4 * np.sin(2 * np.pi * 190 * p * t)
        env = _envelope(n, sr, 0.045)
    else:
        raise ValueError(f"unknown timbre {timbre!r}")
    out = wave * env
    return (out / (np.abs(out).max() + 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class Theme:
    """A background theme: a drone on `base` Hz and a looping motif of notes (multiples of base)."""

    base: float
    motif: tuple[float, ...]  # frequency ratios to base
    note_seconds: float
    tremolo_hz: float
    level: float

    @staticmethod
    def random(rng: np.random.Generator, level: float) -> "Theme":
        pentatonic = np.array([1.0, 9 / 8, 5 / 4, 3 / 2, 5 / 3, 2.0, 9 / 4, 5 / 2])
        motif = rng.choice(pentatonic, size=int(rng.integers(4, 7))) * 2.0
        return Theme(
            base=float(rng.uniform(80.0, 180.0)),
            motif=tuple(float(m) for m in motif),
            note_seconds=float(rng.uniform(0.35, 0.7)),
            tremolo_hz=float(rng.uniform(0.2, 1.5)),
            level=level,
        )

    def render(self, n: int, sr: int) -> np.ndarray:
        """float64 [n]: the theme from time 0 (movies play one theme across all their scenes)."""
        t = np.arange(n) / sr
        drone = np.sin(2 * np.pi * self.base * t) + 0.4 * np.sin(2 * np.pi * 2 * self.base * t)
        drone *= 0.6 + 0.4 * np.sin(2 * np.pi * self.tremolo_hz * t)
        note_index = (t // self.note_seconds).astype(np.int64)
        ratios = np.asarray(self.motif)[note_index % len(self.motif)]
        phase_t = t - note_index * self.note_seconds
        # soft 40 ms attack and release per note: no sharp onsets
        env = np.minimum(np.clip(phase_t / 0.04, 0, 1), np.clip((self.note_seconds - phase_t) / 0.04, 0, 1))
        melody = env * np.sin(2 * np.pi * self.base * ratios * t)
        return self.level * (0.5 * drone + 0.6 * melody) / 1.1


def mix_events(
    n: int, sr: int, events: list[tuple[float, np.ndarray, float]], background: np.ndarray
) -> np.ndarray:
    """Add each (time s, sound [M], gain) onto `background` [n] at sample round(time*sr); float32 [n].

    A soft limiter (tanh) keeps overlapping impacts inside [-1, 1] without hard clipping.
    """
    out = np.array(background, dtype=np.float64, copy=True)
    for time, sound, gain in events:
        start = int(round(time * sr))
        if start >= n or start + len(sound) <= 0:
            continue
        lo = max(start, 0)
        hi = min(start + len(sound), n)
        out[lo:hi] += gain * sound[lo - start:hi - start]
    return np.tanh(out).astype(np.float32)
