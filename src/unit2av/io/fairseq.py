"""Read fairseq checkpoints safely, without fairseq or omegaconf.

A fairseq checkpoint is a torch zip container (``<top>/data.pkl`` plus one file per
storage under ``<top>/data/``) whose pickle holds plain containers, tensors, numpy scalars,
an ``argparse.Namespace`` (legacy-args models and old checkpoints) and, for HuBERT-style
tasks, fairseq ``Dictionary`` objects. ``torch.load(weights_only=True)`` refuses such files
and unrestricted unpickling would run whatever the file asks for, so this module unpickles
them itself, resolving only these globals:

- ``collections.OrderedDict`` (state dicts; its ``_metadata`` attribute is kept),
- ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` / ``LongStorage`` /
  ``HalfStorage`` (storages come from the zip's own files, by key),
- ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar`` (numeric only),
  ``numpy.dtype`` (numeric only) and ``_codecs.encode`` (latin-1 only),
- ``argparse.Namespace`` and ``fairseq.data.dictionary.Dictionary``, both rebuilt as inert
  attribute holders (no code of theirs runs).

Any other global is refused with a one-line ``Unit2AVError`` naming the file and the
global, when the unpickler meets its name -- before anything built from it can run.
"""

from __future__ import annotations

import _codecs
import collections
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import fail
from .safe import _checked_dtype, _checked_scalar

_STORAGE_DTYPES = {"FloatStorage": torch.float32, "LongStorage": torch.int64, "HalfStorage": torch.float16}
_DATA_PKL = re.compile(r"^([^/]+)/data\.pkl$")


class FairseqNamespace:
    """Inert stand-in for ``argparse.Namespace``: only an attribute dictionary."""

    def to_dict(self) -> dict:
        return dict(vars(self))


class FairseqDictionary:
    """Inert stand-in for ``fairseq.data.dictionary.Dictionary`` (its state only).

    After unpickling it holds ``symbols``, ``count``, ``indices``, ``bos_index``,
    ``pad_index``, ``eos_index``, ``unk_index``, ``nspecial`` and the special words.
    """


class _Refused(Exception):
    """A global outside the allow-list (carries its dotted name)."""


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    """Safe ``torch._utils._rebuild_tensor_v2``: a view of a storage read from the zip."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage")
    if backward_hooks:
        raise pickle.UnpicklingError("tensor with backward hooks")
    t = torch.empty(0, dtype=storage.dtype)
    t.set_(storage.tensor.untyped_storage(), int(storage_offset), tuple(size), tuple(stride))
    return t


@dataclass
class _Storage:
    dtype: torch.dtype
    tensor: torch.Tensor  # 1-D, the whole storage


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str) or encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin-1 strings")
    return _codecs.encode(obj, "latin1", errors)


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("numpy.core.multiarray", "scalar"): _checked_scalar,
    ("numpy._core.multiarray", "scalar"): _checked_scalar,
    ("numpy", "dtype"): _checked_dtype,
    ("_codecs", "encode"): _codecs_encode,
    ("argparse", "Namespace"): FairseqNamespace,
    ("fairseq.data.dictionary", "Dictionary"): FairseqDictionary,
    **{("torch", name): name for name in _STORAGE_DTYPES},
}


class _FairseqUnpickler(pickle.Unpickler):
    """Resolves only the allow-listed globals; storages are read from the zip by key."""

    def __init__(self, file, zf: zipfile.ZipFile, top: str):
        super().__init__(file)
        self._zf, self._top, self._storages = zf, top, {}

    def find_class(self, module: str, name: str):
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise _Refused(f"{module}.{name}")
        return obj

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] in _STORAGE_DTYPES):
            raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:60]}")
        _, kind, key, _location, numel = pid
        key = str(key)
        if key not in self._storages:
            dtype = _STORAGE_DTYPES[kind]
            try:
                raw = bytearray(self._zf.read(f"{self._top}/data/{key}"))
            except KeyError:
                raise pickle.UnpicklingError(f"storage {key} missing from the archive") from None
            itemsize = torch.empty(0, dtype=dtype).element_size()
            if len(raw) < int(numel) * itemsize:
                raise pickle.UnpicklingError(f"storage {key} is truncated")
            flat = torch.frombuffer(raw, dtype=dtype, count=int(numel)) if numel else torch.empty(0, dtype=dtype)
            self._storages[key] = _Storage(dtype, flat)
        return self._storages[key]


def _plain(obj):
    """Namespaces -> dicts, recursively (lists/tuples/dicts walked)."""
    if isinstance(obj, FairseqNamespace):
        obj = obj.to_dict()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    return obj


# fairseq's config groups; an old ``args`` Namespace is spread over them the way fairseq's
# convert_namespace_to_omegaconf does for legacy models: every group sees every argument.
_GROUPS = (
    "common",
    "dataset",
    "distributed_training",
    "optimization",
    "checkpoint",
    "generation",
    "model",
    "task",
    "criterion",
    "optimizer",
    "lr_scheduler",
)
_GROUP_NAME = {
    "model": "arch",
    "task": "task",
    "criterion": "criterion",
    "optimizer": "optimizer",
    "lr_scheduler": "lr_scheduler",
}


def args_to_cfg(args: dict) -> dict:
    """Turn an old checkpoint's ``args`` (as a dict) into ``cfg``'s shape of groups.

    Each group gets all the arguments; ``model``/``task``/... also get ``_name`` from
    ``arch``/``task``/....
    """
    cfg = {}
    for group in _GROUPS:
        g = dict(args)
        if group in _GROUP_NAME and _GROUP_NAME[group] in args:
            g["_name"] = args[_GROUP_NAME[group]]
        cfg[group] = g
    return cfg


@dataclass
class FairseqCheckpoint:
    """What a fairseq checkpoint holds, in plain Python.

    Attributes:
        path: the file.
        cfg: the config as nested dicts (``cfg["model"]``, ``cfg["task"]``, ...); for old
            checkpoints built from ``args`` by ``args_to_cfg``.
        model: the state dict (tensors as stored: fp16 checkpoints stay fp16).
        dictionaries: ``task_state["dictionaries"]`` as lists of symbols (empty if none).
        keys: the top-level keys, in file order.
    """

    path: Path
    cfg: dict
    model: dict[str, torch.Tensor]
    dictionaries: list[list[str]] = field(default_factory=list)
    keys: tuple[str, ...] = ()


def _open_zip(path: Path) -> tuple[zipfile.ZipFile, str]:
    if not zipfile.is_zipfile(path):
        raise fail(
            path,
            "not a torch zip checkpoint (truncated, or not a checkpoint at all; checkpoints "
            "saved by torch < 1.6 in the legacy format are not supported)",
        )
    try:
        zf = zipfile.ZipFile(path)
        tops = [m.group(1) for m in map(_DATA_PKL.match, zf.namelist()) if m]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise fail(path, f"unreadable zip container: {e}") from e
    if len(tops) != 1:
        zf.close()
        raise fail(path, f"not a torch checkpoint: expected one <folder>/data.pkl in the zip, found {len(tops)}")
    top = tops[0]
    try:
        order = zf.read(f"{top}/byteorder").decode().strip() if f"{top}/byteorder" in zf.namelist() else "little"
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise fail(path, f"unreadable zip container: {e}") from e
    if order != "little":
        zf.close()
        raise fail(path, f"checkpoint written on a {order}-endian machine is not supported")
    return zf, top


def unpickle_fairseq(path: str | os.PathLike, what: str = "fairseq checkpoint"):
    """Unpickle a torch zip container with the fairseq allow-list; returns the raw object.

    Raises:
        Unit2AVError: missing file, not a zip, a refused global, or a malformed/truncated file.
    """
    path = Path(path)
    if not path.is_file():
        raise fail(path, f"{what} not found")
    zf, top = _open_zip(path)
    try:
        with zf, zf.open(f"{top}/data.pkl") as f:
            return _FairseqUnpickler(f, zf, top).load()
    except _Refused as e:
        raise fail(
            path,
            f"refuses global {e} in the {what}: only tensors, OrderedDict, numpy scalars, "
            "argparse.Namespace and fairseq Dictionary may appear (the file may be malicious)",
        ) from None
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        RuntimeError,
        OSError,
        MemoryError,
        OverflowError,
    ) as e:
        raise fail(path, f"cannot read {what}: {type(e).__name__}: {e}") from e


def _dictionary_symbols(d, path) -> list[str]:
    symbols = getattr(d, "symbols", None) if isinstance(d, FairseqDictionary) else None
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise fail(path, "task_state dictionary without a list of symbols")
    return list(symbols)


def load_fairseq_checkpoint(path: str | os.PathLike, what: str = "fairseq checkpoint") -> FairseqCheckpoint:
    """Read a fairseq checkpoint's config, state dict and label dictionaries, safely.

    Args:
        path: the ``.pt`` file (torch zip container, as fairseq's trainer writes it).
        what: how messages name the file ("UTUT checkpoint", ...).

    Raises:
        Unit2AVError: refused/malformed file, or it lacks ``model`` or both ``cfg`` and ``args``.
    """
    path = Path(path)
    obj = unpickle_fairseq(path, what)
    if not isinstance(obj, dict):
        raise fail(path, f"not a fairseq checkpoint: top level is a {type(obj).__name__}, not a dict")
    model = obj.get("model")
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise fail(path, "not a fairseq checkpoint: no 'model' state dict of tensors")
    cfg = _plain(obj.get("cfg"))
    if not isinstance(cfg, dict):
        args = _plain(obj.get("args"))
        if not isinstance(args, dict):
            raise fail(path, "not a fairseq checkpoint: neither 'cfg' nor 'args' holds a config")
        cfg = args_to_cfg(args)
    task_state = obj.get("task_state") or {}
    dicts = task_state.get("dictionaries", []) if isinstance(task_state, dict) else []
    dictionaries = [_dictionary_symbols(d, path) for d in (dicts or [])]
    return FairseqCheckpoint(
        path=path, cfg=cfg, model=model, dictionaries=dictionaries, keys=tuple(str(k) for k in obj)
    )


__all__ = [
    "FairseqCheckpoint",
    "FairseqDictionary",
    "FairseqNamespace",
    "args_to_cfg",
    "load_fairseq_checkpoint",
    "unpickle_fairseq",
]
