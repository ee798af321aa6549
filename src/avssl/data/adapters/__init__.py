"""Dataset adapters: map a dataset root in its official layout to (path, label, split, group) entries.

`ADAPTERS` maps the name used by `avssl probe --dataset NAME` to the adapter's `entries` function;
`get_adapter(name)` gives a UsageError that lists the known names. The probe then fills in the
media columns of each entry.
"""

from __future__ import annotations

from avssl.data.adapters import esc50, folder, hmdb51, kinetics_sounds, ucf101, vggsound
from avssl.data.adapters.base import Adapter, Entry
from avssl.errors import UsageError

ADAPTERS: dict[str, Adapter] = {
    "ucf101": ucf101.entries,
    "hmdb51": hmdb51.entries,
    "esc50": esc50.entries,
    "kinetics-sounds": kinetics_sounds.entries,
    "vggsound": vggsound.entries,
    "folder": folder.entries,
}


def get_adapter(name: str) -> Adapter:
    """The adapter registered under `name`; a UsageError naming the known ones otherwise."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(ADAPTERS)}") from None


__all__ = ["ADAPTERS", "Adapter", "Entry", "get_adapter"]
