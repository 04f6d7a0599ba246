"""FaceRenderer: the released AV2AV key layout and the reference numbers of the fixture case `face`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REFERENCE

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
    model = FaceRenderer()
    model.load_released(video_state)
    model.eval()
    units = torch.from_numpy(reference_expected["face__units"]).long()
    faces = _windows(reference_expected["face__crops_bgr"])
    with torch.no_grad():
        out = model(units, faces)
    expected = reference_expected["face__out"]
    assert out.shape == expected.shape == (20, 3, 96, 96)
    assert np.abs(out.numpy() - expected).max() <= 1e-4


def test_frames_are_independent_of_their_neighbours_faces(video_state, reference_expected):
    """A black window for one frame (a None box) leaves the other frames' output unchanged."""
    model = FaceRenderer()
    model.load_released(video_state)
    model.eval()
    units = torch.from_numpy(reference_expected["face__units"][:1]).long()
    faces = _windows(reference_expected["face__crops_bgr"][:10])
    blacked = faces.clone()
    blacked[3] = 0
    with torch.no_grad():
        a, b = model(units, faces), model(units, blacked)
    keep = [i for i in range(10) if i != 3]
    assert torch.allclose(a[keep], b[keep], atol=1e-5)
    assert not torch.allclose(a[3], b[3], atol=1e-3)


def test_larger_unit_table_copies_last_row_and_other_keys_are_strict(video_state):
    model = FaceRenderer(num_embeddings=1024)
    model.load_released(video_state)
    table = model.unit_embed.weight.detach()
    assert table.shape == (1024, 512)
    assert torch.equal(table[:1000], video_state["unit_embed.weight"])
    assert torch.equal(table[1000:], video_state["unit_embed.weight"][-1:].expand(24, -1))
    broken = dict(video_state)
    del broken["output_block.1.bias"]
    with pytest.raises(RuntimeError, match="output_block.1.bias"):
        FaceRenderer().load_released(broken)
    wrong = dict(video_state)
    wrong["unit2lip.linear1.weight"] = torch.zeros(8, 512)
    with pytest.raises(RuntimeError, match="unit2lip.linear1.weight"):
        FaceRenderer().load_released(wrong)
