"""Training data for Lightning: sample keys that carry the epoch, a DataLoader whose position is saved
in the checkpoint (Lightning restores it before iterating), and the LightningDataModule that builds it."""

from __future__ import annotations

import logging
from typing import AbstractSet, Any, Callable, Iterator, Optional

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avssl.config.schema import Config
from avssl.data.cache import cache_for_clip
from avssl.data.clip_io import decode_short_side
from avssl.data.dataset import (
    ClipDataset,
    FileTable,
    SampleKey,
    as_key,
    collate_samples,
)
from avssl.errors import UsageError
from avssl.train.signals import ignore_stop_signals_in_worker

log = logging.getLogger(__name__)


class KeyedSampler(Sampler):
    """Wraps a method's sampler so that every key carries the epoch: SampleKey(index, epoch[, start, draw]).

    `is_batch`: the inner sampler yields whole batches (lists of (index, start)) and this wrapper is
    the DataLoader's batch_sampler; otherwise it yields single keys, with the sample's draw when the
    inner sampler has `draws()` (a file that gives several samples per epoch). The inner sampler owns
    the epoch and the resume position (set_epoch / state_dict(consumed) / load_state_dict).
    """

    def __init__(self, inner: Any, is_batch: bool) -> None:
        self.inner = inner
        self.is_batch = is_batch

    @property
    def sampler(self) -> "KeyedSampler":
        # Lightning calls set_epoch on `loader.batch_sampler.sampler`; a batch sampler is its own
        return self

    @property
    def epoch(self) -> int:
        return int(self.inner.epoch)

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[Any]:
        # read the epoch lazily: the first item is drawn after the trainer's set_epoch
        epoch = None
        draws = getattr(self.inner, "draws", None)
        for item in self.inner if self.is_batch or draws is None else draws():
            if epoch is None:
                epoch = self.epoch
            if self.is_batch:
                yield [SampleKey(int(i), epoch, float(start)) for i, start in item]
            elif draws is None:
                yield SampleKey(int(item), epoch)
            else:
                yield SampleKey(int(item[0]), epoch, None, int(item[1]))


class KeyedDataset(Dataset):
    """ClipDataset plus the sample's key in the batch (`key_index`, `key_epoch`, `key_draw`: int64 [B]),
    so the trainer can record which samples each rank consumed."""

    def __init__(self, dataset: ClipDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[Any]) -> list[dict[str, Any]]:
        # the DataLoader asks for a whole batch at once: the dataset then skips, for the rest of the
        # batch, a file that failed in it
        keys = [as_key(key) for key in keys]
        samples = self.dataset.__getitems__(keys)
        for key, sample in zip(keys, samples):
            sample["key_index"] = torch.tensor(key.index, dtype=torch.int64)
            sample["key_epoch"] = torch.tensor(key.epoch, dtype=torch.int64)
            sample["key_draw"] = torch.tensor(key.draw, dtype=torch.int64)
        return samples


class ResumableLoader(DataLoader):
    """A DataLoader whose state_dict is the sampler's position after the batches the trainer consumed.

    Index samplers are batched with drop_last: the few files of an epoch that do not fill a batch are
    left to the next epoch's order (which is a new permutation).

    Workers and Lightning's fetcher run ahead of training, so the sampler itself cannot know what
    was used: `consumed_batches` is advanced by the trainer (a callback's on_train_batch_end) and
    turned into sampler items here. Lightning saves `state_dict()` in every checkpoint and calls
    `load_state_dict` before iterating on resume.
    """

    def __init__(self, dataset: Dataset, keyed: KeyedSampler, batch_size: int, data_changed: bool = False,
                 **kwargs: Any) -> None:
        if keyed.is_batch:
            super().__init__(dataset, batch_sampler=keyed, **kwargs)
        else:
            # a short last batch would give contrastive losses few negatives and BatchNorm a batch of 1
            if len(keyed) < batch_size:
                raise UsageError(too_few_samples(keyed.inner, batch_size))
            super().__init__(dataset, sampler=keyed, batch_size=batch_size, drop_last=True, **kwargs)
        self.keyed = keyed
        self.data_changed = data_changed
        self.per_batch = 1 if keyed.is_batch else batch_size
        self.consumed_batches = 0
        self._consumed_epoch = keyed.epoch

    def batch_consumed(self) -> None:
        """One more batch of the current epoch was trained on."""
        if self.keyed.epoch != self._consumed_epoch:
            self._consumed_epoch = self.keyed.epoch
            self.consumed_batches = 0
        self.consumed_batches += 1

    def state_dict(self) -> dict[str, Any]:
        if self.keyed.epoch != self._consumed_epoch:
            consumed = 0  # a new epoch has started and nothing of it was trained on yet
        else:
            consumed = min(self.consumed_batches * self.per_batch, len(self) * self.per_batch)
        return {"sampler": self.keyed.inner.state_dict(consumed), "consumed_batches": self.consumed_batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.data_changed:
            state = self._on_new_table(state)
        try:
            self.keyed.inner.load_state_dict(state["sampler"])
        except ValueError as err:
            raise UsageError(f"the run's data position does not fit this run: {err}. The training table and the "
                             "number of processes must stay the same on resume") from None
        self.consumed_batches = int(state["consumed_batches"])
        if state["sampler"]["start_index"] >= len(self) * self.per_batch:
            # saved at the end of an epoch: Lightning creates the iterator (and workers start
            # drawing keys) before it moves to the next epoch, so move there now
            self.keyed.set_epoch(self.keyed.epoch + 1)
            self.consumed_batches = 0
        self._consumed_epoch = self.keyed.epoch
        log.info("data position restored: epoch %d, %d batches of it already used",
                 self.keyed.epoch, self.consumed_batches)


    def _on_new_table(self, state: dict[str, Any]) -> dict[str, Any]:
        """The saved position moved onto another table (--allow-data-change): the same epoch and count
        of batches done, in the new table's order (at most a whole epoch of it)."""
        batches = min(int(state["consumed_batches"]), len(self))
        sampler = {**self.keyed.inner.state_dict(batches * self.per_batch), "epoch": int(state["sampler"]["epoch"])}
        return {"sampler": sampler, "consumed_batches": batches}


def too_few_samples(sampler: Any, batch_size: int) -> str:
    """The refusal of a batch larger than what each process gets per epoch from an index `sampler`
    (the epoch's samples, and how many usable files give them)."""
    per_process = len(sampler)
    files = getattr(sampler, "length", per_process)
    samples = getattr(sampler, "samples", files)
    replicas = getattr(sampler, "num_replicas", 1)
    split = f", {per_process} per process over {replicas} processes" if replicas > 1 else ""
    return (f"config key 'data.batch_size': {batch_size} is more than the {files} usable files give per "
            f"epoch: {samples} samples{split} (data.samples_per_file: a file gives one per "
            "data.samples_per_file.seconds of its duration, at least 1, at most data.samples_per_file.max); "
            "lower data.batch_size or data.samples_per_file.seconds, or add files")


def collate_for_training(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """collate_samples, with each failure as a plain (path, reason) tuple: Lightning moves batches
    to the device with apply_to_collection, which refuses frozen dataclasses."""
    batch = collate_samples(samples)
    batch["failures"] = [(f.path, f.reason) for f in batch["failures"]]
    return batch


def _worker_init(worker_id: int) -> None:
    # several workers each running multi-threaded torch ops oversubscribe the cores
    torch.set_num_threads(1)
    ignore_stop_signals_in_worker()


class PretrainDataModule(L.LightningDataModule):
    """Builds the resumable train loader once the trainer knows this process's rank."""

    def __init__(self, method: Any, table: FileTable, config: Config, strict: bool = False,
                 quarantine: Optional[Callable[[int], AbstractSet[int]]] = None, data_changed: bool = False) -> None:
        super().__init__()
        self.method = method
        self.table = table
        self.config = config
        self.strict = strict
        self.quarantine = quarantine
        self.data_changed = data_changed
        self.loader: Optional[ResumableLoader] = None

    def train_dataloader(self) -> ResumableLoader:
        if self.loader is not None:
            return self.loader
        rank = self.trainer.global_rank if self.trainer is not None else 0
        world = self.trainer.world_size if self.trainer is not None else 1
        self.loader = build_loader(self.method, self.table, self.config, rank, world, self.strict,
                                   quarantine=self.quarantine, data_changed=self.data_changed)
        return self.loader


def build_loader(method: Any, table: FileTable, config: Config, rank: int, world_size: int,
                 strict: bool = False, quarantine: Optional[Callable[[int], AbstractSet[int]]] = None,
                 data_changed: bool = False) -> ResumableLoader:
    """The train loader of `method` for one rank: its recipe's keyed sampler, ClipDataset with the failure
    policy and `quarantine` (epoch -> files not to open); `data_changed`: the position saved in the
    checkpoint is of another table (see ResumableLoader._on_new_table)."""
    recipe = method.recipe(table)
    sampler, is_batch = recipe.train_sampler(rank=rank, world_size=world_size)
    if is_batch:
        log.info("%s plans the epoch's batches and their clips itself: data.samples_per_file does not apply",
                 type(sampler).__name__)
    d = config.data
    cache = None
    if d.cache_dir:
        cache = cache_for_clip(d.cache_dir, d.clip.sample_rate, d.clip.fps, decode_short_side(d.video_augment.size))
    dataset = ClipDataset(table, recipe, seed=config.seed, backend=d.backend,
                          substitute=getattr(sampler, "successor", None), strict=strict, cache=cache,
                          quarantine=quarantine)
    workers = {}
    if d.num_workers > 0:
        workers = {"persistent_workers": d.persistent_workers, "prefetch_factor": d.prefetch_factor,
                   "worker_init_fn": _worker_init}
    return ResumableLoader(KeyedDataset(dataset), KeyedSampler(sampler, is_batch), d.batch_size, data_changed,
                           num_workers=d.num_workers, pin_memory=d.pin_memory and torch.cuda.is_available(),
                           collate_fn=collate_for_training, **workers)
