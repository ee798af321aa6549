"""A column of strings packed as one UTF-8 byte blob plus offsets, for worker-friendly manifests.

A list of Python strings shared with DataLoader workers is copied page by page as the workers touch
the strings' reference counts (copy-on-access). Two numpy arrays are two objects however many rows
they hold, so a 100k-row manifest costs the same memory in every worker as in the parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


class PackedStrings:
    """An immutable sequence of str stored as `blob` (uint8 [total bytes]) and `offsets` (int64 [N + 1])."""

    __slots__ = ("blob", "offsets")

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(blob):
            raise ValueError("offsets must start at 0 and end at len(blob)")
        self.blob = blob
        self.offsets = offsets

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> PackedStrings:
        encoded = [s.encode("utf-8") for s in strings]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        blob = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
        return cls(blob, offsets)

    @classmethod
    def filled(cls, value: str, n: int) -> PackedStrings:
        return cls.from_strings([value] * n)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} strings")
        return self.blob[self.offsets[index] : self.offsets[index + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        data = self.blob.tobytes()
        bounds = self.offsets.tolist()
        for start, end in zip(bounds[:-1], bounds[1:]):
            yield data[start:end].decode("utf-8")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedStrings):
            return NotImplemented
        return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.blob, other.blob)

    def __repr__(self) -> str:
        head = ", ".join(repr(s) for s, _ in zip(self, range(3)))
        return f"PackedStrings([{head}{', ...' if len(self) > 3 else ''}], n={len(self)})"

    def to_list(self) -> list[str]:
        return list(self)

    def to_numpy(self) -> np.ndarray:
        """A temporary fixed-width 'U' array, for vectorised comparisons (==, np.unique, np.isin)."""
        return np.array(self.to_list(), dtype=str) if len(self) else np.zeros(0, dtype="U1")

    def take(self, indices: np.ndarray) -> PackedStrings:
        """The strings at `indices` (int array), gathered without a per-row Python loop."""
        indices = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[indices]
        lengths = self.offsets[indices + 1] - starts
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # byte k of the result comes from starts[row] + (k - offsets[row])
        positions = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], lengths)
        return PackedStrings(self.blob[positions], offsets)

    @property
    def nbytes(self) -> int:
        return int(self.blob.nbytes + self.offsets.nbytes)
