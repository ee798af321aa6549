"""Epoch-level index sampler for DDP: equal counts per rank, a shuffle per (seed, epoch), resumable;
a file may give several samples per epoch (its count), each with its own draw number."""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
from torch.utils.data import Sampler

from avssl.data.sampling.per_file import as_counts
from avssl.data.sampling.resumable import EpochPosition, world
from avssl.data.sampling.windows import rng_for
from avssl.data.streams import SampleStream


class ResumableDistributedSampler(Sampler[int], EpochPosition):
    """Dataset indices for one rank, as torch's DistributedSampler, plus an exact mid-epoch resume.

    `counts` (int [length], default all 1): how many samples file i gives per epoch. The epoch's
    samples are the pairs (file i, draw d) for d < counts[i]; their order is a permutation of that
    list drawn from (seed, epoch) (the list's own order with shuffle=False), the same on every rank.
    With every count 1 the order is the permutation of range(length) that this sampler always drew.
    The order is padded by wrapping around to a multiple of num_replicas (so every rank gets
    ceil(samples / num_replicas) of them and the first few of the order are seen twice), or, with
    drop_last, cut to a multiple (the last few are not seen this epoch). Rank r takes positions r,
    r + num_replicas, ... of that list: the ranks' lists are disjoint apart from the padding.

    Iterating yields file indices; `draws()` yields (file, draw) pairs, the draw telling a file's
    samples of one epoch apart (a recipe draws each one's windows from it).

    Resume: `state_dict(consumed)` records the epoch and how many of this rank's samples were used;
    `load_state_dict` then `set_epoch(same epoch)` and the next iteration yields exactly the rest.
    All ranks consume in step, so one rank's state serves every rank.
    """

    def __init__(
        self,
        length: int,
        *,
        counts: np.ndarray | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        Sampler.__init__(self)
        EpochPosition.__init__(self, seed)
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.length = int(length)
        self.counts = as_counts(counts, self.length)
        self.samples = int(self.counts.sum())
        self.num_replicas, self.rank = world(num_replicas, rank)
        self.shuffle = shuffle
        self.drop_last = drop_last
        if drop_last and self.samples < self.num_replicas:
            raise ValueError(f"drop_last with {self.samples} samples and {self.num_replicas} ranks leaves none")
        self._order_cache: tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        """Samples per rank per epoch (the whole epoch, whatever the resume position)."""
        if self.drop_last:
            return self.samples // self.num_replicas
        return math.ceil(self.samples / self.num_replicas)

    def epoch_order(self, epoch: int | None = None) -> np.ndarray:
        """The file of each sample of the epoch, in order, before padding and splitting: int64 [samples]
        (a permutation of range(length) when every count is 1)."""
        return self._order(self.epoch if epoch is None else epoch)[0]

    def epoch_draws(self, epoch: int | None = None) -> np.ndarray:
        """The draw number of each sample of `epoch_order`: int64 [samples], in [0, counts[file])."""
        return self._order(self.epoch if epoch is None else epoch)[1]

    def successor(self, index: int, steps: int = 1, epoch: int | None = None) -> int:
        """The file `steps` places after file `index` in the epoch's order of files (each file where its
        first sample is; wrapping around): a deterministic substitute for a sample that cannot be loaded."""
        files, position = self._order(self.epoch if epoch is None else epoch)[2:]
        return int(files[(position[index] + steps) % self.length])

    def rank_indices(self, epoch: int | None = None) -> np.ndarray:
        """The files of all samples this rank gets in the epoch, in order: int64 [len(self)]."""
        return self._rank_part(self.epoch_order(epoch))

    def rank_draws(self, epoch: int | None = None) -> np.ndarray:
        """The draw numbers of `rank_indices`: int64 [len(self)]."""
        return self._rank_part(self.epoch_draws(epoch))

    def __iter__(self) -> Iterator[int]:
        indices = self.rank_indices()
        return self._iterate(len(indices), lambda position: int(indices[position]))

    def draws(self) -> Iterator[tuple[int, int]]:
        """Like iterating, with each sample's draw: (file index, draw), from the same resume position."""
        indices, draws = self.rank_indices(), self.rank_draws()
        return self._iterate(len(indices), lambda position: (int(indices[position]), int(draws[position])))

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        return self.position_state(consumed, self._identity())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_position(state, self._identity(), len(self))

    def _identity(self) -> dict[str, Any]:
        identity = {"length": self.length, "num_replicas": self.num_replicas,
                    "shuffle": self.shuffle, "drop_last": self.drop_last}
        if self.samples != self.length:
            # only then: states saved before files had counts resume as they were written
            identity["samples"] = self.samples
        return identity

    def _rank_part(self, epoch_values: np.ndarray) -> np.ndarray:
        total = len(self) * self.num_replicas
        padded = np.resize(epoch_values, total)  # wraps around when total > samples
        return padded[self.rank :: self.num_replicas]

    def _order(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(file of each sample, its draw, files in order of first sample, position of each file there)."""
        if self._order_cache is None or self._order_cache[0] != epoch:
            if self.shuffle:
                slots = rng_for(self.seed, epoch, 0, SampleStream.EPOCH_ORDER).permutation(self.samples)
            else:
                slots = np.arange(self.samples)
            first_slot = np.cumsum(self.counts) - self.counts
            slot_file = np.repeat(np.arange(self.length), self.counts)
            files, draws = slot_file[slots], slots - first_slot[slot_file[slots]]
            _, first = np.unique(files, return_index=True)
            file_order = files[np.sort(first)]
            position = np.empty_like(file_order)
            position[file_order] = np.arange(self.length)
            self._order_cache = (epoch, files, draws, file_order, position)
        return self._order_cache[1:]
