"""Log-mel spectrograms of waveforms with torch.stft and a Slaney mel filterbank (CPU or CUDA)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from avssl.errors import UsageError

_PAD_MODES = ("constant", "reflect")
_COMPUTE_DTYPES = {"float64": torch.float64, "float32": torch.float32}


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
        if self.pad_mode not in _PAD_MODES:
            raise UsageError(f"log_mel.pad_mode must be one of {_PAD_MODES}, got {self.pad_mode!r}")
        if self.compute_dtype not in _COMPUTE_DTYPES:
            raise UsageError(
                f"log_mel.compute_dtype must be one of {tuple(_COMPUTE_DTYPES)}, "
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



def _hz_to_mel_slaney(hz: torch.Tensor) -> torch.Tensor:
    # Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above (as librosa htk=False).
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = hz / f_sp
    log = min_log_mel + torch.log(torch.clamp(hz, min=min_log_hz) / min_log_hz) / logstep
    return torch.where(hz >= min_log_hz, log, linear)


def _mel_to_hz_slaney(mel: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    linear = f_sp * mel
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Slaney-style mel filterbank with area normalisation (librosa.filters.mel, htk=False,
    norm="slaney"), computed in float64: [n_mels, n_fft // 2 + 1]."""
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_edges = torch.linspace(
        float(_hz_to_mel_slaney(torch.tensor(f_min, dtype=torch.float64))),
        float(_hz_to_mel_slaney(torch.tensor(f_max, dtype=torch.float64))),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz_edges = _mel_to_hz_slaney(mel_edges)
    widths = hz_edges[1:] - hz_edges[:-1]
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    # Area normalisation: each triangle integrates to (roughly) the same energy.
    weights *= (2.0 / (hz_edges[2 : n_mels + 2] - hz_edges[:n_mels]))[:, None]
    return weights


def power_to_db(
    power: torch.Tensor, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0
) -> torch.Tensor:
    """Power to decibels as librosa.power_to_db, with the ``top_db`` clip taken per example.

    power: [B, ...] non-negative; returns the same shape.
    """
    db = 10.0 * torch.log10(torch.clamp(power, min=amin)) - 10.0 * math.log10(max(amin, ref))
    if top_db is not None:
        peak = db.flatten(1).amax(dim=1).view(-1, *([1] * (db.dim() - 1)))
        db = torch.maximum(db, peak - top_db)
    return db


class LogMelSpectrogram(nn.Module):
    """Waveform [B, N] (or [N]) -> log-mel [B, 1, n_mels, frames] (or [1, n_mels, frames]).

    The window and filterbank are buffers, so ``.to(device)`` moves them; nothing on the forward
    path touches numpy, so it runs on CUDA tensors as well as CPU ones.
    """

    def __init__(self, config: LogMelConfig | None = None) -> None:
        super().__init__()
        self.config = config or LogMelConfig()
        cfg = self.config
        dtype = _COMPUTE_DTYPES[cfg.compute_dtype]
        window = torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float64)
        self.register_buffer("window", window.to(dtype), persistent=False)
        filterbank = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.f_min, cfg.f_max)
        # librosa builds its filterbank in float32; rounding it the same way keeps us within 1e-6 dB.
        self.register_buffer("filterbank", filterbank.float().to(dtype), persistent=False)

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module's signature
        # Keep the compute precision when the module is cast (.float(), .half()); follow devices.
        dtype = _COMPUTE_DTYPES[self.config.compute_dtype]
        out = super()._apply(fn, recurse)
        self.window = self.window.to(dtype)
        self.filterbank = self.filterbank.to(dtype)
        return out

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if waveform.dim() not in (1, 2):
            raise ValueError(f"waveform must be [N] or [B, N], got shape {tuple(waveform.shape)}")
        if not waveform.is_floating_point():
            raise ValueError(f"waveform must be a float tensor, got {waveform.dtype}")
        single = waveform.dim() == 1
        batch = waveform.unsqueeze(0) if single else waveform
        cfg.num_frames(batch.shape[-1])  # validates the length for center=False
        spec = torch.stft(
            batch.to(self.window.dtype),
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            win_length=cfg.win_length,
            window=self.window,
            center=cfg.center,
            pad_mode=cfg.pad_mode,
            return_complex=True,
        )
        magnitude = spec.abs()
        power = magnitude.square() if cfg.power == 2.0 else magnitude.pow(cfg.power)
        mel = torch.matmul(self.filterbank, power)  # [B, n_mels, frames]
        log_mel = power_to_db(mel, ref=cfg.ref, amin=cfg.amin, top_db=cfg.top_db)
        log_mel = log_mel.to(waveform.dtype).unsqueeze(1)
        return log_mel[0] if single else log_mel


def log_mel(waveform: torch.Tensor, config: LogMelConfig | None = None) -> torch.Tensor:
    """One-off log-mel of [B, N] or [N]; build a LogMelSpectrogram once for repeated calls."""
    return LogMelSpectrogram(config).to(waveform.device)(waveform)
