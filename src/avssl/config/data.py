"""Config sections of the data path: the clip, log-mel features, video and audio augmentation, loading.

Plain dataclasses validated on load (avssl.config.typed); the data layer reads them, nothing here
imports from above config/.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Literal, Optional

from avssl.config.typed import require
from avssl.errors import UsageError

# Kinetics-400 mean / std, as torchvision's video models normalise (assumed defaults)
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
LOG_MEL_PAD_MODES = ("constant", "reflect")
LOG_MEL_COMPUTE_DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class LogMelConfig:
    """How a waveform becomes a log-mel spectrogram.

    Defaults (assumed, the field's usual audio front end; change them in the config):
    16 kHz mono, 25 ms Hann window (400 samples) zero-padded to a 512-point FFT, 10 ms hop
    (160 samples), 64 Slaney-normalised mel bands over 0 Hz .. Nyquist, power spectrogram,
    decibels relative to ``ref`` = 1.0 with floor ``amin`` = 1e-10 and a dynamic range clipped
    to ``top_db`` = 80 dB below each example's maximum (librosa's ``power_to_db`` defaults;
    ``top_db=None`` disables the clip). ``center=True`` pads ``n_fft // 2`` samples on both
    sides (zeros, as librosa >= 0.10 does), so a clip of N samples has ``1 + N // hop_length``
    frames; ``center=False`` gives ``1 + (N - n_fft) // hop_length``.

    ``compute_dtype`` is the precision of the STFT and filterbank product; the output has the
    input's dtype. "float64" (default) matches librosa to ~1e-6 dB even 80 dB below the peak, and
    costs about 1.5x float32 on CPU, small beside video decoding; "float32" is faster on GPUs with
    slow float64 and differs from librosa by up to ~2e-3 dB in the quietest bins (FFT rounding).
    """

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None
    power: float = 2.0
    ref: float = 1.0
    amin: float = 1e-10
    top_db: float | None = 80.0
    center: bool = True
    pad_mode: str = "constant"
    compute_dtype: str = "float64"

    def __post_init__(self) -> None:
        for key in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UsageError(f"log_mel.{key} must be a positive integer, got {value!r}")
        if self.win_length > self.n_fft:
            raise UsageError(
                f"log_mel.win_length ({self.win_length}) must not exceed log_mel.n_fft ({self.n_fft})"
            )
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.f_min < self.upper_frequency <= nyquist:
            raise UsageError(
                f"log_mel.f_min ({self.f_min}) and log_mel.f_max ({self.f_max}) must satisfy "
                f"0 <= f_min < f_max <= sample_rate / 2 ({nyquist})"
            )
        if self.power <= 0 or self.ref <= 0 or self.amin <= 0:
            raise UsageError("log_mel.power, log_mel.ref and log_mel.amin must be positive")
        if self.top_db is not None and self.top_db < 0:
            raise UsageError(f"log_mel.top_db must be >= 0 or null, got {self.top_db}")
        if self.pad_mode not in LOG_MEL_PAD_MODES:
            raise UsageError(f"log_mel.pad_mode must be one of {LOG_MEL_PAD_MODES}, got {self.pad_mode!r}")
        if self.compute_dtype not in LOG_MEL_COMPUTE_DTYPES:
            raise UsageError(
                f"log_mel.compute_dtype must be one of {LOG_MEL_COMPUTE_DTYPES}, "
                f"got {self.compute_dtype!r}"
            )

    @property
    def upper_frequency(self) -> float:
        return self.sample_rate / 2 if self.f_max is None else float(self.f_max)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        if num_samples < self.n_fft:
            raise UsageError(
                f"{num_samples} samples is shorter than log_mel.n_fft ({self.n_fft}) with center=False"
            )
        return 1 + (num_samples - self.n_fft) // self.hop_length


@dataclass(frozen=True)
class VideoAugmentConfig:
    """Training and evaluation video pipeline settings (defaults as in the module docstring;
    ``size`` 112 px, the field's usual input for R(2+1)D-18 pretraining)."""

    size: int = 112
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise UsageError(f"video_augment.size must be positive, got {self.size}")
        for key in ("flip_p", "jitter_p", "grayscale_p"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UsageError(f"video_augment.{key} must be a probability, got {getattr(self, key)}")
        if not 0.0 <= self.hue <= 0.5:
            raise UsageError(f"video_augment.hue must be in [0, 0.5], got {self.hue}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise UsageError("video_augment.mean and video_augment.std need 3 values, std > 0")
        # the random resized crop draws an area share in crop_scale and an aspect (w / h) in crop_ratio
        low, high = (tuple(self.crop_scale) + (0.0, 0.0))[:2]
        if len(self.crop_scale) != 2 or not 0 < low <= high <= 1:
            raise UsageError(f"video_augment.crop_scale must be [min, max] with 0 < min <= max <= 1, "
                             f"got {list(self.crop_scale)}")
        low, high = (tuple(self.crop_ratio) + (0.0, 0.0))[:2]
        if len(self.crop_ratio) != 2 or not 0 < low <= high:
            raise UsageError(f"video_augment.crop_ratio must be [min, max] with 0 < min <= max, "
                             f"got {list(self.crop_ratio)}")


@dataclass(frozen=True)
class AudioAugmentConfig:
    """Audio augmentation settings: waveform gain range (dB) and SpecAugment masks (log-mel)."""

    gain_db: tuple[float, float] = (-6.0, 6.0)
    num_freq_masks: int = 2
    max_freq_width: int = 8
    num_time_masks: int = 2
    max_time_width: int = 20

    def __post_init__(self) -> None:
        if len(self.gain_db) != 2 or self.gain_db[0] > self.gain_db[1]:
            raise UsageError(f"audio_augment.gain_db must be [low, high], got {self.gain_db}")
        for key in ("num_freq_masks", "max_freq_width", "num_time_masks", "max_time_width"):
            if getattr(self, key) < 0:
                raise UsageError(f"audio_augment.{key} must be >= 0, got {getattr(self, key)}")


@dataclass
class ClipConfig:
    """One training clip: `frames` video frames sampled at `fps` (so frames / fps seconds) and the
    audio of `audio_seconds` (default: the same window as the video) at `sample_rate`. The frame
    size is `data.video_augment.size`."""

    frames: int = 16
    fps: float = 25.0
    audio_seconds: Optional[float] = None
    sample_rate: int = 16000

    @property
    def video_seconds(self) -> float:
        return self.frames / self.fps

    @property
    def audio_window(self) -> float:
        return self.audio_seconds if self.audio_seconds is not None else self.video_seconds

    def validate(self, where: str) -> None:
        require(self.frames > 0, f"{where}.frames", f"must be positive, got {self.frames}")
        require(self.fps > 0, f"{where}.fps", f"must be positive, got {self.fps}")
        require(self.sample_rate > 0, f"{where}.sample_rate", f"must be positive, got {self.sample_rate}")
        require(self.audio_seconds is None or self.audio_seconds > 0, f"{where}.audio_seconds", "must be positive")


@dataclass
class SamplesPerFileConfig:
    """How many samples a file gives per epoch: round(duration / `seconds`), at least 1, at most `max`.

    The default, one per 10 s (the clip length of Kinetics, VGG-Sound and AudioSet) and at most 64,
    keeps a folder of clips up to 15 s at one sample per file and epoch, and lets a 2-hour movie count
    as 64 of them. `seconds: null` takes the method's clip span (one sample per clip window the file
    holds); `max: 1` gives every file one sample per epoch whatever its length. Each sample of a file
    draws its own windows. movie-nce's batch sampler picks its own clips (`method.movie_repeats`).
    """

    seconds: Optional[float] = 10.0
    max: int = 64

    def validate(self, where: str) -> None:
        require(self.seconds is None or (math.isfinite(self.seconds) and self.seconds > 0), f"{where}.seconds",
                f"must be a number > 0 or null (the clip span), got {self.seconds!r}")
        require(self.max >= 1, f"{where}.max", f"must be >= 1, got {self.max}")


@dataclass
class DataConfig:
    """Loading: batch, workers, decoder backend, failure policy, samples per file and epoch, clip shape,
    features, augmentations.

    `cache_dir`: a folder written by `avssl cache audio` / `avssl cache frames` for this clip config
    (sample rate; fps and decode size); clips it holds are read from it instead of being decoded.
    """

    batch_size: int = 32
    num_workers: int = 4
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: int = 2
    backend: Literal["pyav", "torchcodec"] = "pyav"
    max_failures: int = 100
    cache_dir: Optional[str] = None
    samples_per_file: SamplesPerFileConfig = field(default_factory=SamplesPerFileConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)
    logmel: LogMelConfig = field(default_factory=LogMelConfig)
    video_augment: VideoAugmentConfig = field(default_factory=VideoAugmentConfig)
    audio_augment: AudioAugmentConfig = field(default_factory=AudioAugmentConfig)

    def validate(self, where: str) -> None:
        require(self.batch_size > 0, f"{where}.batch_size", f"must be positive, got {self.batch_size}")
        require(self.num_workers >= 0, f"{where}.num_workers", f"must be >= 0, got {self.num_workers}")
        require(self.prefetch_factor > 0, f"{where}.prefetch_factor", "must be positive")
        require(self.max_failures >= 0, f"{where}.max_failures", f"must be >= 0, got {self.max_failures}")
        require(self.cache_dir is None or os.path.isdir(self.cache_dir), f"{where}.cache_dir",
                f"{self.cache_dir!r} is not a folder (build one with `avssl cache audio|frames`)")
        require(self.logmel.sample_rate == self.clip.sample_rate, f"{where}.logmel.sample_rate",
                f"({self.logmel.sample_rate}) must equal {where}.clip.sample_rate ({self.clip.sample_rate})")
