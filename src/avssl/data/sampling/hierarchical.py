"""Hierarchical batch sampler for long-form content: M movies per batch, then K clips per movie.

Arithmetic. A batch of B = M * K clips holds K clips from each of M groups (movies). Each clip has
B - 1 in-batch negatives, of which the K - 1 other clips of its movie are within-movie, so the
within-movie share is at most (K - 1) / (B - 1). For a requested share rho the sampler takes the
smallest divisor K of B whose (K - 1) / (B - 1) reaches rho, keeping at least two movies (M = B / K
>= 2) unless rho is 1; the method (avssl.methods.movie_nce) then leaves out of each clip's
negatives the within-movie clips beyond rho's share, so any rho is met, not only divisors of B.
`plan.within_group_share` is the most the batch allows. Examples: B = 8, rho = 3/7 -> K = 4, M = 2;
B = 16, rho = 0.3 -> K = 8, M = 2 (3 of the 7 other clips of a movie kept: 3/11); rho = 0 -> K = 1,
M = B (the usual sampling). B is the per-rank batch.

Clips of the same file are at least `min_gap` s apart (the end of one window to the start of the
next, so starts differ by at least span + min_gap); files of one group count as separate stretches
of time. A group's K clips are spread over its files with probability proportional to each file's
remaining room, then placed uniformly in each file.

Epoch. The eligible groups are shuffled from (seed, epoch, repeat) and cut into batches of M; a
short last batch is filled by wrapping to the start of the same shuffle, so a batch never repeats a
group. `repeats` shuffles are concatenated (visit long movies more often by raising it). The batch
list is padded by wrapping (or cut, with drop_last) to a multiple of num_replicas and rank r takes
batches r, r + R, ...; each batch's clips are drawn from (seed, epoch, batch position), so every
rank, worker and resume computes the same batches.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from torch.utils.data import Sampler

from avssl.data.sampling.clips import as_durations, per_file_array
from avssl.data.sampling.resumable import EpochPosition, world
from avssl.data.sampling.windows import (
    WindowSpec,
    rng_for,
    window_capacities,
    window_starts,
)
from avssl.data.streams import SampleStream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPlan:
    """M groups per batch, K clips per group, and the within-group share (K-1)/(B-1) reached."""

    groups_per_batch: int
    clips_per_group: int
    within_group_share: float

    @property
    def batch_size(self) -> int:
        return self.groups_per_batch * self.clips_per_group


def plan_batch(batch_size: int, within_group_share: float) -> BatchPlan:
    """Choose M and K with M * K = batch_size: the fewest clips per group whose share (K-1)/(B-1)
    reaches the requested one (a method masks the surplus within-group pairs to meet it exactly),
    keeping at least two groups unless the share is 1."""
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 for in-batch negatives, got {batch_size}")
    if not 0.0 <= within_group_share <= 1.0:
        raise ValueError(f"within_group_share must be in [0, 1], got {within_group_share}")
    divisors = [k for k in range(1, batch_size + 1) if batch_size % k == 0]
    reaching = [k for k in divisors if (k - 1) / (batch_size - 1) >= within_group_share - 1e-9]
    k = reaching[0]
    if k == batch_size and within_group_share < 1.0:
        k = divisors[-2]  # two groups at least: a batch of one group has no other-group negative
    return BatchPlan(batch_size // k, k, (k - 1) / (batch_size - 1))


class HierarchicalBatchSampler(Sampler[list[tuple[int, float]]], EpochPosition):
    """Yields batches as lists of (video index, start seconds): K clips of each of M groups in turn.

    groups: int [N] movie / source id per file; durations: float seconds [N]; has_audio: bool [N]
    (files without audio are left out when given). spec.span is the clip length that must fit;
    with spec.fps the starts are on the frame grid. Groups whose files cannot hold K clips with the
    gap are left out (logged). Resume with state_dict(consumed batches) / load_state_dict.
    """

    def __init__(
        self,
        groups: np.ndarray,
        durations: np.ndarray,
        spec: WindowSpec,
        batch_size: int,
        within_group_share: float,
        *,
        min_gap: float = 0.0,
        has_audio: np.ndarray | None = None,
        repeats: int = 1,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
        drop_last: bool = False,
    ) -> None:
        Sampler.__init__(self)
        EpochPosition.__init__(self, seed)
        self.durations = as_durations(durations)
        n = len(self.durations)
        self.groups = per_file_array(groups, n, "groups", np.int64, None)
        if self.groups is None:
            raise ValueError("groups is required (one group id per file)")
        usable = per_file_array(has_audio, n, "has_audio", bool, np.ones(n, dtype=bool))
        if min_gap < 0 or repeats < 1:
            raise ValueError(f"need min_gap >= 0 and repeats >= 1, got {min_gap}, {repeats}")
        self.spec = spec
        self.min_gap = float(min_gap)
        self.repeats = int(repeats)
        self.plan = plan_batch(batch_size, within_group_share)
        self.num_replicas, self.rank = world(num_replicas, rank)
        self.drop_last = drop_last
        if self.plan.within_group_share < within_group_share - 1e-9:
            log.info("within-group share %.4f requested, at most %.4f reachable with %d groups x %d clips",
                     within_group_share, self.plan.within_group_share,
                     self.plan.groups_per_batch, self.plan.clips_per_group)
        self._build_groups(usable)

    def _build_groups(self, usable: np.ndarray) -> None:
        capacity = window_capacities(self.spec.span, self.durations, self.min_gap, self.spec.fps)
        capacity[~usable] = 0
        k = self.plan.clips_per_group
        ids, inverse = np.unique(self.groups, return_inverse=True)
        # files of each group, in index order, without the ones that hold no clip
        by_group = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
        files = [members[capacity[members] > 0] for members in by_group]
        keep = [g for g in range(len(ids)) if capacity[files[g]].sum() >= k]
        if len(keep) < len(ids):
            log.warning("%d of %d groups cannot hold %d clips of %.3f s with %.3f s gaps: left out",
                        len(ids) - len(keep), len(ids), k, self.spec.span, self.min_gap)
        if len(keep) < self.plan.groups_per_batch:
            raise ValueError(
                f"only {len(keep)} groups can hold {k} clips of {self.spec.span:.3f} s with "
                f"min_gap {self.min_gap:.3f} s; a batch needs {self.plan.groups_per_batch} groups"
            )
        self.group_ids = ids[keep]
        self._group_files = [files[g] for g in keep]
        self._capacity = capacity
        batches_per_shuffle = math.ceil(len(keep) / self.plan.groups_per_batch)
        self.global_batches = self.repeats * batches_per_shuffle
        if self.drop_last and self.global_batches < self.num_replicas:
            raise ValueError(f"drop_last with {self.global_batches} batches and {self.num_replicas} ranks leaves none")

    def __len__(self) -> int:
        """Batches per rank per epoch."""
        if self.drop_last:
            return self.global_batches // self.num_replicas
        return math.ceil(self.global_batches / self.num_replicas)

    def epoch_groups(self, epoch: int | None = None) -> np.ndarray:
        """Positions into `group_ids` of each global batch of the epoch: int64 [global_batches, M]."""
        epoch = self.epoch if epoch is None else epoch
        m, count = self.plan.groups_per_batch, len(self.group_ids)
        per_shuffle = math.ceil(count / m)
        rows = []
        for repeat in range(self.repeats):
            order = rng_for(self.seed, epoch, repeat, SampleStream.EPOCH_ORDER).permutation(count)
            rows.append(np.resize(order, per_shuffle * m).reshape(per_shuffle, m))
        return np.concatenate(rows)

    def rank_batch_positions(self) -> np.ndarray:
        """Global batch positions this rank yields this epoch, in order: int64 [len(self)]."""
        total = len(self) * self.num_replicas
        return np.arange(total)[self.rank :: self.num_replicas]

    def batch(self, position: int, epoch: int | None = None) -> list[tuple[int, float]]:
        """The clips of global batch `position` (padded positions wrap to the epoch's batches)."""
        epoch = self.epoch if epoch is None else epoch
        rows = self.epoch_groups(epoch)
        return self._draw_batch(rows[position % len(rows)], position, epoch)

    def __iter__(self) -> Iterator[list[tuple[int, float]]]:
        rows = self.epoch_groups()
        positions = self.rank_batch_positions()
        epoch = self.epoch

        def make(i: int) -> list[tuple[int, float]]:
            position = int(positions[i])
            return self._draw_batch(rows[position % len(rows)], position, epoch)

        return self._iterate(len(positions), make)

    def _draw_batch(self, row: np.ndarray, position: int, epoch: int) -> list[tuple[int, float]]:
        rng = rng_for(self.seed, epoch, position, SampleStream.BATCH)
        batch: list[tuple[int, float]] = []
        for group in row:
            batch.extend(self._draw_group(int(group), rng))
        return batch

    def _draw_group(self, group: int, rng: np.random.Generator) -> list[tuple[int, float]]:
        files = self._group_files[group]
        room = self._capacity[files].astype(np.float64)
        counts = np.zeros(len(files), dtype=np.int64)
        for _ in range(self.plan.clips_per_group):
            j = 0 if len(files) == 1 else int(rng.choice(len(files), p=room / room.sum()))
            counts[j] += 1
            room[j] -= 1
        clips: list[tuple[int, float]] = []
        for file, count in zip(files, counts):
            if count:
                starts = window_starts(self.spec.span, float(self.durations[file]), int(count), rng,
                                       self.min_gap, self.spec.fps)
                clips.extend((int(file), float(s)) for s in starts)
        return clips

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        return self.position_state(consumed, self._identity())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_position(state, self._identity(), len(self))

    def _identity(self) -> dict[str, Any]:
        return {"global_batches": self.global_batches, "num_replicas": self.num_replicas,
                "clips_per_group": self.plan.clips_per_group, "drop_last": self.drop_last}
