"""Log-mel spectrograms of waveforms with torch.stft and a Slaney mel filterbank (CPU or CUDA)."""

from __future__ import annotations

import math

import torch
from torch import nn

from avssl.config.data import LogMelConfig

_COMPUTE_DTYPES = {"float64": torch.float64, "float32": torch.float32}


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
