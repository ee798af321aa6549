"""The small base every method shares: encoders from the config, device-side input preparation,
the optimiser and the LR schedule.

A method subclasses PretrainMethod and says what it uses: its `Params`, its data recipe class (in
avssl.data.recipes: the sample, the sampler and the shortest usable file), its heads and losses
(avssl.losses) and `training_step`. What a checkpoint holds besides the weights is the trainer's
business (avssl.train).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avssl.config.schema import Config
from avssl.data.dataset import FileTable
from avssl.data.features import LogMelSpectrogram
from avssl.data.recipes.base import SampleRecipe
from avssl.data.streams import StepStream
from avssl.data.transforms import augment_log_mel, color_jitter, normalize, random_gain, random_grayscale
from avssl.methods.collapse import CollapseWatch
from avssl.models.factory import build_encoder
from avssl.models.heads import ProjectionMLP


class PretrainMethod(L.LightningModule):
    """Encoders + device-side preprocessing + optimisation; subclasses add heads, losses and data."""

    Params: ClassVar[type]
    recipe_class: ClassVar[type[SampleRecipe]]
    # the terms of the loss that training_step logs as train/<term> (train/loss is their weighted sum)
    loss_terms: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.params = config.method.params
        self.video_encoder = build_encoder(config.model.video)
        self.audio_encoder = build_encoder(config.model.audio)
        self.log_mel = LogMelSpectrogram(config.data.logmel)
        # augmentation draws on the device side come from a generator seeded per step, so a resumed
        # run draws what the uninterrupted run drew at the same step
        self._aug_generator = torch.Generator()
        self._collapse_watch = CollapseWatch()

    @classmethod
    def chance_levels(cls, config: Config) -> dict[str, float]:
        """metrics.csv accuracy column -> what guessing scores (for plots and reports)."""
        return {}

    def recipe(self, table: FileTable) -> SampleRecipe:
        """The picklable recipe that builds this method's training samples from `table` (in workers)."""
        return self.recipe_class(table, self.config)

    # ----------------------------------------------------------------- device side

    def projection(self, in_dim: int) -> ProjectionMLP:
        m = self.config.model
        return ProjectionMLP(in_dim, m.projection_hidden, m.embed_dim, m.projection_layers, m.projection_bn)

    def step_generator(self, stream: int) -> torch.Generator:
        """A CPU generator seeded by (seed, global step, stream): device-side draws (avssl.data.streams.StepStream)."""
        seed = np.random.SeedSequence([self.config.seed, int(self.global_step), stream]).generate_state(1)[0]
        return self._aug_generator.manual_seed(int(seed))

    def video_input(self, clips: torch.Tensor, train: bool = True, stream: int = 0) -> torch.Tensor:
        """uint8 [B, 3, T, H, W] (already cropped) -> normalised float [B, 3, T, H, W]; colour
        jitter and grayscale when training. Runs on the batch's device."""
        aug = self.config.data.video_augment
        x = clips
        if train:
            gen = self.step_generator(StepStream.VIDEO_AUGMENT + stream)
            x = color_jitter(x, aug.brightness, aug.contrast, aug.saturation, aug.hue, aug.jitter_p, generator=gen)
            x = random_grayscale(x, aug.grayscale_p, generator=gen)
        x = normalize(x, aug.mean, aug.std)
        if self.config.trainer.channels_last_3d:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def audio_input(self, waveform: torch.Tensor, train: bool = True, stream: int = 0) -> torch.Tensor:
        """float [B, N] -> log-mel [B, 1, n_mels, frames]; when training a random gain of
        `data.audio_augment.gain_db` on the waveform first, and SpecAugment on the log-mel."""
        aug = self.config.data.audio_augment
        if train:
            waveform = random_gain(waveform, *aug.gain_db, generator=self.step_generator(StepStream.AUDIO_GAIN + stream))
        x = self.log_mel(waveform).float()
        if train:
            x = augment_log_mel(x, aug, generator=self.step_generator(StepStream.AUDIO_AUGMENT + stream))
        return x

    def video_pieces_input(self, pieces: torch.Tensor, train: bool = True, stream: int = 0) -> torch.Tensor:
        """uint8 pieces of one clip per sample [B, n, 3, P, H, W] -> [B * n, 3, P, H, W], prepared as
        video_input prepares a clip: the pieces of a sample share one colour jitter, so that no piece
        looks unlike its neighbours for a reason the clip does not have."""
        b, n = pieces.shape[:2]
        joined = pieces.permute(0, 2, 1, 3, 4, 5).flatten(2, 3)  # [B, 3, n * P, H, W]
        prepared = self.video_input(joined, train=train, stream=stream)
        return prepared.unflatten(2, (n, -1)).permute(0, 2, 1, 3, 4, 5).flatten(0, 1)

    def audio_pieces_input(self, pieces: torch.Tensor, train: bool = True, stream: int = 0) -> torch.Tensor:
        """Waveform pieces of one clip per sample [B, n, P] -> log-mel [B * n, 1, F, T], each piece's
        log-mel computed on its own samples; when training, the pieces of a sample share one random gain
        and one draw of SpecAugment's masks (laid over the pieces side by side), as a whole clip would.
        Independent draws per piece would make the loudness change from piece to piece for no reason
        in the sound, and a time mask as wide as a piece would blank it."""
        aug = self.config.data.audio_augment
        b, n, samples = pieces.shape
        if train:
            gain = self.step_generator(StepStream.AUDIO_GAIN + stream)
            pieces = random_gain(pieces.reshape(b, n * samples), *aug.gain_db, generator=gain).view(b, n, samples)
        x = self.log_mel(pieces.reshape(b * n, samples)).float()  # [B * n, 1, F, T]
        if train:
            joined = x.unflatten(0, (b, n)).permute(0, 2, 3, 1, 4).flatten(3, 4)  # [B, 1, F, n * T]
            joined = augment_log_mel(joined, aug, generator=self.step_generator(StepStream.AUDIO_AUGMENT + stream))
            x = joined.unflatten(3, (n, -1)).permute(0, 3, 1, 2, 4).flatten(0, 1)
        return x

    def video_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Prepared clips [B, 3, T, H, W] -> encoder features [B, D] (what `avssl extract` stores)."""
        return self.video_encoder(clips)

    def audio_features(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, 1, F, T] -> encoder features [B, D]."""
        return self.audio_encoder(log_mel)

    def embed_video(self, clips: torch.Tensor) -> torch.Tensor:
        """Prepared clips [B, 3, T, H, W] -> the joint audio-visual space [B, E]: the projection head
        on the encoder features, L2-normalised (where the method compares video with audio)."""
        return F.normalize(self.video_head(self.video_features(clips)), dim=1)

    def embed_audio(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel [B, 1, F, T] -> the joint audio-visual space [B, E] (see embed_video)."""
        return F.normalize(self.audio_head(self.audio_features(log_mel)), dim=1)

    def embed_video_positions(self, clips: torch.Tensor) -> torch.Tensor:
        """Prepared clips [B, 3, T, H, W] (any H, W: the encoder is fully convolutional) -> the joint
        space at each position of the last stage's map, L2-normalised: [B, H', W', E]. Each position's
        features are averaged over the map's time axis and go through the projection head as
        embed_video's pooled vector does, so a map of one position is embed_video."""
        fmap = self.video_encoder(clips, return_map=True).mean(dim=2)  # [B, C, H', W']
        b, c, h, w = fmap.shape
        rows = fmap.permute(0, 2, 3, 1).reshape(-1, c)
        return F.normalize(self.video_head(rows), dim=1).reshape(b, h, w, -1)

    def watch_collapse(self, embeddings: dict[str, torch.Tensor], batch_size: int) -> None:
        """Log `train/repeated_<name>` for each batch of embeddings (avssl.methods.collapse) and warn
        once per run and name when half the batch or more repeats exactly."""
        for name, rows in embeddings.items():
            share = self._collapse_watch.check(name, rows, self.global_step)
            self.log(f"train/repeated_{name}", torch.tensor(share), batch_size=batch_size)

    def on_fit_start(self) -> None:
        # Lightning keeps the mode a module arrives in: a method evaluated (eval()) before fit would
        # otherwise train with BatchNorm on frozen running statistics and dropout off. No method here
        # keeps a submodule in eval mode on purpose.
        self.train()

    # ----------------------------------------------------------------- optimisation

    def configure_optimizers(self) -> Any:
        o = self.config.optim
        decay, no_decay = split_weight_decay(self)
        groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if o.name == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas))
        else:
            optimizer = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=True)
        schedule = warmup_cosine(o.warmup_steps, self.config.trainer.max_steps, o.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def split_weight_decay(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights of conv / linear layers, everything else: norms, biases, embeddings of dim 1)."""
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    return decay, no_decay


def warmup_cosine(warmup_steps: int, total_steps: int, min_ratio: float):
    """LR multiplier at step s: linear from 1/warmup to 1 over warmup, then cosine down to min_ratio."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor
