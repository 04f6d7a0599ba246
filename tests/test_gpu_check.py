"""scripts/gpu_check.py runs its CPU halves here (the CUDA halves report that there is no CUDA)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from conftest import ROOT


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine run the script itself")
def test_gpu_check_cpu_rows(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--out", str(tmp_path)], capture_output=True, text=True
    )
    table = [line for line in proc.stdout.splitlines() if " | " in line]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {tuple(c.strip() for c in line.split(" | ")[:2]): line.split(" | ")[-1].strip() for line in table[1:]}
    assert rows[("synth", "cpu fp32 (reference)")] == "ok"
    assert rows[("render", "cpu fp32 (reference)")] == "ok"
    assert rows[("train", "train-unit2a 3 steps cpu")] == "ok"
    assert rows[("train", "train-face 3 steps cpu")] == "ok"
    assert rows[("ddp", "torchrun --nproc_per_node 1 train-unit2a (gloo)")] == "ok"
    assert rows[("stages", "cpu (reference)")] == "ok"
    assert all(
        status == "skipped: no CUDA" for (row, check), status in rows.items() if "cuda" in check or row == "bench"
    )
    assert (tmp_path / "cp_unit2a_cpu").is_dir() and any((tmp_path / "cp_unit2a_cpu").glob("g_*"))
