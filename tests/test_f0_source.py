"""The f0 tracker and the optional harmonic excitation (config key ``f0_source``) of the vocoder."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from _unit2a_helpers import TINY_CONFIG

from unit2av.demo.corpus import espeak_available, synthesize_espeak
from unit2av.errors import Unit2AVError
from unit2av.io.checkpoints import load_state_checked
from unit2av.runtime.fast import fast_vocoder
from unit2av.spectral import frame_f0
from unit2av.vocoder.config import config_from_dict
from unit2av.vocoder.model import SOURCE_PARTS, UnitVocoder

SR, HOP = 16000, 320


def _tone(f0: float, seconds: float = 1.0) -> torch.Tensor:
    """A voice-like tone: three harmonics with unequal phases."""
    t = torch.arange(int(SR * seconds)) / SR
    return sum(a * torch.sin(2 * math.pi * k * f0 * t + k) for k, a in ((1, 1.0), (2, 0.6), (3, 0.3)))


def _tiny(**kw):
    return config_from_dict({**TINY_CONFIG, **kw}, "tiny config")


@pytest.mark.parametrize("f0", [70.0, 83.0, 136.0, 201.0, 267.0, 390.0])
def test_frame_f0_finds_the_pitch_of_a_tone_not_a_multiple(f0):
    track = frame_f0(_tone(f0), SR, HOP)
    assert track.shape == (SR // HOP,)
    inner = track[3:-3]  # frames whose window lies inside the tone
    assert bool((inner > 0).all())
    assert float((inner - f0).abs().max()) < 0.01 * f0


def test_frame_f0_leaves_noise_and_silence_unvoiced_and_keeps_batches_apart():
    noise = torch.randn(SR, generator=torch.Generator().manual_seed(0)) * 0.3
    half = _tone(120.0)
    half[: SR // 2] = 0  # silence, then a tone
    track = frame_f0(torch.stack([noise, half]), SR, HOP)
    assert track.shape == (2, 50)
    assert float((track[0] > 0).float().mean()) < 0.1
    assert bool((track[1, :20] == 0).all()) and bool((track[1, 30:-3] - 120.0).abs().max() < 1.2)
    assert frame_f0(torch.zeros(100), SR, HOP).shape == (0,)  # shorter than a frame: no frames


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_frame_f0_follows_espeak_voices_pitch_setting():
    text = "The soup needs a pinch more salt."
    medians = {}
    for voice, pitch in (("en-us+m1", 20), ("en-us+m1", 80), ("ko+f3", 75)):
        track = frame_f0(
            torch.from_numpy(
                synthesize_espeak(text if voice.startswith("en") else "창문을 열어 주세요.", voice, pitch=pitch)
            ),
            SR,
            HOP,
        )
        voiced = track[track > 0]
        assert voiced.numel() > 0.3 * track.numel()  # speech is voiced much of the time
        medians[(voice, pitch)] = float(voiced.median())
    low, high, female = medians[("en-us+m1", 20)], medians[("en-us+m1", 80)], medians[("ko+f3", 75)]
    assert 60 < low < 120 and high > 1.3 * low and 180 < female < 350, medians


def test_f0_source_config_is_ours_and_excludes_the_f0_input(tmp_path):
    cfg = _tiny(f0_source=True)
    assert cfg.f0_source and not _tiny().f0_source  # off unless asked for: original configs are unchanged
    with pytest.raises(Unit2AVError, match="f0_source .* exclude"):
        config_from_dict({**TINY_CONFIG, "f0": True, "model_in_dim": 65, "f0_source": True}, "bad.json")


def _random_source_model(seed: int = 0) -> UnitVocoder:
    torch.manual_seed(seed)
    model = UnitVocoder.from_config(_tiny(f0_source=True))
    with torch.no_grad():
        for down in model.source_downs:  # they start at zero; make them matter
            down.weight.normal_(0, 0.5)
    return model.eval()


def test_excitation_is_harmonic_at_the_given_f0_and_silent_when_unvoiced():
    model = _random_source_model()
    f0 = torch.full((1, 50), 110.0)
    f0[0, 25:] = 0
    with torch.no_grad():
        src = model.excitation(f0)
    assert src.shape == (1, 1, 50 * HOP)
    track = frame_f0(src[0, 0], SR, HOP)
    assert float((track[3:20] - 110.0).abs().max()) < 1.5
    tail = src[0, 0, 27 * HOP :]
    assert float(tail.std()) < 1e-6  # unvoiced: a constant (the merge layer's bias), no tone


def test_f0_source_model_loads_a_plain_checkpoint_and_follows_a_given_f0():
    torch.manual_seed(3)
    plain = UnitVocoder.from_config(_tiny()).eval()
    model = UnitVocoder.from_config(_tiny(f0_source=True)).eval()
    with pytest.raises(Unit2AVError, match="missing keys: f0_predictor"):
        load_state_checked(model, plain.state_dict(), "g_plain")
    load_state_checked(model, plain.state_dict(), "g_plain", may_lack=SOURCE_PARTS)
    mine = model.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in plain.state_dict().items())  # the body is the plain model's
    code, spkr = torch.randint(0, 16, (1, 40)), torch.randn(1, 1, 256)
    with torch.no_grad():
        low, _ = model(code=code, spkr=spkr, f0=torch.full((1, 40), 90.0))
        high, _ = model(code=code, spkr=spkr, f0=torch.full((1, 40), 180.0))
        unvoiced, _ = model(code=code, spkr=spkr, f0=torch.zeros(1, 40))
    assert float((low - high).abs().max()) > 1e-3  # the given f0 drives the output
    assert float((low - unvoiced).abs().max()) > 1e-3


def test_f0_predictor_loss_learns_a_speakers_pitch():
    model = UnitVocoder.from_config(_tiny(f0_source=True)).train()
    code = torch.randint(0, 16, (4, 30), generator=torch.Generator().manual_seed(0))
    spkr = torch.randn(4, 1, 256)
    f0 = torch.tensor([90.0, 120.0, 200.0, 260.0]).view(4, 1).expand(4, 30).clone()
    f0[:, ::5] = 0  # some unvoiced frames
    x = torch.cat([model.dict(code).transpose(1, 2), model.speaker_features(spkr, 30)], dim=1)
    opt = torch.optim.Adam(model.f0_predictor.parameters(), 3e-3)
    first = float(model.f0_loss(x, f0))
    for _ in range(150):
        opt.zero_grad()
        model.f0_loss(x, f0).backward()
        opt.step()
    assert float(model.f0_loss(x, f0)) < 0.2 * first
    guess = model.predict_f0(x)
    voiced = f0 > 0
    assert float(((guess[voiced] - f0[voiced]).abs() / f0[voiced]).median()) < 0.1
    assert float(((guess > 0) == voiced).float().mean()) > 0.9


def test_fast_path_and_backends_match_eager_with_the_excitation(caplog):
    model = _random_source_model(1)
    code, spkr = torch.randint(0, 16, (2, 33)), torch.randn(2, 1, 256)
    f0 = torch.full((2, 33), 130.0)
    with torch.inference_mode():
        want_given, _ = model(code=code, spkr=spkr, f0=f0)
        want_pred, _ = model(code=code, spkr=spkr)
        fast = fast_vocoder(model)
        assert float((fast(code=code, spkr=spkr, f0=f0)[0] - want_given).abs().max()) <= 1e-4
        assert float((fast(code=code, spkr=spkr)[0] - want_pred).abs().max()) <= 1e-4
        with caplog.at_level(logging.WARNING):
            onnx = fast_vocoder(model, backend="onnx")
        assert "f0_source" in caplog.text
        assert float((onnx(code=code, spkr=spkr)[0] - want_pred).abs().max()) <= 1e-4
        one = code[:1, :12]
        want, codes = model(code=one, spkr=spkr[:1], dur_prediction=True)
        got, got_codes = fast(code=one, spkr=spkr[:1], dur_prediction=True)
    assert torch.equal(codes, got_codes) and float((got - want).abs().max()) <= 1e-4


def test_config_with_f0_source_round_trips(tmp_path):
    from unit2av.vocoder.config import load_config, save_config

    save_config(_tiny(f0_source=True, lambda_f0=2.0), tmp_path / "c.json")
    back = load_config(tmp_path / "c.json")
    assert back.f0_source and back.lambda_f0 == 2.0
    assert json.loads((tmp_path / "c.json").read_text())["f0_source"] is True


@pytest.mark.skipif(
    not __import__("unit2av.runtime.onnx", fromlist=["x"]).onnxruntime_available(),
    reason="onnxruntime not installed (extra 'onnx')",
)
def test_onnx_export_of_an_f0_source_vocoder_matches_at_other_lengths():
    import numpy as np

    from unit2av.runtime.onnx import ort_session, vocoder_onnx_bytes

    model = _random_source_model(2)
    session = ort_session(vocoder_onnx_bytes(model))
    for frames in (37, 5):  # neither is the export example's length
        code, spkr = torch.randint(0, 16, (2, frames)), torch.randn(2, 1, 256)
        got = session.run(None, {"code": code.numpy(), "spkr": spkr.numpy()})[0]
        with torch.no_grad():
            want, _ = model(code=code, spkr=spkr)
        # 1e-3, not the fast paths' 1e-4: the excitation's phase integrates the rounding of the
        # predicted f0 (~1e-5 relative in ONNX Runtime's exp), a drift of ~0.01 rad per second
        assert got.shape == (2, 1, frames * HOP) and np.abs(got - want.numpy()).max() <= 1e-3


def test_exporting_the_body_of_an_f0_source_vocoder_is_refused_in_one_line(tmp_path, capsys):
    from unit2av.cli import main
    from unit2av.vocoder.checkpoint import save_generator

    pytest.importorskip("onnx")
    model = _random_source_model(4)
    save_generator(model, tmp_path / "g_src", config=model.config, step=7)
    out = tmp_path / "body.onnx"
    rc = main(
        [
            "export",
            "--format",
            "onnx",
            "--checkpoint",
            str(tmp_path / "g_src"),
            "--what",
            "vocoder-body",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "g_src" in err and "f0_source" in err and len(err.splitlines()) == 1
    assert not out.exists()
