"""FeatureQueue: a ring buffer of past embeddings (one or several modalities) with the id of their video."""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)

EMPTY_ID = -1


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_variable_batch(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate [B_r, ...] from every DDP rank in rank order -> [sum_r B_r, ...].

    all_gather needs equal shapes on every rank, so batches are padded to the largest one and
    trimmed after. Without an initialised process group (or with one rank) it returns the input.
    Every rank must call it (it is a collective).
    """
    if not _distributed():
        return tensor
    world = dist.get_world_size()
    size = torch.tensor([tensor.shape[0]], dtype=torch.int64, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    counts = [int(s.item()) for s in sizes]
    largest = max(counts)
    padded = tensor.new_zeros((largest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded.contiguous())
    return torch.cat([g[:n] for g, n in zip(gathered, counts)])


class FeatureQueue(nn.Module):
    """A first-in-first-out queue of K past keys per modality, aligned with their metadata.

    Slot s holds, for every modality m, ``keys(m)[s]`` [D] beside ``video_id[s]`` (the file the key
    came from, so that a query can leave out keys of its own video). ``enqueue`` takes a batch of any size B (B need not divide K; the write wraps around; when
    B > K only the newest K are kept), gathers it across DDP ranks first when a process group is
    initialised (so every rank holds the same queue), and stores detached copies. The state
    (keys, ids, write pointer, fill count) is made of buffers, so it is saved in checkpoints
    with the module's state_dict and restored by load_state_dict.
    """

    def __init__(self, size: int, dim: int, modalities: Sequence[str] = ("key",)) -> None:
        super().__init__()
        if size <= 0 or dim <= 0:
            raise ValueError(f"queue size and dim must be positive, got size={size} dim={dim}")
        if not modalities or len(set(modalities)) != len(modalities):
            raise ValueError(f"modalities must be distinct names, got {list(modalities)}")
        self.size, self.dim, self.modalities = int(size), int(dim), tuple(modalities)
        for name in self.modalities:
            self.register_buffer(f"keys_{name}", torch.zeros(self.size, self.dim))
        self.register_buffer("video_id", torch.full((self.size,), EMPTY_ID, dtype=torch.int64))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.int64))
        self.register_buffer("num_filled", torch.zeros((), dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.num_filled)

    def keys(self, modality: str | None = None) -> torch.Tensor:
        """The filled keys of one modality (default: the only one): [N, D], a view (no copy)."""
        name = self._modality(modality)
        return getattr(self, f"keys_{name}")[: len(self)]

    def video_ids(self) -> torch.Tensor:
        """The video id of each filled slot: int64 [N], aligned with ``keys``."""
        return self.video_id[: len(self)]

    def _modality(self, modality: str | None) -> str:
        if modality is None:
            if len(self.modalities) != 1:
                raise ValueError(f"name a modality: this queue holds {list(self.modalities)}")
            return self.modalities[0]
        if modality not in self.modalities:
            raise KeyError(f"modality {modality!r} is not in this queue ({list(self.modalities)})")
        return modality

    @torch.no_grad()
    def enqueue(
        self,
        keys: torch.Tensor | Mapping[str, torch.Tensor],
        video_id: torch.Tensor,
        gather: bool = True,
    ) -> None:
        """Add a batch: keys [B, D] (single modality) or {modality: [B, D]}; video_id [B] int. With
        ``gather`` and an initialised process group, every rank must call this with its own batch.
        """
        if isinstance(keys, torch.Tensor):
            keys = {self._modality(None): keys}
        if set(keys) != set(self.modalities):
            raise ValueError(f"enqueue needs keys for {list(self.modalities)}, got {list(keys)}")
        batch = video_id.shape[0]
        for name, value in keys.items():
            if value.shape != (batch, self.dim):
                raise ValueError(
                    f"keys[{name!r}] must be [{batch}, {self.dim}], got {list(value.shape)}"
                )
        device = self.video_id.device
        columns = {
            f"keys_{name}": value.detach().to(device, self.keys_dtype) for name, value in keys.items()
        }
        columns["video_id"] = video_id.to(device, torch.int64)
        if gather:
            columns = {name: gather_variable_batch(value) for name, value in columns.items()}
        self._write(columns)

    @property
    def keys_dtype(self) -> torch.dtype:
        return getattr(self, f"keys_{self.modalities[0]}").dtype

    def _write(self, columns: dict[str, torch.Tensor]) -> None:
        count = columns["video_id"].shape[0]
        if count == 0:
            return
        start = int(self.pointer)
        slots = (start + torch.arange(count, device=self.video_id.device)) % self.size
        keep = slice(max(0, count - self.size), count)  # the newest K when a batch exceeds K
        if count > self.size:
            logger.warning("enqueue of %d entries into a queue of %d keeps the newest %d",
                           count, self.size, self.size)
        for name, value in columns.items():
            getattr(self, name)[slots[keep]] = value[keep]
        self.pointer.fill_((start + count) % self.size)
        self.num_filled.fill_(min(self.size, int(self.num_filled) + count))
