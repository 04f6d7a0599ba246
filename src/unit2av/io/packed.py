"""Packed state dicts: float tensors stored losslessly and compactly, read without pickle.

Layout: ``MAGIC``, a 4-byte little-endian header length, a JSON header ``{"tensors": [[name,
shape, dtype], ...]}``, then the tensors' little-endian bytes, concatenated, split into byte planes
(all first bytes of every value, then all second bytes, ...) and LZMA-compressed. The byte planes
compress much better than the interleaved floats (the exponent bytes repeat), and nothing is lost:
``read_packed_state(write_packed_state(sd))`` gives the same bits.
"""

from __future__ import annotations

import json
import lzma
import os
import struct

import numpy as np
import torch

from ..errors import fail
from .safe import write_bytes_atomic

MAGIC = b"unit2av-packed-state-1\n"
DTYPES = {"float32": (torch.float32, np.dtype("<f4")), "float16": (torch.float16, np.dtype("<f2"))}


def write_packed_state(state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Write ``state`` (float32 / float16 tensors) packed, atomically.

    Args:
        state: ``{name: tensor}``.
        path: the file to write.
    """
    names, arrays = [], []
    for name, t in state.items():
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in DTYPES:
            raise ValueError(f"{name}: cannot pack dtype {t.dtype}")
        names.append([name, list(t.shape), dtype])
        arrays.append(t.detach().cpu().contiguous().numpy().astype(DTYPES[dtype][1]).reshape(-1).view(np.uint8))
    planes = []
    for width in sorted({DTYPES[d][1].itemsize for _, _, d in names}):
        group = [a for (_, _, d), a in zip(names, arrays) if DTYPES[d][1].itemsize == width]
        raw = np.concatenate(group).reshape(-1, width)  # (values, bytes per value)
        planes.append(np.ascontiguousarray(raw.T).tobytes())  # byte plane after byte plane
    header = json.dumps({"tensors": names}).encode()
    body = lzma.compress(b"".join(planes), preset=9 | lzma.PRESET_EXTREME)
    write_bytes_atomic(path, MAGIC + struct.pack("<I", len(header)) + header + body)


def read_packed_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read what ``write_packed_state`` wrote.

    Raises:
        Unit2AVError: a missing file, or one that is not a packed state dict (bad magic, header or sizes).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise fail(path, f"cannot read packed weights ({e.strerror or e})") from e
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise fail(path, "not a packed state dict")
    (n,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        entries = json.loads(data[start : start + n])["tensors"]
        raw = lzma.decompress(data[start + n :])
        specs = [(str(name), tuple(int(s) for s in shape), DTYPES[dtype]) for name, shape, dtype in entries]
    except (ValueError, KeyError, TypeError, lzma.LZMAError) as e:
        raise fail(path, f"corrupt packed state dict ({type(e).__name__})") from e
    state, offset = {}, 0
    for width in sorted({np_dtype.itemsize for _, _, (_, np_dtype) in specs}):
        group = [(name, shape, np_dtype) for name, shape, (_, np_dtype) in specs if np_dtype.itemsize == width]
        count = sum(int(np.prod(shape)) for _, shape, _ in group)
        if offset + count * width > len(raw):
            raise fail(path, "corrupt packed state dict (too little data)")
        planes = np.frombuffer(raw, np.uint8, count * width, offset).reshape(width, count)
        values = np.ascontiguousarray(planes.T).reshape(-1)  # interleave the planes back: (count * width,)
        offset += count * width
        pos = 0
        for name, shape, np_dtype in group:
            size = int(np.prod(shape)) * width
            state[name] = torch.from_numpy(values[pos : pos + size].view(np_dtype).reshape(shape).copy())
            pos += size
    if offset != len(raw):
        raise fail(path, "corrupt packed state dict (trailing data)")
    return {name: state[name] for name, _, _ in specs}


__all__ = ["read_packed_state", "write_packed_state"]
