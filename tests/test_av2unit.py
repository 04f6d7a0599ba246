"""mAV-HuBERT units without fairseq: every av2unit fixture case, the av2unit command, corpus units, bad input."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SAMPLE, SAMPLE_VIDEO, SHARED

from unit2av.av2unit import features as F
from unit2av.av2unit.model import interleave, windows
from unit2av.cli import main
from unit2av.errors import Unit2AVError

FIXTURE = SHARED / "fixtures" / "av2unit"
SAMPLE_LIP = SAMPLE / "TRajLqEaWhQ_00002.lip.mp4"
CASES = json.loads((FIXTURE / "cases.json").read_text())


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("av2unit")
    subprocess.run([sys.executable, str(FIXTURE / "materialise.py"), str(out)], check=True, capture_output=True)
    return out / "mavhubert_tiny.pt"


@pytest.fixture(scope="module")
def expected() -> dict:
    return dict(np.load(FIXTURE / "expected.npz", allow_pickle=False))


@pytest.fixture(scope="module")
def model(ckpt):
    from unit2av import load_av2unit

    return load_av2unit(ckpt, device="cpu")


def _case_inputs(case: str, wav, lip):
    c = CASES[case]
    audio = wav[: c["audio_samples"]] if "audio" in c["modalities"] else None
    frames = lip[: c["video_frames"]] if "video" in c["modalities"] else None
    return audio, frames, c["modalities"]


# ---------------------------------------------------------------------------------------------- features
def test_features_from_the_sample_clip_match_the_reference(expected):
    wav = F.load_audio_int16(SAMPLE_VIDEO)  # our PyAV reader, AAC padding trimmed
    assert np.array_equal(wav, expected["input__wav_int16"].astype(np.float64))
    assert np.array_equal(F.float_to_int16_scale(expected["input__wav_float32"]), wav)
    for case, c in CASES.items():
        if c["audio_samples"] is None:
            continue
        frames = c["video_frames"] if "video" in c["modalities"] else None
        raw, rows = F.audio_rows(wav[: c["audio_samples"]], frames, normalize=True, stack=4)
        assert raw.shape == (c["T"], 104), case
        assert np.abs(raw - expected[f"{case}__audio_feats_raw"]).max() <= 1e-5, case
        assert np.abs(rows.numpy() - expected[f"{case}__audio_feats"]).max() <= 1e-5, case
    gray = F.read_lip_frames(SAMPLE_LIP)
    assert np.array_equal(gray, expected["input__lip_gray_u8"])
    video = F.image_transform(gray, 0.421, 0.165, 88)
    assert np.abs(video - expected["av__video_feats"][:, 0]).max() <= 1e-6


def test_filterbank_length_rule_and_padding():
    assert [F.num_fbank_frames(n) for n in (1, 400, 401, 560, 561)] == [1, 1, 2, 2, 3]
    assert F.num_fbank_frames(16480) == 102 and F.num_rows(16480) == 26  # the a_short case
    # 2T units are len // 320 plus 0, 1 or 2 for every length: trimming never needs padding
    extra = {2 * F.num_rows(n) - n // 320 for n in range(1, 20_000)}
    assert extra == {0, 1, 2}
    rows = F.stack_frames(np.ones((5, 26), np.float32))
    assert rows.shape == (2, 104) and rows[1, 26:].sum() == 0  # zero rows in the log domain
    assert F.align_rows(rows, 4)[2:].sum() == 0 and len(F.align_rows(rows, 1)) == 1
    assert torch.equal(F.normalize_rows(torch.zeros(1, 104)), torch.zeros(1, 104))


# ---------------------------------------------------------------------------------------------- model
@pytest.mark.parametrize("optimize", [True, False], ids=["optimized", "plain"])
def test_every_fixture_case(ckpt, expected, optimize):
    from unit2av import load_av2unit

    model = load_av2unit(ckpt, device="cpu", optimize=optimize)
    wav, lip = expected["input__wav_float32"], expected["input__lip_gray_u8"]
    for case in CASES:
        audio, frames, mods = _case_inputs(case, wav, lip)
        inputs = model.features(audio, frames, mods, max_mismatch=None)
        assert inputs.num_frames == CASES[case]["T"]
        x = model.encode(inputs)  # (T, D): what logits()/indices()/units() compute from too
        assert np.abs(x.numpy() - expected[f"{case}__x"]).max() <= 1e-4, case
        with torch.inference_mode():
            even, odd = (h[0] for h in model.model.head_logits(x[None]))
        assert np.abs(even.numpy() - expected[f"{case}__logits_even"]).max() <= 1e-4, case
        assert np.abs(odd.numpy() - expected[f"{case}__logits_odd"]).max() <= 1e-4, case
        idx = interleave([even.argmax(-1), odd.argmax(-1)])
        assert np.array_equal(idx.numpy(), expected[f"{case}__pred"]), case
        assert np.array_equal(model.values(idx).numpy(), expected[f"{case}__units"]), case
        assert model.to_string(idx) == str(expected[f"{case}__unit_str"]), case
    audio, frames, mods = _case_inputs("av_cut", wav, lip)  # the public methods, end to end, once
    idx = model.indices(audio, frames, mods, max_mismatch=None)
    assert np.array_equal(idx.numpy(), expected["av_cut__pred"])
    assert "fairseq" not in sys.modules and "omegaconf" not in sys.modules
    assert importlib.util.find_spec("fairseq") is None


def test_paths_modalities_and_units(model, expected):
    assert model.unit_string(SAMPLE_VIDEO, SAMPLE_LIP) == str(expected["av__unit_str"])
    assert model.unit_string(SAMPLE_VIDEO, SAMPLE_LIP, modalities="audio") == str(expected["a__unit_str"])
    assert model.unit_string(lip=SAMPLE_LIP) == str(expected["v__unit_str"])
    units = model.units(audio=SAMPLE_VIDEO)
    assert units.dtype == torch.int64 and np.array_equal(units.numpy(), expected["a__units"])
    with pytest.raises(Unit2AVError, match="more than 5 frames apart"):
        model.units(expected["input__wav_float32"][:16480], expected["input__lip_gray_u8"])
    with pytest.raises(Unit2AVError, match="no mouth crops"):
        model.units(audio=SAMPLE_VIDEO, modalities="audio,video")
    with pytest.raises(Unit2AVError, match="96, 96"):
        model.units(lip=np.zeros((4, 64, 64), np.uint8))


def test_long_inputs_windows_and_frame_batches(model, expected):
    spans = windows(4000, 1500, 200)
    assert spans[0][2] == 0 and spans[-1][3] == 4000
    assert all(a[3] == b[2] for a, b in zip(spans, spans[1:]))
    assert all(s <= k0 < k1 <= e and k1 - k0 > 0 for s, e, k0, k1 in spans)
    inputs = model.features(expected["input__wav_float32"], expected["input__lip_gray_u8"])
    a, v = inputs.audio.T[None], inputs.video[None, None]
    net = model.model
    with torch.inference_mode():
        whole = net.encode(a, v)
        assert torch.allclose(net.encode(a, v, frame_batch=16), whole, atol=1e-5)  # video front end in 5 passes
        assert torch.equal(net.encode(a, v, max_frames=70), whole)  # up to max_frames: the whole input at once
        windowed = net.encode(a, v, max_frames=40, overlap=10)
        fused = net.fuse_features(a, v)
        parts = [net.encoder(fused[:, s:e])[:, k0 - s : k1 - s] for s, e, k0, k1 in windows(70, 40, 10)]
    assert [w[:2] for w in windows(70, 40, 10)] == [(0, 40), (30, 70)]
    assert torch.allclose(windowed, torch.cat(parts, dim=1), atol=1e-6)
    assert not torch.allclose(windowed[:, 40:], whole[:, 40:], atol=1e-3)  # other context, other numbers


# ---------------------------------------------------------------------------------------------- command
def test_cli_av_and_audio_strings(ckpt, expected, tmp_path, capsys):
    out = tmp_path / "u" / "av.txt"
    assert (
        main(
            [
                "av2unit",
                "--in-vid-path",
                str(SAMPLE_VIDEO),
                "--out-unit-path",
                str(out),
                "--av2unit-path",
                str(ckpt),
                "--in-lip-path",
                str(SAMPLE_LIP),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert out.read_text() == str(expected["av__unit_str"])
    out_a = tmp_path / "a.txt"
    assert (
        main(
            [
                "av2unit",
                "--in_vid_path",
                str(SAMPLE_VIDEO),
                "--out_unit_path",
                str(out_a),
                "--av2unit_path",
                str(ckpt),
                "--modalities",
                "audio",
                "--cpu",
            ]
        )
        == 0
    )
    assert out_a.read_text() == str(expected["a__unit_str"])
    assert "wrote 140 units" in capsys.readouterr().out


def test_cli_makes_mouth_crops_without_lip_path(ckpt, expected, tmp_path, monkeypatch):
    calls = []

    def make_mouth_crops(video_path, out_lip_path, boxes=None, **kw):  # stands in for prepare.mouth
        calls.append((Path(video_path), Path(out_lip_path), boxes))
        Path(out_lip_path).write_bytes(SAMPLE_LIP.read_bytes())

    monkeypatch.setitem(sys.modules, "unit2av.prepare.mouth", types.SimpleNamespace(make_mouth_crops=make_mouth_crops))
    out = tmp_path / "av.txt"
    bbox = str(SAMPLE / "TRajLqEaWhQ_00002.bbox.pkl")
    assert (
        main(
            [
                "av2unit",
                "--in-vid-path",
                str(SAMPLE_VIDEO),
                "--out-unit-path",
                str(out),
                "--av2unit-path",
                str(ckpt),
                "--in-bbox-path",
                bbox,
            ]
        )
        == 0
    )
    assert calls == [(SAMPLE_VIDEO, tmp_path / "TRajLqEaWhQ_00002.lip.mp4", bbox)]
    assert out.read_text() == str(expected["av__unit_str"])


def _short_lip(path: Path, frames: int, size: int = 96) -> Path:
    from unit2av.io.video_writer import VideoWriter

    gray = F.read_lip_frames(SAMPLE_LIP)[:frames]
    with VideoWriter(path, size, size, fps=25) as w:
        for g in gray:
            w.write(np.repeat(g[:size, :size, None], 3, axis=2))
    return path


def test_cli_bad_input_is_one_line_exit_2(ckpt, tmp_path, capsys):
    utut = tmp_path / "utut"
    subprocess.run(
        [sys.executable, str(SHARED / "fixtures" / "utut" / "materialise.py"), str(utut)],
        check=True,
        capture_output=True,
    )
    short = _short_lip(tmp_path / "short.lip.mp4", 20)
    out = tmp_path / "u.txt"
    base = ["av2unit", "--in-vid-path", str(SAMPLE_VIDEO), "--out-unit-path", str(out)]
    cases = [
        (
            ["--av2unit-path", str(utut / "utut_tiny.pt"), "--in-lip-path", str(SAMPLE_LIP)],
            "not an mAV-HuBERT checkpoint: it holds model 'mbart_large' for task 'utut_pretraining'",
        ),
        (["--av2unit-path", str(ckpt), "--in-lip-path", str(SAMPLE_VIDEO)], "224x224"),
        (["--av2unit-path", str(ckpt), "--in-lip-path", str(short)], "more than 5 frames apart"),
    ]
    for extra, message in cases:
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()
    no_audio = [
        "av2unit",
        "--in-vid-path",
        str(SAMPLE_LIP),
        "--out-unit-path",
        str(out),
        "--av2unit-path",
        str(ckpt),
        "--modalities",
        "audio",
    ]
    assert main(no_audio) == 2 and "has no audio track" in capsys.readouterr().err and not out.exists()
    # the reference's rule (pad/trim any difference) on request
    assert main(base + ["--av2unit-path", str(ckpt), "--in-lip-path", str(short), "--max-mismatch", "-1"]) == 0
    assert len(out.read_text().split()) == 40


# ---------------------------------------------------------------------------------------------- corpus units
def test_units_extract_mavhubert_on_video_files(ckpt, expected, tmp_path):
    """Audio from an mp4 as the reference reads it (AAC padding trimmed); video from its <stem>.lip.mp4."""
    import shutil

    from unit2av.io.safe import load_torch

    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(SAMPLE_VIDEO, clips)
    shutil.copy(SAMPLE_LIP, clips)  # mouth crops: read for "video", never taken for a speech file
    for spec, case in ((f"mavhubert:{ckpt}", "a"), (f"mavhubert:{ckpt}:audio,video", "av")):
        out = tmp_path / case
        assert (
            main(
                [
                    "units",
                    "extract",
                    "--features",
                    spec,
                    "--audio_root",
                    str(clips),
                    "--out_root",
                    str(out),
                    "--no-progress",
                ]
            )
            == 0
        )
        assert [p.name for p in out.rglob("*.pt")] == [f"{SAMPLE_VIDEO.stem}.pt"]
        code = load_torch(out / f"{SAMPLE_VIDEO.stem}.pt")["code"]
        assert np.array_equal(code.numpy(), expected[f"{case}__units"]), case  # 44800 // 320 = 140 = 2T


@pytest.mark.skipif(importlib.util.find_spec("unit2av.demo.corpus") is None, reason="no demo corpus")
def test_units_extract_mavhubert_feeds_manifest_and_training(ckpt, model, tmp_path, capsys):
    from _unit2a_helpers import write_config

    from unit2av.demo.corpus import espeak_available, make_corpus
    from unit2av.io.audio import load_audio
    from unit2av.io.safe import load_torch

    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    audio_root, unit_root = tmp_path / "audio", tmp_path / "units"
    records = make_corpus(audio_root, sentences_per_voice=2)
    spec = f"mavhubert:{ckpt}"
    assert (
        main(
            [
                "units",
                "extract",
                "--features",
                spec,
                "--audio_root",
                str(audio_root),
                "--out_root",
                str(unit_root),
                "--no-progress",
            ]
        )
        == 0
    )
    for r in records:
        wav, _ = load_audio(r["path"], 16000)
        unit_file = unit_root / Path(r["path"]).relative_to(audio_root).with_suffix(".pt")
        code = load_torch(unit_file)["code"]
        assert code.dtype == torch.int64 and len(code) == len(wav) // 320
        full = model.units(wav)  # 2T = len // 320 + 0..2: the tail units are the dropped ones
        assert 0 <= len(full) - len(code) <= 2 and torch.equal(full[: len(code)], code)
        assert 0 <= int(code.min()) and int(code.max()) < 1000
    assert (
        main(
            [
                "units",
                "extract",
                "--features",
                spec,
                "--kmeans",
                str(ckpt),
                "--audio_root",
                str(audio_root),
                "--out_root",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert main(["units", "extract", "--audio_root", str(audio_root), "--out_root", str(tmp_path / "x")]) == 2
    assert "needs a k-means file" in capsys.readouterr().err
    manifest = tmp_path / "train.jsonl"
    assert (
        main(
            ["manifest", "--audio_root", str(audio_root), "--unit_root", str(unit_root), "--output_file", str(manifest)]
        )
        == 0
    )
    config = write_config(tmp_path / "tiny.json", num_embeddings=1000, embedder_params=False, batch_size=2)
    ck = tmp_path / "ck"
    torch.set_num_threads(1)
    try:
        assert (
            main(
                [
                    "train-unit2a",
                    "--config",
                    str(config),
                    "--checkpoint_path",
                    str(ck),
                    "--input_training_file",
                    str(manifest),
                    "--input_validation_file",
                    str(manifest),
                    "--training_steps",
                    "2",
                    "--validation_interval",
                    "0",
                    "--checkpoint_interval",
                    "2",
                    "--disc_width",
                    "0.0625",
                    "--device",
                    "cpu",
                    "--num_workers",
                    "0",
                ]
            )
            == 0
        )
    finally:
        torch.set_num_threads(2)
    assert (ck / "g_00000002").is_file()


@pytest.mark.parametrize("negative_slope", [False, True], ids=["pool-first", "activation-first"])
def test_fused_video_front_end_equals_the_plain_one(negative_slope):
    """The fused stem pools before its PReLU only when no slope is negative; both orders give the plain numbers."""
    import copy

    from unit2av.av2unit.resnet import ResEncoder

    torch.manual_seed(0)
    plain = ResEncoder().eval()
    with torch.no_grad():
        plain.frontend3D[2].weight.uniform_(-0.3 if negative_slope else 0.05, 0.3)
    fused = copy.deepcopy(plain)
    fused.fuse_for_inference()
    assert fused.pool_first is not negative_slope
    x = torch.randn(1, 1, 7, 88, 88)
    with torch.inference_mode():
        want = plain(x)
        assert torch.allclose(fused(x, frame_batch=4), want, atol=1e-4)
    assert want.shape == (1, 512, 7)


def test_batched_attention_equals_sdpa():
    from unit2av.av2unit.encoder import _batched_attention

    q, k, v = torch.randn(3, 2, 4, 37, 16).unbind(0)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.allclose(_batched_attention(q, k, v), want, atol=1e-5)


def test_fused_path_without_onednn_matches_the_fixture(ckpt, expected):
    """The fused model as it runs off the CPU (no prepacked products, SDPA attention, NCHW trunk)."""
    import copy

    from unit2av import load_av2unit

    plain = load_av2unit(ckpt, device="cpu", optimize=False)
    net = copy.deepcopy(plain.model).fuse_for_inference(channels_last=False, onednn=False)
    layer = net.encoder.layers[0]
    assert layer.fc1.packed is None and layer.self_attn.qkv_packed is None and not layer.self_attn.onednn
    audio, frames, mods = _case_inputs("av", expected["input__wav_float32"], expected["input__lip_gray_u8"])
    inputs = plain.features(audio, frames, mods, max_mismatch=None)
    with torch.inference_mode():
        x = net.encode(inputs.audio.T[None], inputs.video[None, None])[0]
    assert np.abs(x.numpy() - expected["av__x"]).max() <= 1e-4
