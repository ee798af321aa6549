"""Log-mel features: agreement with librosa, frame counts, filterbank, config errors."""

import math

import numpy as np
import pytest
import torch

from avssl.config.typed import from_dict
from avssl.data.features import LogMelConfig, LogMelSpectrogram, mel_filterbank, power_to_db
from avssl.errors import UsageError


def _realistic_waveforms(batch: int, num_samples: int, sample_rate: int) -> torch.Tensor:
    """Harmonic tones with vibrato, a chirp, noise bursts and silence: a wide dynamic range."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(num_samples, dtype=torch.float64) / sample_rate
    rows = []
    for b in range(batch):
        f0 = 110.0 * (b + 1) * (1 + 0.01 * torch.sin(2 * math.pi * 5 * t))
        phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
        tone = sum(torch.sin(k * phase) / k for k in range(1, 8))
        chirp = 0.3 * torch.sin(2 * math.pi * (200 * t + 2000 * t * t))
        noise = 0.05 * torch.randn(num_samples, generator=gen, dtype=torch.float64)
        envelope = (torch.sin(2 * math.pi * 1.5 * t) > -0.3).double()  # silent stretches
        rows.append(0.2 * envelope * (tone + chirp) + noise * (t > 0.6).double())
    return torch.stack(rows).float()


def test_log_mel_matches_librosa_within_1e_4_db():
    librosa = pytest.importorskip("librosa")
    configs = [
        LogMelConfig(),
        LogMelConfig(sample_rate=24000, n_fft=1024, win_length=960, hop_length=240, n_mels=128,
                     f_min=50.0, f_max=11000.0, top_db=None, ref=0.5),
    ]
    for cfg in configs:
        wave = _realistic_waveforms(3, cfg.sample_rate + 37, cfg.sample_rate)
        ours = LogMelSpectrogram(cfg)(wave)
        assert ours.shape == (3, 1, cfg.n_mels, cfg.num_frames(wave.shape[1]))
        for b in range(3):
            mel = librosa.feature.melspectrogram(
                y=wave[b].numpy(), sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
                win_length=cfg.win_length, window="hann", center=cfg.center, pad_mode="constant",
                power=2.0, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max, htk=False,
                norm="slaney",
            )
            ref_db = librosa.power_to_db(mel, ref=cfg.ref, amin=cfg.amin, top_db=cfg.top_db)
            diff = np.abs(ours[b, 0].double().numpy() - ref_db).max()
            assert diff < 1e-4, f"{cfg}: max |dB difference| {diff}"


def test_filterbank_matches_librosa_filters():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(22050, 2048, 80, f_min=30.0, f_max=8000.0)
    ref = librosa.filters.mel(sr=22050, n_fft=2048, n_mels=80, fmin=30.0, fmax=8000.0, dtype=np.float64)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("num_samples", [159, 160, 161, 16000, 16159, 16160])
def test_frame_count_is_exact(num_samples):
    cfg = LogMelConfig()
    out = LogMelSpectrogram(cfg)(torch.zeros(2, num_samples))
    assert out.shape == (2, 1, 64, 1 + num_samples // 160)
    assert cfg.num_frames(num_samples) == 1 + num_samples // 160
    uncentred = LogMelConfig(center=False)
    out = LogMelSpectrogram(uncentred)(torch.zeros(num_samples + 512))
    assert out.shape == (1, 64, 1 + num_samples // 160)


def test_batch_equals_single_and_top_db_is_per_example():
    layer = LogMelSpectrogram(LogMelConfig())
    wave = _realistic_waveforms(2, 8000, 16000)
    wave[1] *= 1e-3  # 60 dB quieter: its own floor, not the loud example's
    batch = layer(wave)
    for b in range(2):
        torch.testing.assert_close(batch[b], layer(wave[b]), atol=1e-4, rtol=0)
        assert batch[b].max() - batch[b].min() <= 80.0 + 1e-4
    assert batch[1].max() < batch[0].max() - 50


def test_power_to_db_hand_values():
    power = torch.tensor([[1.0, 10.0, 1e-12, 100.0]])
    torch.testing.assert_close(power_to_db(power, top_db=None), torch.tensor([[0.0, 10.0, -100.0, 20.0]]))
    torch.testing.assert_close(power_to_db(power, top_db=15.0), torch.tensor([[5.0, 10.0, 5.0, 20.0]]))
    torch.testing.assert_close(power_to_db(power, ref=10.0, top_db=None)[0, 1], torch.tensor(0.0))


def test_bad_config_names_the_key():
    with pytest.raises(UsageError, match="log_mel.n_mels"):
        LogMelConfig(n_mels=0)
    with pytest.raises(UsageError, match="log_mel.win_length"):
        LogMelConfig(win_length=1024, n_fft=512)
    with pytest.raises(UsageError, match="log_mel.f_max"):
        LogMelConfig(f_max=9000.0)
    with pytest.raises(UsageError, match="data.logmel.hop"):
        from_dict(LogMelConfig, {"hop": 160}, "data.logmel")
    assert from_dict(LogMelConfig, {"n_mels": 128}, "data.logmel").n_mels == 128
    with pytest.raises(ValueError, match="float"):
        LogMelSpectrogram()(torch.zeros(100, dtype=torch.int16))


def test_float32_compute_close_to_float64_and_output_keeps_input_dtype():
    wave = _realistic_waveforms(2, 4000, 16000)
    exact = LogMelSpectrogram(LogMelConfig())(wave)
    fast = LogMelSpectrogram(LogMelConfig(compute_dtype="float32"))(wave)
    assert exact.dtype == fast.dtype == torch.float32
    assert (exact - fast).abs().max() < 1e-2
    assert LogMelSpectrogram(LogMelConfig()).double()(wave.double()).dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    wave = _realistic_waveforms(2, 16000, 16000)
    layer = LogMelSpectrogram(LogMelConfig())
    cpu = layer(wave)
    gpu = layer.to("cuda")(wave.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
