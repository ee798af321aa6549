"""Epoch position bookkeeping shared by the samplers: set_epoch, state_dict, mid-epoch resume."""

from __future__ import annotations

from typing import Any, Iterator

import torch.distributed as dist


def world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank): the given values, else torch.distributed's, else (1, 0)."""
    initialized = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if initialized else 1
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}")
    return int(num_replicas), int(rank)


class EpochPosition:
    """Which epoch a sampler is in and how many of this rank's items were consumed in it.

    `set_epoch(e)` with a new epoch starts it from item 0; with the epoch already set (as after
    `load_state_dict`, when the trainer calls set_epoch again for the resumed epoch) it keeps the
    restored position. The next iteration yields from that position; later iterations of the same
    epoch start from 0 again.
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self.epoch = 0
        self._start = 0
        self._position = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self._start = 0
            self._position = 0

    @property
    def start_index(self) -> int:
        """Items of this rank's epoch that the next iteration skips."""
        return self._start

    def _iterate(self, items_per_rank: int, item) -> Iterator[Any]:
        start, self._start = self._start, 0
        self._position = start
        for position in range(start, items_per_rank):
            self._position = position + 1
            yield item(position)

    def position_state(self, consumed: int | None, extra: dict[str, Any]) -> dict[str, Any]:
        """State to save. `consumed`: items of this rank's epoch the training step has used.

        Without it the count of items yielded so far is saved, which is exact only when nothing
        fetches ahead (DataLoader with num_workers=0); with workers, pass the trainer's count
        (batches done times batch size for an index sampler, batches done for a batch sampler).
        """
        position = self._position if consumed is None else int(consumed)
        return {"seed": self.seed, "epoch": self.epoch, "start_index": position, **extra}

    def load_position(self, state: dict[str, Any], extra: dict[str, Any], items_per_rank: int) -> None:
        for key, value in {"seed": self.seed, **extra}.items():
            if state.get(key) != value:
                raise ValueError(
                    f"sampler state has {key}={state.get(key)!r} but this sampler has {value!r}: "
                    f"a mid-epoch resume needs the same {key}"
                )
        start = int(state["start_index"])
        if not 0 <= start <= items_per_rank:
            raise ValueError(f"sampler state start_index={start} outside [0, {items_per_rank}]")
        self.epoch = int(state["epoch"])
        self._start = start
        self._position = start
