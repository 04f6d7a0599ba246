"""`unit2av dub`: the whole AV2AV pipeline on the sample clip with the three fixture models, and each
stage's intermediate file equal to that stage's own command run alone."""

from __future__ import annotations

import shutil

import av
import numpy as np
import pytest
from conftest import SAMPLE_VIDEO

from unit2av.cli import main
from unit2av.io.boxes import read_boxes
from unit2av.io.media import iter_frames, probe_video
from unit2av.prepare.landmarks import landmarks_available


@pytest.fixture(scope="module")
def container(tmp_path_factory, reference_dir, reference_config):
    """The reference AV2AV container plus its English vocoder packed again as "es" (the clip is English speech)."""
    models = tmp_path_factory.mktemp("dub_models")
    for name in ("g_00000000", "unit2av_ref.pt"):
        shutil.copy(reference_dir / name, models / name)
    shutil.copy(reference_config, models / "config.json")  # the vocoders' config, found beside them
    out = models / "unit2av_es.pt"
    assert (
        main(
            [
                "pack",
                "--vocoder",
                f"es={models / 'g_00000000'}",
                "--face",
                str(models / "unit2av_ref.pt"),
                "--base",
                str(models / "unit2av_ref.pt"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="module")
def dubbed(tmp_path_factory, av2unit_ckpt, utut_ckpt, container, reference_config):
    if not landmarks_available():
        pytest.skip("mouth crops need the landmark model: pip install 'unit2av[mouth]'")
    out = tmp_path_factory.mktemp("dub")  # boxes and mouth crops made by dub itself
    rc = main(
        [
            "dub",
            "--in-vid-path",
            str(SAMPLE_VIDEO),
            "--out-vid-path",
            str(out / "en_es.mp4"),
            "--src-lang",
            "en",
            "--tgt-lang",
            "es",
            "--av2unit-path",
            str(av2unit_ckpt),
            "--utut-path",
            str(utut_ckpt),
            "--unit2av-path",
            str(container),
            "--config",
            str(reference_config),
            "--keep-intermediate",
            str(out / "work"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 0
    return out


def test_dub_writes_h264_aac_as_long_as_the_new_speech(dubbed):
    with av.open(str(dubbed / "en_es.mp4")) as c:
        codecs = {s.type: s.codec_context.name for s in c.streams}
    assert codecs == {"video": "h264", "audio": "aac"}
    info = probe_video(dubbed / "en_es.mp4")
    target = (dubbed / "work" / "TRajLqEaWhQ_00002.es.txt").read_text().split()
    assert target and all(t.isdigit() for t in target)
    speech = dubbed / "work" / "TRajLqEaWhQ_00002.es.wav"
    import soundfile as sf

    wav, sr = sf.read(speech)
    # 25 fps video exactly covers the speech (one frame per 640 samples at 16 kHz), not the 70-frame source
    assert sr == 16000 and info.num_frames == -(-len(wav) // 640)
    runs = 1 + sum(a != b for a, b in zip(target, target[1:]))  # repeats are merged, durations predicted
    assert len(wav) >= 320 * runs  # every unit voiced for at least one 20 ms step


def test_intermediates_equal_the_stage_commands(dubbed, av2unit_ckpt, utut_ckpt, container, reference_config, tmp_path):
    work = dubbed / "work"
    src = tmp_path / "src.txt"
    boxes, lip = work / "TRajLqEaWhQ_00002.bbox.pkl", work / "TRajLqEaWhQ_00002.lip.mp4"
    assert len(read_boxes(boxes)) == 70 and probe_video(lip).num_frames == 70
    assert (
        main(
            [
                "av2unit",
                "--in-vid-path",
                str(SAMPLE_VIDEO),
                "--in-lip-path",
                str(lip),
                "--out-unit-path",
                str(src),
                "--av2unit-path",
                str(av2unit_ckpt),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert src.read_text().split() == (work / "TRajLqEaWhQ_00002.en.txt").read_text().split()
    tgt = tmp_path / "tgt.txt"
    assert (
        main(
            [
                "translate",
                "--in-unit-path",
                str(src),
                "--out-unit-path",
                str(tgt),
                "--utut-path",
                str(utut_ckpt),
                "--src-lang",
                "en",
                "--tgt-lang",
                "es",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert tgt.read_text().split() == (work / "TRajLqEaWhQ_00002.es.txt").read_text().split()
    out = tmp_path / "render.mp4"
    assert (
        main(
            [
                "render",
                "--in-unit-path",
                str(tgt),
                "--in-vid-path",
                str(SAMPLE_VIDEO),
                "--in-bbox-path",
                str(boxes),
                "--out-vid-path",
                str(out),
                "--tgt-lang",
                "es",
                "--unit2av-path",
                str(container),
                "--config",
                str(reference_config),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    ours, theirs = list(iter_frames(dubbed / "en_es.mp4")), list(iter_frames(out))
    assert len(ours) == len(theirs)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_unknown_target_language_is_one_line_and_writes_nothing(
    av2unit_ckpt, utut_ckpt, reference_dir, reference_config, tmp_path, capsys
):
    out = tmp_path / "x.mp4"
    rc = main(
        [
            "dub",
            "--in-vid-path",
            str(SAMPLE_VIDEO),
            "--out-vid-path",
            str(out),
            "--src-lang",
            "es",
            "--tgt-lang",
            "xx",
            "--av2unit-path",
            str(av2unit_ckpt),
            "--utut-path",
            str(utut_ckpt),
            "--unit2av-path",
            str(reference_dir / "unit2av_ref.pt"),
            "--config",
            str(reference_config),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "xx" in err[0] and "en" in err[0]
    assert not out.exists()
