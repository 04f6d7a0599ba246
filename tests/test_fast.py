"""Fast inference paths compute the same function as the eager models (max |Δ| <= 1e-4).

Small configs with fresh random weights (weight norm still applied, BatchNorm statistics drawn at
random so folding them matters), plus the fixture's reference numbers through the fast paths.
Both folded layouts are checked by name (``"torch"``: channels-last, ``"folded"``: the eager
layout); ``"auto"``'s choice between them is tested in test_calibrate.py.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from conftest import REFERENCE

from unit2av.face.checkpoint import load_face_renderer
from unit2av.face.model import FaceRenderer
from unit2av.runtime import fast
from unit2av.runtime.fast import fast_face_renderer, fast_vocoder
from unit2av.runtime.fold import FastFaceRenderer, FastGenerator, FastVocoder
from unit2av.runtime.onnx import onnxruntime_available
from unit2av.vocoder.checkpoint import load_vocoder
from unit2av.vocoder.config import config_from_dict
from unit2av.vocoder.model import UnitVocoder

TOL = 1e-4  # the equivalence bound
SMALL_WIDTH = 64  # face renderer bottleneck width for the random-weight tests (a ~0.6 M-parameter model)
needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed (extra 'onnx')")
FOLDED = ("torch", "folded")  # the folded paths: channels-last and the eager layout


@pytest.fixture(autouse=True)
def no_user_cache(tmp_path, monkeypatch):
    """ "auto" here calibrates into a temporary cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def vocoder() -> UnitVocoder:
    """The reference config (64 channels, 3 parallel blocks) with seeded random weights, weight norm on."""
    cfg = config_from_dict(json.loads((REFERENCE / "config.json").read_text()), "reference config")
    torch.manual_seed(0)
    return UnitVocoder.from_config(cfg).eval()


@pytest.fixture(scope="module")
def face() -> FaceRenderer:
    torch.manual_seed(1)
    model = FaceRenderer(width=SMALL_WIDTH)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # fresh BatchNorm is the identity: make folding count
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
    return model.eval()


def _speech_inputs(seed: int, batch: int, frames: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 1000, (batch, frames), generator=g), torch.randn(batch, 1, 256, generator=g)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.parametrize("backend", FOLDED)
def test_fast_vocoder_matches_eager(vocoder, backend):
    fast_model = fast_vocoder(vocoder, backend)
    assert isinstance(fast_model, FastVocoder) and isinstance(fast_model.body, FastGenerator)
    assert fast_model.body.channels_last == (backend == "torch")
    for frames in (1, 41):
        code, spkr = _speech_inputs(frames, 2, frames)
        with torch.inference_mode():
            want, _ = vocoder(code=code, spkr=spkr)
            got, _ = fast_model(code=code, spkr=spkr)
        assert got.shape == want.shape == (2, 1, frames * 320)
        assert _max_diff(got, want) <= TOL
        assert float(want.abs().max()) > 1e-3  # a real signal, not two silent outputs


def test_fast_vocoder_duration_prediction_and_original_untouched(vocoder):
    before = {k: v.clone() for k, v in vocoder.state_dict().items()}
    fast_model = fast_vocoder(vocoder, "torch")
    code, spkr = _speech_inputs(5, 1, 30)
    code = torch.unique_consecutive(code).view(1, -1)
    with torch.inference_mode():
        want, want_codes = vocoder(code=code, spkr=spkr, dur_prediction=True)
        got, got_codes = fast_model(code=code, spkr=spkr, dur_prediction=True)
    assert torch.equal(got_codes, want_codes)
    assert _max_diff(got, want) <= TOL
    # building the fast path neither folds nor changes the eager model's weight norm
    assert any(k.endswith("original0") for k in vocoder.state_dict())
    assert all(torch.equal(before[k], v) for k, v in vocoder.state_dict().items())
    assert fast_model.config is vocoder.config and fast_model.dict is vocoder.dict


@pytest.mark.parametrize("backend", FOLDED)
def test_fast_vocoder_reproduces_reference_numbers(reference_dir, reference_expected, backend):
    model = fast_vocoder(load_vocoder(reference_dir / "g_00000000", REFERENCE / "config.json"), backend)
    with torch.inference_mode():
        wav, _ = model(
            code=torch.from_numpy(reference_expected["plain__code"]).long(),
            spkr=torch.from_numpy(reference_expected["plain__spkr"]).float(),
        )
    assert np.abs(wav.numpy() - reference_expected["plain__wav"]).max() <= TOL


@pytest.mark.parametrize(("windows", "backend"), [(1, "torch"), (3, "torch"), (3, "folded")])
def test_fast_face_renderer_matches_eager(face, windows, backend):
    fast_model = fast_face_renderer(face, backend)
    assert isinstance(fast_model, FastFaceRenderer) and fast_model.channels_last == (backend == "torch")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast_model.modules())
    g = torch.Generator().manual_seed(windows)
    units = torch.randint(0, 1000, (windows, 20), generator=g)
    faces = torch.rand(windows * 10, 6, 96, 96, generator=g)
    with torch.inference_mode():
        want, got = face(units, faces), fast_model(units, faces)
        got5 = fast_model(units, faces.view(windows, 10, 6, 96, 96).permute(0, 2, 1, 3, 4))  # (W, 6, 10, H, W)
    assert got.shape == want.shape == (windows * 10, 3, 96, 96)
    assert got.is_contiguous()
    assert _max_diff(got, want) <= TOL and _max_diff(got5, want) <= TOL
    assert float(want.std()) > 1e-3
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in face.modules())  # the original is kept


@pytest.mark.parametrize("backend", FOLDED)
def test_fast_face_renderer_reproduces_reference_numbers(reference_dir, reference_expected, backend):
    model = fast_face_renderer(load_face_renderer(reference_dir / "unit2av_ref.pt"), backend)
    x = torch.from_numpy(reference_expected["face__crops_bgr"]).float().div(255).permute(0, 3, 1, 2)
    masked = x.clone()
    masked[:, :, 48:] = 0  # the lower half hidden, per the fixture README
    with torch.inference_mode():
        out = model(torch.from_numpy(reference_expected["face__units"]).long(), torch.cat([masked, x], dim=1))
    assert np.abs(out.numpy() - reference_expected["face__out"]).max() <= TOL


def test_eager_backend_is_the_model_and_unknown_backend_is_refused(vocoder, face):
    assert fast_vocoder(vocoder, "eager") is vocoder
    assert fast_face_renderer(face, "eager") is face
    with pytest.raises(ValueError, match="unknown backend"):
        fast_vocoder(vocoder, "tensorrt")


def test_onnx_backend_falls_back_without_onnxruntime(vocoder, face, monkeypatch, caplog):
    monkeypatch.setattr("unit2av.runtime.onnx.onnxruntime_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="unit2av.runtime.fast"):
        v = fast_vocoder(vocoder, "onnx")
        f = fast_face_renderer(face, "onnx")
    assert isinstance(v.body, FastGenerator) and type(f) is FastFaceRenderer
    assert "onnxruntime is not installed" in caplog.text


def test_compile_backend_falls_back_when_compiling_fails(vocoder, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(fast.torch, "compile", broken)
    with caplog.at_level(logging.WARNING, logger="unit2av.runtime.fast"):
        v = fast_vocoder(vocoder, "compile")
    assert isinstance(v.body, FastGenerator)
    assert "no C++ compiler" in caplog.text
    code, spkr = _speech_inputs(3, 1, 9)
    with torch.inference_mode():
        assert _max_diff(v(code=code, spkr=spkr)[0], vocoder(code=code, spkr=spkr)[0]) <= TOL


@needs_ort
def test_onnx_backend_matches_eager(vocoder, face):
    from unit2av.runtime.onnx import OrtFaceRenderer, OrtModule

    v = fast_vocoder(vocoder, "onnx", threads=1)
    assert isinstance(v.body, OrtModule)
    code, spkr = _speech_inputs(11, 2, 23)  # another batch and length than the export example
    units, faces = torch.randint(0, 1000, (2, 20)), torch.rand(20, 6, 96, 96)
    f = fast_face_renderer(face, "onnx", threads=1)
    assert isinstance(f, OrtFaceRenderer) and f.num_embeddings == face.num_embeddings
    with torch.inference_mode():
        assert _max_diff(v(code=code, spkr=spkr)[0], vocoder(code=code, spkr=spkr)[0]) <= TOL
        assert _max_diff(f(units, faces), face(units, faces)) <= TOL


@pytest.mark.parametrize("backend", FOLDED)
def test_both_layouts_carry_the_f0_excitation(backend):
    from _unit2a_helpers import TINY_CONFIG

    torch.manual_seed(2)
    model = UnitVocoder.from_config(config_from_dict({**TINY_CONFIG, "f0_source": True}, "tiny f0 config"))
    with torch.no_grad():
        for down in model.source_downs:  # they start at zero; make the excitation matter
            down.weight.normal_(0, 0.5)
    model.eval()
    fast_model = fast_vocoder(model, backend)
    code, spkr = torch.randint(0, 16, (2, 21)), torch.randn(2, 1, 256)
    f0 = torch.full((2, 21), 120.0)
    with torch.inference_mode():
        want, got = model(code=code, spkr=spkr, f0=f0)[0], fast_model(code=code, spkr=spkr, f0=f0)[0]
        silent = model(code=code, spkr=spkr, f0=torch.zeros_like(f0))[0]
    assert _max_diff(got, want) <= TOL
    assert _max_diff(want, silent) > 1e-3  # the excitation changed the output
