"""The safe fairseq checkpoint reader on the two fixture checkpoints, old ``args`` files and hostile files."""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import SHARED

from unit2av.errors import Unit2AVError
from unit2av.io.fairseq import load_fairseq_checkpoint

UTUT = SHARED / "fixtures" / "utut"
AV2UNIT = SHARED / "fixtures" / "av2unit"


def _fixture_module(folder, name):
    spec = importlib.util.spec_from_file_location(name, folder / "materialise.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def fixture_ckpts(tmp_path_factory):
    """Both fixture checkpoints, written by the fixtures' own materialise.py."""
    out = tmp_path_factory.mktemp("fairseq_ckpts")
    for folder in (UTUT, AV2UNIT):
        subprocess.run([sys.executable, str(folder / "materialise.py"), str(out)], check=True, capture_output=True)
    return out


def test_utut_checkpoint(fixture_ckpts):
    ck = load_fairseq_checkpoint(fixture_ckpts / "utut_tiny.pt")
    assert ck.keys == (
        "args",
        "cfg",
        "model",
        "criterion",
        "optimizer_history",
        "task_state",
        "extra_state",
        "last_optimizer_state",
    )
    assert isinstance(ck.cfg["model"], dict)  # an argparse.Namespace in the file
    assert ck.cfg["model"]["_name"] == "mbart_large" and ck.cfg["model"]["encoder_layers"] == 2
    assert ck.cfg["task"]["_name"] == "utut_pretraining"
    assert ck.cfg["task"]["langs"].split(",")[:3] == ["en", "es", "fr"]
    assert ck.cfg["generation"]["beam"] == 5
    assert ck.dictionaries == []
    spec = json.loads((UTUT / "weights_spec.json").read_text())
    ref = _fixture_module(UTUT, "utut_materialise").materialise_state_dict(spec)
    assert list(ck.model) == list(ref)
    for k, v in ref.items():
        assert ck.model[k].dtype == v.dtype and torch.equal(ck.model[k], v), k
    # the three tied embeddings share one storage, as fairseq wrote them
    ptrs = {
        ck.model[k].data_ptr()
        for k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "decoder.output_projection.weight")
    }
    assert len(ptrs) == 1


def test_av2unit_checkpoint(fixture_ckpts):
    ck = load_fairseq_checkpoint(fixture_ckpts / "mavhubert_tiny.pt")
    assert ck.cfg["model"]["_name"] == "av_hubert" and ck.cfg["task"]["labels"] == ["unit_even", "unit_odd"]
    assert [len(d) for d in ck.dictionaries] == [1004, 1004]
    assert ck.dictionaries[0][:5] == ["<s>", "<pad>", "</s>", "<unk>", "0"] and ck.dictionaries[1][-1] == "999"
    spec = json.loads((AV2UNIT / "weights_spec.json").read_text())
    ref = _fixture_module(AV2UNIT, "av2unit_materialise").build_state_dict(spec)
    assert list(ck.model) == list(ref)
    for k, v in ref.items():
        assert ck.model[k].dtype == v.dtype and torch.equal(ck.model[k], v), k
    assert ck.model._metadata == ref._metadata  # OrderedDict attribute restored


def test_old_args_checkpoint_and_fp16(tmp_path):
    sd = collections.OrderedDict(w=torch.arange(6, dtype=torch.float16).reshape(2, 3), n=torch.tensor([7]))
    args = argparse.Namespace(
        arch="mbart_large",
        task="utut_pretraining",
        langs="en,es",
        beam=4,
        criterion="cross_entropy",
        best=np.float64(1.5),
    )
    path = tmp_path / "old.pt"
    torch.save({"args": args, "model": sd, "extra_state": {"val_loss": np.float64(0.25)}}, path)
    ck = load_fairseq_checkpoint(path)
    assert ck.cfg["model"]["_name"] == "mbart_large" and ck.cfg["task"]["_name"] == "utut_pretraining"
    assert ck.cfg["task"]["langs"] == "en,es" and ck.cfg["generation"]["beam"] == 4
    assert ck.cfg["criterion"]["_name"] == "cross_entropy" and float(ck.cfg["model"]["best"]) == 1.5
    assert ck.model["w"].dtype == torch.float16 and ck.model["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert ck.model["n"].tolist() == [7]


class _OpenFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


class _System:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("payload, global_name", [(_OpenFile, ".open"), (_System, ".system")])
def test_hostile_checkpoint_refused_before_it_runs(tmp_path, payload, global_name):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"cfg": {"model": payload(str(target))}, "model": {"w": torch.zeros(2)}}, path)
    assert not target.exists()
    with pytest.raises(Unit2AVError) as e:
        load_fairseq_checkpoint(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "refuses global" in msg and global_name in msg
    assert not target.exists()


def test_not_a_zip_and_truncated(tmp_path, fixture_ckpts):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint" * 10)
    data = (fixture_ckpts / "utut_tiny.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    for p in (junk, cut, tmp_path / "missing.pt"):
        with pytest.raises(Unit2AVError) as e:
            load_fairseq_checkpoint(p)
        assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_not_a_fairseq_checkpoint(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"generator": {"w": torch.zeros(1)}}, path)
    with pytest.raises(Unit2AVError, match="no 'model' state dict"):
        load_fairseq_checkpoint(path)
