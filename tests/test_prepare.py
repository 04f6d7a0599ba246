"""`unit2av prepare` on the real sample clip: audio, speaker embedding, boxes, units, next command."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av.cli import build_parser, main
from unit2av.io.boxes import read_boxes
from unit2av.io.media import iter_frames, read_audio_track
from unit2av.io.safe import load_torch
from unit2av.io.video_writer import VideoWriter
from unit2av.prepare.track import from_box_list, iou
from unit2av.prepare.units import fit_kmeans, save_kmeans


@pytest.fixture(scope="module")
def kmeans_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("km") / "km.pt"
    save_kmeans(fit_kmeans([SAMPLE_VIDEO], k=8, progress=False), path)
    return path


def test_prepare_sample_clip(tmp_path, kmeans_file, capsys):
    out = tmp_path / "prep"
    assert (
        main(
            ["prepare", "--video", str(SAMPLE_VIDEO), "--out", str(out), "--kmeans", str(kmeans_file), "--no-progress"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    stem = SAMPLE_VIDEO.stem
    wav, sr = sf.read(out / f"{stem}.wav", dtype="float32")
    track, track_sr = read_audio_track(SAMPLE_VIDEO)
    assert sr == 16000 and wav.ndim == 1
    assert abs(len(wav) - len(track) * 16000 / track_sr) <= 2
    assert np.abs(wav).max() > 0.05  # speech, not silence

    spkr = load_torch(out / f"{stem}.spkr.pt")
    assert spkr.shape == (256,) and abs(float(spkr.norm()) - 1) < 1e-4

    boxes = read_boxes(out / f"{stem}.bbox.pkl")
    assert len(boxes) == 70
    found = np.array([b is not None for b in boxes])
    assert found.mean() >= 0.95
    overlap = iou(np.nan_to_num(from_box_list(boxes)), from_box_list(read_boxes(SAMPLE_BBOX)))
    assert (np.where(found, overlap, 0) >= 0.5).mean() >= 0.9

    unit = load_torch(out / f"{stem}.pt")
    assert unit["code"].dtype == torch.long and len(unit["code"]) == len(wav) // 320
    assert int(unit["code"].max()) < 8 and len(torch.unique(unit["code"])) > 1
    torch.testing.assert_close(unit["spkr"], spkr)

    line = next(x for x in printed.splitlines() if "unit2av render" in x)
    args = build_parser("render").parse_args(shlex.split(line)[1:])  # the render command accepts it
    assert args.in_unit_path == str(out / f"{stem}.pt")
    assert args.in_bbox_path == str(out / f"{stem}.bbox.pkl")
    assert args.in_vid_path == str(SAMPLE_VIDEO)


def test_prepare_without_kmeans_prints_placeholder(tmp_path, capsys):
    assert (
        main(["prepare", "--video", str(SAMPLE_VIDEO), "--out", str(tmp_path), "--no-progress", "--detector", "haar"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "--kmeans" in printed and "UNITS.pt" in printed
    assert not (tmp_path / f"{SAMPLE_VIDEO.stem}.pt").exists()


def test_prepare_bad_inputs(tmp_path, capsys):
    silent = tmp_path / "silent.mp4"
    frames = list(iter_frames(SAMPLE_VIDEO))[:5]
    with VideoWriter(silent, 224, 224) as w:
        for f in frames:
            w.write(f)
    assert main(["prepare", "--video", str(silent), "--out", str(tmp_path / "a")]) == 2
    assert "no audio track" in capsys.readouterr().err

    bad_km = tmp_path / "km.pt"
    torch.save({"centers": torch.zeros(3, 2)}, bad_km)
    assert main(["prepare", "--video", str(SAMPLE_VIDEO), "--out", str(tmp_path / "b"), "--kmeans", str(bad_km)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "km.pt" in err
    assert not (tmp_path / "b").exists()  # refused before anything was written

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"junk" * 50)
    assert main(["prepare", "--video", str(junk), "--out", str(tmp_path / "c")]) == 2
    assert "junk.mp4" in capsys.readouterr().err
