"""FaceRenderer: the released AV2AV key layout and the reference numbers of the fixture case `face`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REFERENCE

from unit2av.errors import Unit2AVError
from unit2av.face.checkpoint import load_face_renderer
from unit2av.face.model import FaceRenderer
from unit2av.io.safe import load_torch


def _windows(crops_bgr: np.ndarray) -> torch.Tensor:
    """(T, 96, 96, 3) uint8 -> (T, 6, 96, 96): masked (lower half zero) + reference, per the fixture README."""
    x = torch.from_numpy(crops_bgr).float().div(255).permute(0, 3, 1, 2)
    masked = x.clone()
    masked[:, :, 48:] = 0
    return torch.cat([masked, x], dim=1)


@pytest.fixture(scope="module")
def video_state(reference_dir):
    return load_torch(reference_dir / "unit2av_ref.pt")["video"]


def test_keys_and_shapes_match_the_released_layout():
    spec = json.loads((REFERENCE / "weights_spec.json").read_text())["video"]
    model = FaceRenderer()
    state = model.state_dict()
    assert list(state) == list(spec)
    assert {k: list(v.shape) for k, v in state.items()} == {k: v[0] for k, v in spec.items()}
    assert sum(p.numel() for p in model.parameters()) == 36_100_147


def test_reproduces_reference_face_case(video_state, reference_expected):
    model = load_face_renderer({"video": video_state})
    units = torch.from_numpy(reference_expected["face__units"]).long()
    faces = _windows(reference_expected["face__crops_bgr"])
    with torch.no_grad():
        out = model(units, faces)
    expected = reference_expected["face__out"]
    assert out.shape == expected.shape == (20, 3, 96, 96)
    assert np.abs(out.numpy() - expected).max() <= 1e-4


def test_frames_are_independent_of_their_neighbours_faces(video_state, reference_expected):
    """A black window for one frame (a None box) leaves the other frames' output unchanged."""
    model = load_face_renderer({"video": video_state})
    units = torch.from_numpy(reference_expected["face__units"][:1]).long()
    faces = _windows(reference_expected["face__crops_bgr"][:10])
    blacked = faces.clone()
    blacked[3] = 0
    with torch.no_grad():
        a, b = model(units, faces), model(units, blacked)
    keep = [i for i in range(10) if i != 3]
    assert torch.allclose(a[keep], b[keep], atol=1e-5)
    assert not torch.allclose(a[3], b[3], atol=1e-3)


def test_size_is_read_off_the_weights_and_other_keys_are_strict(video_state):
    small = FaceRenderer(num_embeddings=100, width=64).state_dict()
    model = load_face_renderer(small)  # a bare state dict: built at its width and unit count
    assert (model.width, model.num_embeddings) == (64, 100) and not model.training
    assert all(torch.equal(small[k], v) for k, v in model.state_dict().items())
    broken = dict(video_state)
    del broken["output_block.1.bias"]
    with pytest.raises(Unit2AVError, match="missing keys: output_block.1.bias"):
        load_face_renderer({"video": broken}, source="broken.pt")
    wrong = dict(video_state)
    wrong["unit2lip.linear1.weight"] = torch.zeros(8, 512)
    with pytest.raises(Unit2AVError, match=r"unit2lip.linear1.weight \(8, 512\)"):
        load_face_renderer({"video": wrong})
    with pytest.raises(Unit2AVError, match="no 2-D 'unit_embed.weight'"):
        load_face_renderer({"video": {k: v for k, v in video_state.items() if k != "unit_embed.weight"}})
