"""``unit2av export --format onnx``: ONNX Runtime runs the exported graphs with PyTorch's numbers.

The reference checkpoint of the fixture (64-channel vocoder, released-size face renderer);
outputs are compared with the fixture's expected numbers and with PyTorch on other shapes
(the batch and length axes are dynamic).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REFERENCE

from unit2av.cli import main as cli_main
from unit2av.face.checkpoint import load_face_renderer
from unit2av.runtime.onnx import export_checkpoint, onnxruntime_available, ort_session
from unit2av.vocoder.checkpoint import load_vocoder

pytestmark = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed (extra 'onnx')")

TOL = 1e-4  # the equivalence bound


def _export(tmp_path, reference_dir, what: str, name: str, container: str = "unit2av_ref.pt", lang="en") -> str:
    out = tmp_path / name
    argv = [
        "export",
        "--format",
        "onnx",
        "--checkpoint",
        str(reference_dir / container),
        "--config",
        str(REFERENCE / "config.json"),
        "--what",
        what,
        "--out",
        str(out),
    ]
    if lang:
        argv += ["--lang", lang]
    assert cli_main(argv) == 0
    assert out.is_file() and not list(tmp_path.glob(".*"))  # written atomically: no temporary left
    return str(out)


@pytest.fixture(scope="module")
def vocoder_onnx(tmp_path_factory, reference_dir):
    return _export(tmp_path_factory.mktemp("onnx"), reference_dir, "vocoder", "vocoder.onnx")


def test_vocoder_onnx_reproduces_reference_wav(vocoder_onnx, reference_expected):
    sess = ort_session(vocoder_onnx, threads=1)
    assert [i.name for i in sess.get_inputs()] == ["code", "spkr"]
    wav = sess.run(
        None,
        {
            "code": reference_expected["plain__code"].astype(np.int64),
            "spkr": reference_expected["plain__spkr"].astype(np.float32),
        },
    )[0]
    assert wav.shape == reference_expected["plain__wav"].shape
    assert np.abs(wav - reference_expected["plain__wav"]).max() <= TOL


def test_vocoder_onnx_dynamic_batch_and_length_match_pytorch(vocoder_onnx, reference_dir):
    model = load_vocoder(reference_dir / "unit2av_ref.pt", REFERENCE / "config.json", lang="en")
    g = torch.Generator().manual_seed(3)
    code, spkr = torch.randint(0, 1000, (3, 17), generator=g), torch.randn(3, 1, 256, generator=g)
    with torch.inference_mode():
        want, _ = model(code=code, spkr=spkr)
    got = ort_session(vocoder_onnx, threads=1).run(None, {"code": code.numpy(), "spkr": spkr.numpy()})[0]
    assert got.shape == (3, 1, 17 * 320)
    assert np.abs(got - want.numpy()).max() <= TOL


def test_vocoder_body_onnx_matches_generate(tmp_path, reference_dir):
    path = _export(tmp_path, reference_dir, "vocoder-body", "body.onnx", container="g_00000000", lang=None)
    model = load_vocoder(reference_dir / "g_00000000", REFERENCE / "config.json")
    x = torch.randn(2, 256, 9, generator=torch.Generator().manual_seed(4))  # (B, model_in_dim, T)
    with torch.inference_mode():
        want = model.generate(x)
    got = ort_session(path, threads=1).run(None, {"x": x.numpy()})[0]
    assert got.shape == (2, 1, 9 * 320)
    assert np.abs(got - want.numpy()).max() <= TOL


def test_face_onnx_reproduces_reference_and_takes_any_batch(tmp_path, reference_dir, reference_expected):
    path = _export(tmp_path, reference_dir, "face", "face.onnx", lang=None)
    x = reference_expected["face__crops_bgr"].astype(np.float32).transpose(0, 3, 1, 2) / 255  # (T, 3, 96, 96)
    masked = x.copy()
    masked[:, :, 48:] = 0  # the lower half hidden, per the fixture README
    faces = np.ascontiguousarray(np.concatenate([masked, x], axis=1))  # (20, 6, 96, 96)
    units = reference_expected["face__units"].astype(np.int64)  # (2, 20)
    sess = ort_session(path, threads=1)
    out = sess.run(None, {"units": units, "faces": faces})[0]
    assert np.abs(out - reference_expected["face__out"]).max() <= TOL
    one = sess.run(None, {"units": units[1:], "faces": faces[10:]})[0]  # one window: dynamic batch
    with torch.inference_mode():
        face = load_face_renderer(reference_dir / "unit2av_ref.pt")
        want = face(torch.from_numpy(units[1:]), torch.from_numpy(faces[10:]))
    assert one.shape == (10, 3, 96, 96)
    assert np.abs(one - want.numpy()).max() <= TOL


def test_export_errors_are_one_line_and_leave_nothing(tmp_path, reference_dir, capsys):
    out = tmp_path / "face.onnx"
    argv = ["export", "--checkpoint", str(reference_dir / "g_00000000"), "--what", "face", "--out", str(out)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "no face renderer found" in err and len(err.splitlines()) == 1
    argv = [
        "export",
        "--checkpoint",
        str(reference_dir / "unit2av_ref.pt"),
        "--config",
        str(REFERENCE / "config.json"),
        "--lang",
        "fr",
        "--out",
        str(out),
    ]
    assert cli_main(argv) == 2
    assert "it has: en, ko" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    with pytest.raises(Exception, match="unknown export target"):
        export_checkpoint(reference_dir / "g_00000000", out, what="speaker")
