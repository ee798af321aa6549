"""Epoch-level index sampler for DDP: equal counts per rank, a permutation per (seed, epoch), resumable."""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
from torch.utils.data import Sampler

from avssl.data.sampling.resumable import EpochPosition, world
from avssl.data.sampling.windows import rng_for
from avssl.data.streams import SampleStream


class ResumableDistributedSampler(Sampler[int], EpochPosition):
    """Dataset indices for one rank, as torch's DistributedSampler, plus an exact mid-epoch resume.

    The epoch's order is a permutation of range(length) drawn from (seed, epoch) (or range(length)
    with shuffle=False), the same on every rank. It is padded by wrapping around to a multiple of
    num_replicas (so every rank gets ceil(length / num_replicas) indices and the first few indices
    of the permutation are seen twice), or, with drop_last, cut to a multiple (the last few are not
    seen this epoch). Rank r takes positions r, r + num_replicas, ... of that list.

    Resume: `state_dict(consumed)` records the epoch and how many of this rank's indices were used;
    `load_state_dict` then `set_epoch(same epoch)` and the next iteration yields exactly the rest.
    All ranks consume in step, so one rank's state serves every rank.
    """

    def __init__(
        self,
        length: int,
        *,
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
        self.num_replicas, self.rank = world(num_replicas, rank)
        self.shuffle = shuffle
        self.drop_last = drop_last
        if drop_last and self.length < self.num_replicas:
            raise ValueError(f"drop_last with {self.length} samples and {self.num_replicas} ranks leaves none")
        self._order_cache: tuple[int, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        """Indices per rank per epoch (the whole epoch, whatever the resume position)."""
        if self.drop_last:
            return self.length // self.num_replicas
        return math.ceil(self.length / self.num_replicas)

    def epoch_order(self, epoch: int | None = None) -> np.ndarray:
        """The epoch's permutation of range(length) before padding and splitting: int64 [length]."""
        return self._order(self.epoch if epoch is None else epoch)[0]

    def successor(self, index: int, steps: int = 1, epoch: int | None = None) -> int:
        """The index `steps` places after `index` in the epoch's permutation (wrapping around):
        a deterministic substitute for a sample that cannot be loaded."""
        order, position = self._order(self.epoch if epoch is None else epoch)
        return int(order[(position[index] + steps) % self.length])

    def rank_indices(self, epoch: int | None = None) -> np.ndarray:
        """All indices this rank gets in the epoch, in order: int64 [len(self)]."""
        order = self.epoch_order(epoch)
        total = len(self) * self.num_replicas
        padded = np.resize(order, total)  # wraps around when total > length
        return padded[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        indices = self.rank_indices()
        return self._iterate(len(indices), lambda position: int(indices[position]))

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        return self.position_state(consumed, self._identity())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_position(state, self._identity(), len(self))

    def _identity(self) -> dict[str, Any]:
        return {"length": self.length, "num_replicas": self.num_replicas,
                "shuffle": self.shuffle, "drop_last": self.drop_last}

    def _order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if self._order_cache is None or self._order_cache[0] != epoch:
            if self.shuffle:
                order = rng_for(self.seed, epoch, 0, SampleStream.EPOCH_ORDER).permutation(self.length)
            else:
                order = np.arange(self.length)
            position = np.empty_like(order)
            position[order] = np.arange(self.length)
            self._order_cache = (epoch, order, position)
        return self._order_cache[1], self._order_cache[2]
