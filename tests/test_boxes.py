"""Box files: one reader with one policy for `bbox info/edit/show`, `render` and face training data."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av.cli import main as cli_main
from unit2av.errors import Unit2AVError
from unit2av.face.data import FaceClip, index_clip
from unit2av.io.boxes import clip_box, crop_face, load_boxes, read_boxes, write_boxes
from unit2av.io.safe import load_plain_pickle


@pytest.fixture()
def odd_boxes(tmp_path):
    """The sample's 70 boxes with one zero-width (frame 3), one inverted (4) and one wholly off-frame box (6)."""
    boxes = [np.asarray(b, np.float32) for b in load_plain_pickle(SAMPLE_BBOX)]
    boxes[3] = np.array([50, 10, 50, 100], np.float32)
    boxes[4] = np.array([150, 100, 60, 20], np.float32)
    boxes[6] = np.array([300, 10, 400, 100], np.float32)
    path = tmp_path / "odd.bbox.pkl"
    write_boxes(boxes, path)
    return path


def test_empty_boxes_read_as_none_by_every_reader(odd_boxes, tmp_path, caplog, capsys):
    with caplog.at_level(logging.WARNING):
        raw = read_boxes(odd_boxes)
    assert raw[3] is None and raw[4] is None and raw[6] is not None
    assert "2 boxes with no area" in caplog.text and "first: frame 3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        clipped = load_boxes(odd_boxes, 70, 224, 224, SAMPLE_VIDEO)  # what render reads
    assert clipped[3] is None and clipped[4] is None and clipped[6] is None  # 6: nothing left inside the frame
    assert clipped[5] == clip_box(raw[5], 224, 224) == tuple(int(v) for v in raw[5])
    assert "1 boxes outside the 224x224 frame" in caplog.text
    # bbox info (which refused the inverted box before) and face training data read the same file
    assert cli_main(["bbox", "info", str(odd_boxes)]) == 0
    assert "None: 2" in capsys.readouterr().out
    units = tmp_path / "u.pt"
    import torch

    torch.save({"code": torch.zeros(140, dtype=torch.long)}, units)
    boxes, valid, _ = index_clip(FaceClip(str(SAMPLE_VIDEO), str(odd_boxes), str(units)))
    assert boxes == clipped and valid.sum() == 67
    # bbox edit repairs the file: what it writes reads back without a warning
    assert cli_main(["bbox", "edit", str(odd_boxes), "--none", "3:5", "--out", str(tmp_path / "fixed.pkl")]) == 0
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert read_boxes(tmp_path / "fixed.pkl")[3:5] == [None, None]
    assert "no area" not in caplog.text


def test_malformed_box_files_are_refused_in_one_line(tmp_path):
    write_boxes([None] * 70, tmp_path / "none.pkl")
    with pytest.raises(Unit2AVError, match="all boxes are None"):
        load_boxes(tmp_path / "none.pkl", 70, 224, 224)
    with pytest.raises(Unit2AVError, match="has 69 boxes but the video v.mp4 has 70 frames"):
        load_boxes(_dump(tmp_path / "short.pkl", list(load_plain_pickle(SAMPLE_BBOX))[:69]), 70, 224, 224, "v.mp4")
    with pytest.raises(Unit2AVError, match="entry 1 has a non-finite coordinate"):
        read_boxes(_dump(tmp_path / "nan.pkl", [None, np.array([1, 2, np.nan, 4], np.float32)]))
    with pytest.raises(Unit2AVError, match="entry 0 is not"):
        read_boxes(_dump(tmp_path / "three.pkl", [np.zeros(3, np.float32)]))
    with pytest.raises(Unit2AVError, match="not a box list"):
        read_boxes(_dump(tmp_path / "number.pkl", 5))


def test_pickled_array_and_crop(tmp_path):
    arr = np.stack([np.asarray(b, np.float32) for b in load_plain_pickle(SAMPLE_BBOX)])  # (70, 4)
    got = read_boxes(_dump(tmp_path / "arr.pkl", arr))
    assert len(got) == 70 and np.array_equal(got[10], arr[10])
    frame = np.zeros((224, 224, 3), np.uint8)
    frame[50:150, 20:60] = 200  # a box half bright (left) and half dark
    face = crop_face(frame, (20, 50, 100, 150))
    assert face.shape == (96, 96, 3) and face[:, :40].min() == 200 and face[:, 56:].max() == 0


def _dump(path, obj):
    from unit2av.io.safe import dump_plain_pickle

    dump_plain_pickle(obj, path)
    return path
