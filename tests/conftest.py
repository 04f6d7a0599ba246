"""Shared test fixtures: paths into ../shared and the materialised reference checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UNIT2AV_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "fixtures" / "reference"
SAMPLE = SHARED / "fixtures" / "av2av_sample"
SAMPLE_VIDEO = SAMPLE / "TRajLqEaWhQ_00002.mp4"
SAMPLE_BBOX = SAMPLE / "TRajLqEaWhQ_00002.bbox.pkl"

# Backend calibration writes its cache under the test session's own folder, never the user's.
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="unit2av_test_cache_"))

# Two cores shared by the whole suite: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory) -> Path:
    """A folder holding ``unit2av_ref.pt`` and ``g_00000000`` written by the fixture's materialise.py."""
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([sys.executable, str(REFERENCE / "materialise.py"), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def reference_expected():
    import numpy as np

    return dict(np.load(REFERENCE / "expected.npz"))


@pytest.fixture(scope="session")
def reference_config() -> Path:
    return REFERENCE / "config.json"


def _materialise(tmp_path_factory, fixture: str, name: str) -> Path:
    out = tmp_path_factory.mktemp(fixture)
    subprocess.run(
        [sys.executable, str(SHARED / "fixtures" / fixture / "materialise.py"), str(out)],
        check=True,
        capture_output=True,
    )
    return out / name


@pytest.fixture(scope="session")
def av2unit_ckpt(tmp_path_factory) -> Path:
    """The av2unit fixture's mAV-HuBERT checkpoint (``mavhubert_tiny.pt``), written by its materialise.py."""
    return _materialise(tmp_path_factory, "av2unit", "mavhubert_tiny.pt")


@pytest.fixture(scope="session")
def utut_ckpt(tmp_path_factory) -> Path:
    """The utut fixture's UTUT checkpoint (``utut_tiny.pt``, no dict.txt beside it), written by its materialise.py."""
    return _materialise(tmp_path_factory, "utut", "utut_tiny.pt")
