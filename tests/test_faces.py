"""Face boxes: detection on the real sample clip, tracking, gap filling, edit/info/show, bad input."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av.cli import main
from unit2av.errors import Unit2AVError
from unit2av.io.boxes import read_boxes
from unit2av.io.media import iter_frames, probe_video
from unit2av.io.video_writer import VideoWriter
from unit2av.prepare.faces import DetectOptions, detect_video, dlib_available
from unit2av.prepare.track import fill_gaps, from_box_list, iou, smooth, track_one_face

DETECTORS = [
    "haar",
    pytest.param("dlib", marks=pytest.mark.skipif(not dlib_available(), reason="dlib-bin not installed")),
]


@pytest.fixture(scope="module")
def sample_frames() -> list[np.ndarray]:
    return list(iter_frames(SAMPLE_VIDEO))


@pytest.fixture(scope="module")
def sample_boxes() -> np.ndarray:
    return from_box_list(read_boxes(SAMPLE_BBOX))  # (70, 4)


def write_clip(path, frames: list[np.ndarray]) -> None:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps=25) as writer:
        for f in frames:
            writer.write(f)


# --------------------------------------------------------------------------- the sample clip
@pytest.mark.parametrize("detector", DETECTORS)
def test_sample_clip_matches_provided_boxes(tmp_path, sample_boxes, detector, capsys):
    out = tmp_path / "s.bbox.pkl"
    rc = main(
        ["bbox", "detect", "--video", str(SAMPLE_VIDEO), "--out", str(out), "--detector", detector, "--no-progress"]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "frames/s" in printed and "without a face" in printed
    raw = pickle.loads(out.read_bytes())  # our own output: the seed's plain format
    assert isinstance(raw, list) and len(raw) == 70
    assert all(b is None or (isinstance(b, np.ndarray) and b.dtype == np.float32 and b.shape == (4,)) for b in raw)
    boxes = from_box_list(raw)
    found = ~np.isnan(boxes).any(axis=1)
    assert found.mean() >= 0.95
    overlap = np.where(found, iou(np.nan_to_num(boxes), sample_boxes), 0.0)
    assert (overlap >= 0.5).mean() >= 0.90, overlap
    # the av2av style is tall like the provided boxes; square is not
    h_over_w = (boxes[found, 3] - boxes[found, 1]) / (boxes[found, 2] - boxes[found, 0])
    assert 1.15 < np.median(h_over_w) < 1.5


def test_square_style_and_pads(sample_boxes):
    base = detect_video(SAMPLE_VIDEO, DetectOptions(detector="haar", box_style="square", smooth=1), progress=False)
    padded = detect_video(
        SAMPLE_VIDEO, DetectOptions(detector="haar", box_style="square", smooth=1, pads=(0, 10, 3, 4)), progress=False
    )
    a, b = from_box_list(base.boxes), from_box_list(padded.boxes)
    ok = ~np.isnan(a).any(axis=1)
    np.testing.assert_allclose((a[ok, 2] - a[ok, 0]), (a[ok, 3] - a[ok, 1]), atol=1e-3)  # square
    np.testing.assert_allclose(b[ok] - a[ok], np.tile([-3, 0, 4, 10], (ok.sum(), 1)), atol=1e-3)
    # square boxes miss the provided tall boxes' geometry: lower IoU than the av2av style
    av = from_box_list(detect_video(SAMPLE_VIDEO, DetectOptions(detector="haar", smooth=1), progress=False).boxes)
    assert np.nanmean(iou(av[ok], sample_boxes[ok])) > np.nanmean(iou(a[ok], sample_boxes[ok])) + 0.1


# --------------------------------------------------------------------------- tracking
def two_face_frames(frames: list[np.ndarray], enter: int) -> list[np.ndarray]:
    """Left: the sample shrunk to 180 px; from ``enter`` on, a larger copy (224 px) on the right."""
    out = []
    for i, f in enumerate(frames):
        canvas = np.full((264, 520, 3), 90, np.uint8)
        canvas[40:220, 10:190] = cv2.resize(f, (180, 180), interpolation=cv2.INTER_AREA)
        if i >= enter:
            canvas[20:244, 280:504] = frames[(i + 30) % len(frames)]
        out.append(canvas)
    return out


def test_second_larger_face_does_not_steal_the_track(tmp_path, sample_frames):
    clip = tmp_path / "two.mp4"
    write_clip(clip, two_face_frames(sample_frames, enter=30))
    for name in ("tracked", "largest", "index1"):
        extra = {"largest": ["--largest"], "index1": ["--face-index", "1"]}.get(name, [])
        assert (
            main(
                [
                    "bbox",
                    "detect",
                    "--video",
                    str(clip),
                    "--out",
                    str(tmp_path / f"{name}.pkl"),
                    "--detector",
                    "haar",
                    "--no-progress",
                    *extra,
                ]
            )
            == 0
        )
    tracked = from_box_list(read_boxes(tmp_path / "tracked.pkl"))
    cx = (tracked[:, 0] + tracked[:, 2]) / 2
    assert np.isnan(cx).mean() <= 0.05
    assert np.nanmax(cx) < 260  # always the left face
    largest = from_box_list(read_boxes(tmp_path / "largest.pkl"))
    right = (largest[:, 0] + largest[:, 2]) / 2 > 260
    assert right[35:].mean() > 0.8 and not right[:28].any()  # the check above can fail
    index1 = read_boxes(tmp_path / "index1.pkl")
    assert all(b is None for b in index1[:28])  # no second face yet
    assert all(b is not None and (b[0] + b[2]) / 2 > 260 for b in index1[35:])


def test_track_one_face_on_detection_lists():
    big, small, other = np.array([10, 10, 110, 110.0]), np.array([200, 20, 240, 60.0]), np.array([300, 0, 500, 200.0])
    dets = [np.array([small, big]), np.array([big + 2, other]), np.zeros((0, 4)), np.array([other, big + 4])]
    track = track_one_face(dets)
    np.testing.assert_array_equal(track[0], big)
    np.testing.assert_array_equal(track[1], big + 2)  # "other" is larger but does not overlap
    assert np.isnan(track[2]).all()
    np.testing.assert_array_equal(track[3], big + 4)
    np.testing.assert_array_equal(track_one_face(dets, largest=True)[1], other)
    np.testing.assert_array_equal(track_one_face(dets, face_index=1)[0], small)  # 2nd from the left


def test_fill_gaps_and_smooth_by_hand():
    t = np.full((8, 4), np.nan)
    t[0], t[4], t[7] = [0, 0, 10, 10], [4, 8, 14, 18], [0, 0, 1, 1]
    filled = fill_gaps(t, max_gap=3)
    np.testing.assert_allclose(filled[2], [2, 4, 12, 14])  # halfway between frames 0 and 4
    np.testing.assert_allclose(filled[5], [8 / 3, 16 / 3, 29 / 3, 37 / 3])
    assert np.isnan(fill_gaps(t, max_gap=2)[1:4]).all()  # gap of 3 > 2 stays empty
    s = smooth(np.array([[0, 0, 0, 0], [3, 3, 3, 3], [6, 6, 6, 6], [np.nan] * 4, [9, 9, 9, 9.0]]), 3)
    np.testing.assert_allclose(s[:3, 0], [1.5, 3, 4.5])  # window shrinks at run ends
    assert np.isnan(s[3]).all() and s[4, 0] == 9  # never averaged across a missing frame


@pytest.mark.parametrize("hidden, expect_box", [(3, True), (40, False)])
def test_hidden_face_interpolated_or_none(tmp_path, sample_frames, hidden, expect_box):
    start = 20
    frames = [f if not start <= i < start + hidden else np.full_like(f, 128) for i, f in enumerate(sample_frames)]
    clip = tmp_path / "hidden.mp4"
    write_clip(clip, frames)
    res = detect_video(clip, DetectOptions(detector="haar", max_gap=10, smooth=1), progress=False)
    boxes = from_box_list(res.boxes)
    gap = boxes[start : start + hidden]
    if expect_box:
        assert not np.isnan(gap).any()
        lo = np.minimum(boxes[start - 1], boxes[start + hidden])
        hi = np.maximum(boxes[start - 1], boxes[start + hidden])
        assert ((gap >= lo - 1e-3) & (gap <= hi + 1e-3)).all()  # between its neighbours
    else:
        assert np.isnan(gap).all()
        assert res.missing == hidden
        assert not np.isnan(boxes[start + hidden + 1 :]).any()  # the face is found again afterwards


# --------------------------------------------------------------------------- edit / info
def test_edit_ranges_and_backup(tmp_path, capsys):
    b = tmp_path / "b.pkl"
    b.write_bytes(SAMPLE_BBOX.read_bytes())
    original = b.read_bytes()
    assert main(["bbox", "edit", str(b), "--none", "41:60", "--none", "0:3"]) == 0
    assert (tmp_path / "b.pkl.bak").read_bytes() == original
    edited = read_boxes(b)
    assert len(edited) == 70
    assert [i for i, x in enumerate(edited) if x is None] == [0, 1, 2, *range(41, 60)]
    np.testing.assert_array_equal(edited[60], read_boxes(SAMPLE_BBOX)[60])
    assert main(["bbox", "edit", str(b), "--keep", "10:20", "--out", str(tmp_path / "k.pkl")]) == 0
    kept = read_boxes(tmp_path / "k.pkl")
    assert [i for i, x in enumerate(kept) if x is not None] == list(range(10, 20))
    capsys.readouterr()
    assert main(["bbox", "info", str(b)]) == 0
    out = capsys.readouterr().out
    assert "frames: 70" in out and "None: 22" in out and "0:3, 41:60" in out


def test_edit_range_outside_clip_is_refused(tmp_path, capsys):
    b = tmp_path / "b.pkl"
    b.write_bytes(SAMPLE_BBOX.read_bytes())
    assert main(["bbox", "edit", str(b), "--none", "41:84"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "70 frames" in err and "41:84" in err
    assert b.read_bytes() == SAMPLE_BBOX.read_bytes() and not (tmp_path / "b.pkl.bak").exists()
    assert main(["bbox", "edit", str(b), "--none", "5:x"]) == 2


def test_info_counts_boxes_outside_the_frame(tmp_path, capsys):
    b = tmp_path / "o.pkl"
    boxes = [
        np.array(x, np.float32) if x else None
        for x in ([-5, 10, 100, 100], [10, 10, 230, 100], None, [0, 0, 224, 224], [1, 2, 50, 60])
    ]
    b.write_bytes(pickle.dumps(boxes))
    assert main(["bbox", "info", str(b), "--video", str(SAMPLE_VIDEO)]) == 0
    out = capsys.readouterr().out
    assert "outside the 224x224 frame: 2 (frames 0:2)" in out
    assert "None: 1 in ranges 2:3" in out
    assert "49.0 / 149.5 / 224.0" in out  # widths 105, 220, 224, 49


# --------------------------------------------------------------------------- show
def test_show_sheet_draws_boxes_where_they_are(tmp_path):
    box = [50, 40, 170, 190]
    boxes = [np.array(box, np.float32)] * 70
    boxes[10] = None
    b = tmp_path / "b.pkl"
    b.write_bytes(pickle.dumps(boxes))
    sheet_path = tmp_path / "sheet.png"
    assert (
        main(
            ["bbox", "show", "--video", str(SAMPLE_VIDEO), "--bbox", str(b), "--out", str(sheet_path), "--every", "10"]
        )
        == 0
    )
    sheet = cv2.imread(str(sheet_path))
    gap, tile, cols = 4, 224, 6  # layout: 4 px gaps, 224 px tiles, 6 columns; 7 tiles -> 2 rows
    assert sheet.shape == (gap + 2 * (tile + gap), gap + cols * (tile + gap), 3)
    green = np.array([0, 255, 0])
    for k in range(7):
        x0, y0 = gap + (k % cols) * (tile + gap), gap + (k // cols) * (tile + gap)
        edges = [
            sheet[y0 + 100, x0 + 50],
            sheet[y0 + 100, x0 + 170],
            sheet[y0 + 40, x0 + 110],
            sheet[y0 + 190, x0 + 110],
        ]
        inside = sheet[y0 + 100, x0 + 110]
        if k == 1:  # frame 10 has no box
            assert not any((e == green).all() for e in edges)
        else:
            assert all((e == green).all() for e in edges), k
        assert not (inside == green).all()


def test_show_overlay_video(tmp_path):
    b = tmp_path / "b.pkl"
    b.write_bytes(pickle.dumps([np.array([50, 40, 170, 190], np.float32)] * 70))
    out = tmp_path / "overlay.mp4"
    assert main(["bbox", "show", "--video", str(SAMPLE_VIDEO), "--bbox", str(b), "--out", str(out)]) == 0
    info = probe_video(out)
    assert info.num_frames == 70 and info.has_audio
    frame = next(iter_frames(out)).astype(int)
    b_, g, r = frame[100, 50]
    assert g > 180 and b_ < 100 and r < 100  # the green left edge survives H.264


# --------------------------------------------------------------------------- bad input
def test_unreadable_video(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    assert main(["bbox", "detect", "--video", str(bad), "--out", str(tmp_path / "x.pkl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.mp4" in err
    assert not (tmp_path / "x.pkl").exists()


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("kind", ["payload", "dict", "strings", "five"])
def test_box_pickle_that_is_not_a_box_list_is_refused(tmp_path, capsys, kind):
    target = tmp_path / "created_by_pickle.txt"
    obj = {
        "payload": [_Payload(str(target))],
        "dict": {"a": 1},
        "strings": ["x", "y"],
        "five": [np.zeros(5, np.float32)],
    }[kind]
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(obj))
    assert main(["bbox", "info", str(evil)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "evil.pkl" in err
    assert not target.exists()
    with pytest.raises(Unit2AVError):
        read_boxes(evil)
