"""The map-style training dataset: a sample key -> the tensors a method's recipe builds from one file.

The dataset owns what every method shares: opening files (one MediaReader per file per sample,
opened in the worker), per-sample random generators from (seed, epoch, index), and the failure
policy. A file that fails to decode is logged with its path and reason and replaced by a
deterministic substitute (the next index of the epoch's order); the failure travels with the batch
(`failures`) so that the main process counts it and writes it to bad_files.csv. Under `strict` the
first failure raises. A quarantine hook names files not to open again (they failed before).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import AbstractSet, Any, Callable, Iterator, NamedTuple, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from avssl.data.cache import CachedReader, ClipCache
from avssl.data.sampling import rng_for
from avssl.data.streams import SampleStream
from avssl.media import MediaError, MediaReader

log = logging.getLogger(__name__)



class SampleKey(NamedTuple):
    """What the sampler yields: a file index, the epoch, optionally a start time chosen by a batch
    sampler (the hierarchical movie sampler decides where its clips lie), and the draw: which of the
    file's samples of the epoch this is (a long file gives several, each with its own windows)."""

    index: int
    epoch: int
    start: float | None = None
    draw: int = 0


class FileTable(NamedTuple):
    """The manifest columns the data path needs, as numpy arrays (no per-row Python objects)."""

    paths: Any  # PackedStrings or a numpy string array: paths[i] -> str
    durations: np.ndarray  # float64 [N] seconds
    has_audio: np.ndarray  # bool [N]
    groups: np.ndarray  # int64 [N] group (source / movie) id
    video_fps: np.ndarray | None = None  # float64 [N] frames per second of each file's video (probe)

    @classmethod
    def from_manifest(cls, manifest: Any) -> FileTable:
        groups = manifest.strings("group")
        # a file without a group is its own source
        group_names = np.where(groups == "", manifest.strings("path"), groups)
        _, group_ids = np.unique(group_names, return_inverse=True)
        return cls(
            paths=manifest.column("path"),
            durations=np.asarray(manifest.column("duration"), dtype=np.float64),
            has_audio=np.asarray(manifest.column("has_audio"), dtype=bool),
            groups=group_ids.astype(np.int64),
            video_fps=np.asarray(manifest.column("video_fps"), dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.durations)


def usable_table(manifest: Any, streams: str = "both") -> tuple[FileTable, int]:
    """(FileTable of the rows that decode and hold `streams` ("both" or "video"), rows left out)."""
    mask = manifest.usable_mask(streams)
    return FileTable.from_manifest(manifest.take(np.flatnonzero(mask))), int((~mask).sum())


class ReaderOpener:
    """path -> an open reader: a MediaReader, or a CachedReader when `cache` holds the file.
    Picklable (it travels to loader workers inside the dataset)."""

    def __init__(self, backend: str | None = None, cache: ClipCache | None = None) -> None:
        self.backend = backend
        self.cache = cache if cache is not None and not cache.empty else None

    def __call__(self, path: str) -> MediaReader | CachedReader:
        if self.cache is not None:
            return self.cache.open(path, backend=self.backend)
        return MediaReader(path, backend=self.backend)


class PaddingCountingReader:
    """A sample's view of an open reader: reads pass through, and what stands in for missing media is
    added to `counts`: the zero samples an audio read puts where the stream has none (before its start,
    past its end) to "audio_padded", the repeated frames a video read puts on grid times outside the
    video stream (before its first frame, past its last) to "video_padded"."""

    def __init__(self, reader: Any, counts: dict[str, int]) -> None:
        self._reader = reader
        self._counts = counts

    @property
    def path(self) -> str:
        return self._reader.path

    @property
    def info(self) -> Any:
        return self._reader.info

    def read_video(self, start: float, duration: float, fps: float | None = None, size: Any = None) -> torch.Tensor:
        video, read = self._reader.read_video(start, duration, fps=fps, size=size, return_info=True)
        self._counts["video_padded"] += read.padded_frames
        return video

    def read_audio(self, start: float, duration: float, sample_rate: int = 16000) -> torch.Tensor:
        audio, read = self._reader.read_audio(start, duration, sample_rate=sample_rate, return_info=True)
        self._counts["audio_padded"] += read.padded_samples
        return audio

    def close(self) -> None:
        self._reader.close()


class SampleContext:
    """What a recipe gets for one sample: readers opened on demand (closed after), the key, rngs, and
    the counts of audio samples and video frames its reads padded (`padding`, reported with the sample).

    A file is opened at most once per sample, whatever number of views and modalities the recipe
    reads from it: recipes call ctx.reader() for each read and get the same open reader.
    """

    def __init__(self, table: FileTable, key: SampleKey, index: int, seed: int, backend: str | None,
                 open_reader: Callable[[str], Any] | None = None):
        self.table = table
        self.key = key
        self.index = index  # may differ from key.index when a substitute is used
        self.seed = seed
        self.backend = backend
        self._open = open_reader or ReaderOpener(backend)
        self._readers: dict[int, Any] = {}
        self.padding = {"audio_padded": 0, "video_padded": 0}

    def reader(self, index: int | None = None) -> PaddingCountingReader:
        """The open reader of file `index` (default: this sample's file)."""
        index = self.index if index is None else int(index)
        if index not in self._readers:
            self._readers[index] = PaddingCountingReader(self._open(str(self.table.paths[index])), self.padding)
        return self._readers[index]

    def rng(self, stream: int = SampleStream.RECIPE) -> np.random.Generator:
        return rng_for(self.seed, self.key.epoch, self.index, stream, self.key.draw)

    def torch_generator(self, stream: int = SampleStream.AUGMENT) -> torch.Generator:
        seed = int(self.rng(stream).integers(0, 2**63 - 1))
        return torch.Generator().manual_seed(seed)

    def close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()


class Recipe(Protocol):
    """A method's data recipe: one sample's tensors from a context. Must be picklable (workers)."""

    def __call__(self, ctx: SampleContext) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


class SampleFailedError(RuntimeError):
    """A sample could not be built from its file nor from any substitute (or strict mode)."""


class ClipDataset(Dataset):
    """key (SampleKey or int) -> dict of tensors from `recipe`, plus `failures` (list of Failure),
    `audio_padded` (int64: audio samples of the sample that are zeros where the stream has none) and
    `video_padded` (int64: frames of the sample that repeat a frame where the video has none).

    substitute(index, steps, epoch) -> the file to try instead (e.g. the epoch order's successor);
    at most `max_attempts` files are tried per sample. `quarantine(epoch)` -> the files a sample of
    that epoch must not open (files that failed before): they are passed over for their substitute
    as a failing file would be, without opening them. `__getitems__` (a batch) also passes over, for
    the rest of the batch, a file that failed in it. `cache`: pre-decoded audio / frames to read
    instead of decoding (avssl.data.cache); the samples are the same. `open_reader` (path -> reader)
    replaces how files are opened altogether (benchmarks record the windows read through it).
    """

    def __init__(
        self,
        table: FileTable,
        recipe: Recipe,
        *,
        seed: int = 0,
        backend: str | None = None,
        substitute: Callable[[int, int, int], int] | None = None,
        strict: bool = False,
        max_attempts: int = 8,
        cache: ClipCache | None = None,
        quarantine: Callable[[int], AbstractSet[int]] | None = None,
    ) -> None:
        self.table = table
        self.recipe = recipe
        self.seed = int(seed)
        self.backend = backend
        self.substitute = substitute or (lambda index, steps, epoch: (index + steps) % len(table))
        self.strict = strict
        self.max_attempts = max_attempts
        self.quarantine = quarantine
        self.open_reader: Callable[[str], Any] = ReaderOpener(backend, cache)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key: SampleKey | int | tuple) -> dict[str, Any]:
        with one_thread():
            return self._build(as_key(key), set())

    def __getitems__(self, keys: list[SampleKey | int | tuple]) -> list[dict[str, Any]]:
        failed: set[int] = set()  # files that failed in this batch
        with one_thread():
            return [self._build(as_key(key), failed) for key in keys]

    def _build(self, key: SampleKey, failed: set[int]) -> dict[str, Any]:
        failures: list[Failure] = []
        skip = self.quarantine(key.epoch) if self.quarantine is not None else frozenset()
        index, steps, attempts = key.index, 0, 0
        while attempts < self.max_attempts:
            if index in skip or index in failed:
                steps += 1
                if steps > len(self.table):
                    raise SampleFailedError(f"sample {key.index}: every file of the table is quarantined "
                                            "(failed to decode earlier in the run)")
                index = self.substitute(key.index, steps, key.epoch)
                continue
            attempts += 1
            ctx = SampleContext(self.table, key if steps == 0 else key._replace(start=None),
                                index, self.seed, self.backend, self.open_reader)
            try:
                sample = self.recipe(ctx)
            except MediaError as err:
                failures.append(Failure(err.path, err.reason))
                if self.strict:
                    raise SampleFailedError(f"{err.path}: {err.reason} (strict mode stops on the first bad file)") from err
                log.warning("skipping %s: %s", err.path, err.reason)
                failed.add(index)
                steps += 1
                index = self.substitute(key.index, steps, key.epoch)
                continue
            finally:
                ctx.close()
            sample["failures"] = failures
            # zeros that stand in for missing audio and repeated frames that stand in for missing video
            # are reported: a count per sample, logged in training
            for name in ("audio_padded", "video_padded"):
                sample[name] = torch.tensor(ctx.padding[name], dtype=torch.int64)
            return sample
        raise SampleFailedError(
            f"{self.max_attempts} files in a row failed for sample {key.index}: "
            + "; ".join(f"{f.path}: {f.reason}" for f in failures)
        )


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run a sample's tensor ops on one intra-op thread. A sample's ops are small; in the main
    process (num_workers=0) torch's thread pool woke for each and, with the cores busy decoding,
    that cost 10-20 ms per op (a 16-frame crop took 22 ms instead of 1). Switching is ~1 us."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def as_key(key: SampleKey | int | tuple) -> SampleKey:
    if isinstance(key, SampleKey):
        return key
    if isinstance(key, (int, np.integer)):
        return SampleKey(int(key), 0)
    return SampleKey(*key)


def collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the tensors of a batch; concatenate the samples' failure lists."""
    failures = [f for s in samples for f in s["failures"]]
    with one_thread():  # a copy of a few MB: the thread pool's wake-up cost more than it saved
        batch = default_collate([{k: v for k, v in s.items() if k != "failures"} for s in samples])
    batch["failures"] = failures
    return batch
