"""Safe loading of user files and atomic writing of outputs.

- ``load_torch``: ``torch.load(weights_only=True)``; never runs code from a file.
- ``load_box_pickle``: a restricted unpickler that accepts only lists, tuples, ``None``,
  numbers and numeric numpy arrays (the face-box format of AV2AV / Wav2Lip users).
- ``atomic_path`` / ``save_torch``: write to a temporary file beside the target, then
  ``os.replace`` it in one step, so a crash never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..errors import Unit2AVError, fail

_UMASK = os.umask(0o022)  # read the process umask once (at import, before any threads) ...
os.umask(_UMASK)  # ... and put it back


def load_torch(path: str | os.PathLike, what: str = "checkpoint"):
    """Load a torch file with ``weights_only=True`` onto the CPU.

    Raises:
        Unit2AVError: the file is missing, unreadable, or holds anything but tensors and
            plain containers (such a file would need to run code to load).
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, f"{what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise fail(path, f"refused to load {what}: it holds objects other than tensors ({first})") from e
    except Exception as e:  # noqa: BLE001 - any decoding error is a bad file
        raise fail(path, f"cannot read {what}: {type(e).__name__}: {e}") from e


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the final destination.
        suffix: suffix for the temporary file (defaults to ``path``'s own, so that tools
            choosing a format by extension, such as PyAV, still see it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files: give the output the usual umask-based mode
            os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_torch(obj, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (temporary file + fsync + rename)."""
    with atomic_path(path, suffix=".tmp") as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path, suffix=".tmp") as tmp:
        tmp.write_bytes(data)


# --------------------------------------------------------------------------- pickles
_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _BoxUnpickler(pickle.Unpickler):
    """Resolves only the numpy functions needed to rebuild arrays; anything else is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if name == "_reconstruct":
            return _checked_reconstruct
        if name == "scalar":
            return _checked_scalar
        if name == "dtype":
            return _checked_dtype
        return np.ndarray

    def persistent_load(self, pid):  # pragma: no cover - nothing legitimate uses it
        raise pickle.UnpicklingError("persistent ids are not allowed")


def _checked_dtype(spec, *args):
    dt = np.dtype(spec)
    if dt.kind not in _NUMERIC_KINDS:
        raise pickle.UnpicklingError(f"non-numeric dtype {dt}")
    return dt


def _checked_reconstruct(cls, shape, typecode):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype=_checked_dtype(typecode))


def _checked_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS:
        raise pickle.UnpicklingError("non-numeric numpy scalar")
    if not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar without raw bytes")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _check_plain(obj, depth: int = 0) -> None:
    if depth > 4:
        raise pickle.UnpicklingError("nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, np.number, np.bool_)):
        return
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _NUMERIC_KINDS:
            raise pickle.UnpicklingError(f"array of dtype {obj.dtype}")
        return
    if isinstance(obj, (list, tuple)):
        for x in obj:
            _check_plain(x, depth + 1)
        return
    raise pickle.UnpicklingError(f"object of type {type(obj).__name__}")


def load_plain_pickle(path: str | os.PathLike, what: str = "box pickle"):
    """Unpickle ``path`` allowing only lists, tuples, None, numbers and numeric arrays.

    A pickle that names any other global (``os.system``, ``builtins.eval`` ...) is refused
    before anything in it runs.

    Raises:
        Unit2AVError: missing file, refused or malformed content.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, f"{what} not found")
    try:
        data = path.read_bytes()
        obj = _BoxUnpickler(io.BytesIO(data)).load()
        _check_plain(obj)
    except (
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        EOFError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
        OverflowError,
    ) as e:
        raise fail(path, f"refused {what}: not a plain list of boxes ({e})") from e
    return obj


def dump_plain_pickle(obj, path: str | os.PathLike) -> None:
    """Pickle a box list atomically (protocol 4, readable by the original tools)."""
    _check_plain(obj)
    write_bytes_atomic(path, pickle.dumps(obj, protocol=4))


__all__ = [
    "Unit2AVError",
    "atomic_path",
    "dump_plain_pickle",
    "load_plain_pickle",
    "load_torch",
    "save_torch",
    "write_bytes_atomic",
]
