"""Damaged media the data and reliability tests share. At the top of tests/, beside the root
conftest.py, so that every test folder can import it."""

from __future__ import annotations

import struct


def without_moov(data: bytes) -> bytes:
    """An MP4 with every top-level box except its index (moov): a recording that never finished."""
    out, offset = b"", 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if kind != b"moov":
            out += data[offset:offset + size]
        offset += size
    return out
