"""Every named random stream of avssl, in one place.

A sample's draws come from `rng_for(seed, epoch, index, SampleStream.X)` (avssl.data.sampling), so a
sample is the same in any loader worker, on any rank and after a resume; the device side draws from
`PretrainMethod.step_generator(StepStream.X)`, seeded by (seed, global step, stream). Each kind of draw
has its own stream so that adding a draw elsewhere changes nothing. The numbers are part of what a
seed reproduces: never renumber one.
"""

from __future__ import annotations

from enum import IntEnum


class SampleStream(IntEnum):
    """Streams of one sample, keyed by (seed, epoch, index)."""

    SYNC = 1  # a synchronised window (ClipSampler.sync_pair, the AVCL and fine-tuning start)
    HARD_NEGATIVE = 2  # the offset of an AVTS hard negative
    EPOCH_ORDER = 5  # the order of an epoch (index samplers; the movies of the hierarchical sampler)
    BATCH = 6  # the clips of one hierarchical batch (keyed by batch position instead of file index)
    RECIPE = 11  # a recipe's own draws: labels, offsets (SampleContext.rng)
    AUGMENT = 12  # crop and flip in the worker (SampleContext.torch_generator)


class StepStream(IntEnum):
    """Device-side streams of one optimisation step, keyed by (seed, global step); a view number is
    added to the augmentation streams so that two views of a clip draw independently."""

    NEGATIVE_CHOICE = 1  # AVTS: which samples get their hard negative
    VIDEO_AUGMENT = 100  # colour jitter and grayscale (+ view)
    AUDIO_AUGMENT = 200  # SpecAugment (+ view)
    PALETTE = 300  # movie-nce's palette jitter (+ view)
    AUDIO_GAIN = 400  # volume jitter of the waveform (+ view)
