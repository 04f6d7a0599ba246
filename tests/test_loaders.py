"""The single loaders give the same model from every container kind (the reference fixture's weights).

Vocoder: ``g_`` file with config.json beside it, ``g_`` file with its config embedded, AV2AV
container with an explicit config, bare state dict, a ``pack``ed container (config stored inside).
Face renderer: AV2AV container, ``train-face`` ``f_`` file, bare state dict, ``pack``ed container.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import REFERENCE

from unit2av.face.checkpoint import load_face_renderer
from unit2av.face.model import FaceRenderer
from unit2av.face.state import renderer_container
from unit2av.io.safe import load_torch, save_torch
from unit2av.pipeline.pack import pack
from unit2av.pipeline.render import load_renderer
from unit2av.vocoder.checkpoint import load_vocoder, save_generator

TOL = 1e-4  # the fixture's bound


@pytest.fixture(scope="module")
def containers(tmp_path_factory, reference_dir):
    """Every container kind holding the reference's ``en`` vocoder and its face renderer."""
    out = tmp_path_factory.mktemp("kinds")
    ref = load_torch(reference_dir / "unit2av_ref.pt")
    for name in ("g_", "bare"):
        (out / name).mkdir()
        shutil.copy(REFERENCE / "config.json", out / name / "config.json")  # beside, as training writes it
    shutil.copy(reference_dir / "g_00000000", out / "g_" / "g_00000000")
    save_torch(ref["audio"]["en"], out / "bare" / "voc.pt")
    save_torch(ref["video"], out / "face_bare.pt")
    save_generator(load_vocoder(out / "g_" / "g_00000000"), out / "g_embedded", config=_config(), step=5)
    save_torch(renderer_container(load_face_renderer(ref)), out / "f_best")
    pack({"en": out / "g_embedded"}, out / "f_best", out / "packed.pt")
    return out


def _config():
    from unit2av.vocoder.config import load_config

    return load_config(REFERENCE / "config.json")


def test_vocoder_is_the_same_from_every_container(containers, reference_dir, reference_expected):
    models = {
        "g_ (config beside)": load_vocoder(containers / "g_" / "g_00000000"),
        "g_ (config embedded)": load_vocoder(containers / "g_embedded"),
        "AV2AV (config given)": load_vocoder(reference_dir / "unit2av_ref.pt", REFERENCE / "config.json", lang="en"),
        "bare state dict": load_vocoder(containers / "bare" / "voc.pt"),
        "packed": load_vocoder(containers / "packed.pt"),
    }
    want = models["AV2AV (config given)"].state_dict()
    for kind, model in models.items():
        got = model.state_dict()
        assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want), kind
    code = torch.from_numpy(reference_expected["plain__code"]).long()
    spkr = torch.from_numpy(reference_expected["plain__spkr"]).float()
    with torch.inference_mode():
        wav = models["packed"](code=code, spkr=spkr)[0].numpy()
        fast, _ = load_renderer(containers / "packed.pt", device="cpu")  # render's path: folded, no --config
        fast_wav = fast(code=code, spkr=spkr)[0].numpy()
    assert np.abs(wav - reference_expected["plain__wav"]).max() <= TOL
    assert np.abs(fast_wav - reference_expected["plain__wav"]).max() <= TOL


def test_face_renderer_is_the_same_from_every_container(containers, reference_dir, reference_expected):
    models = {
        "AV2AV": load_face_renderer(reference_dir / "unit2av_ref.pt"),
        "f_": load_face_renderer(containers / "f_best"),
        "bare state dict": load_face_renderer(containers / "face_bare.pt"),
        "packed": load_face_renderer(containers / "packed.pt"),
        "render's": load_renderer(containers / "packed.pt", device="cpu", backend="eager")[1],
    }
    want = models["AV2AV"].state_dict()
    for kind, model in models.items():
        got = model.state_dict()
        assert not model.training and list(got) == list(want), kind
        assert all(torch.equal(got[k], want[k]) for k in want), kind
    x = torch.from_numpy(reference_expected["face__crops_bgr"][:10]).float().div(255).permute(0, 3, 1, 2)
    masked = x.clone()
    masked[:, :, 48:] = 0  # the lower half hidden, per the fixture README
    units = torch.from_numpy(reference_expected["face__units"][:1]).long()
    with torch.inference_mode():
        out = models["f_"](units, torch.cat([masked, x], dim=1)).numpy()
    assert np.abs(out - reference_expected["face__out"][:10]).max() <= TOL


def test_a_small_renderer_keeps_its_own_unit_table(containers, tmp_path):
    """Packed beside a 1000-unit vocoder, a 100-unit renderer still loads as itself, not grown to 1000 rows."""
    torch.manual_seed(0)
    save_torch(renderer_container(FaceRenderer(100, width=16)), tmp_path / "f_small")
    pack({"en": containers / "g_embedded"}, tmp_path / "f_small", tmp_path / "small.pt")
    direct = load_face_renderer(tmp_path / "f_small")
    vocoder, face = load_renderer(tmp_path / "small.pt", device="cpu", backend="eager")
    assert vocoder.dict.num_embeddings == 1000 and (face.num_embeddings, face.width) == (100, 16)
    want, got = direct.state_dict(), face.state_dict()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
