"""unit2av app without a browser: the --root fence, a tab's edits/undo/save, the strip, the render, the command.

The real page in a real browser is tests/test_app_browser.py.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys

import numpy as np
import pytest
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av.app import strip as st
from unit2av.app.session import open_video
from unit2av.app.workspace import BUNDLED, BUNDLED_LANG, Workspace
from unit2av.cli import main as cli_main
from unit2av.demo.video import asset
from unit2av.errors import Unit2AVError
from unit2av.io.boxes import read_boxes
from unit2av.io.media import iter_frames, probe_video


@pytest.fixture()
def root(tmp_path):
    """A --root folder with the sample clip, its box file and ~2 s of real units."""
    r = tmp_path / "root"
    r.mkdir()
    for src in (SAMPLE_VIDEO, SAMPLE_BBOX):
        shutil.copyfile(src, r / src.name)
    script = json.loads(asset("demo_script.json").read_text())
    (r / "units.txt").write_text(" ".join(map(str, script["sentences"][1]["units"])))
    return r


@pytest.fixture()
def ws(root, tmp_path):
    w = Workspace(root, work=tmp_path / "work")
    yield w
    w.close()


def test_paths_outside_root_are_refused(ws, root, tmp_path):
    assert ws.existing(SAMPLE_VIDEO.name, "video") == root / SAMPLE_VIDEO.name
    assert ws.existing(str(root / SAMPLE_VIDEO.name)) == root / SAMPLE_VIDEO.name
    (tmp_path / "secret.pkl").write_bytes(b"x")
    (root / "link.pkl").symlink_to(tmp_path / "secret.pkl")
    for bad in ("../secret.pkl", str(tmp_path / "secret.pkl"), "/etc/hostname", "link.pkl", "sub/../../secret.pkl"):
        with pytest.raises(Unit2AVError, match="is outside the --root folder"):
            ws.resolve(bad)
    with pytest.raises(Unit2AVError, match="no video given"):
        ws.resolve("  ", "video")
    with pytest.raises(Unit2AVError, match="video not found"):
        ws.existing("missing.mp4", "video")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.mp4").write_bytes(b"")
    assert ws.list_files((".mp4",)) == [SAMPLE_VIDEO.name]
    assert sorted(ws.list_files((".pkl", ".txt"))) == sorted([SAMPLE_BBOX.name, "link.pkl", "units.txt"])
    with pytest.raises(Unit2AVError, match="only the bundled demo models"):
        ws.model("other.pt")
    with pytest.raises(Unit2AVError, match="--root must be an existing folder"):
        Workspace(root / "nope")


def test_edit_undo_pick_and_the_strip(ws, root, capsys):
    s = open_video(ws.existing(SAMPLE_VIDEO.name), ws.session_folder())
    assert s.num_frames == 70 and len(s.frames.jpegs) == 70 and sorted(s.frames.thumbs) == st.thumb_frames(70)
    with pytest.raises(Unit2AVError, match="has no boxes yet"):
        s.edit("1:2")
    s.load(root / SAMPLE_BBOX.name)
    original = read_boxes(SAMPLE_BBOX)
    assert "0 without a box" in s.summary()
    before = s.strip()

    assert s.edit("10:20, 30") == [(10, 20), (30, 31)]
    assert [i for i, b in enumerate(s.boxes) if b is None] == [*range(10, 20), 30]
    assert "11 without a box (10:20, 30:31, end exclusive)" in s.summary()
    img = s.strip()
    th = img.shape[0] - st.BAR_HEIGHT - st.TICK_HEIGHT  # thumbnail row height
    centre = [int((f + 0.5) * st.STRIP_WIDTH / 70) for f in range(70)]  # pixel column of each frame
    bar = img[th + st.BAR_HEIGHT // 2]
    assert [tuple(bar[centre[f]]) for f in (5, 15, 30, 50)] == [st.BOX_BGR, st.EDITED_BGR, st.EDITED_BGR, st.BOX_BGR]
    tinted = before[16:th, centre[15]] * (1 - st.SHADE_ALPHA) + np.array(st.NONE_BGR) * st.SHADE_ALPHA
    assert np.abs(img[16:th, centre[15]] - tinted).max() <= 1  # the thumbnail over frame 15 is tinted red
    assert np.array_equal(img[5:th, centre[50]], before[5:th, centre[50]])

    s.edit("12:14", "restore")
    assert s.boxes[11] is None and s.boxes[14] is None
    assert np.array_equal(s.boxes[12], original[12]) and np.array_equal(s.boxes[13], original[13])
    assert s.undo() and s.boxes[12] is None
    assert s.undo() and all(np.array_equal(a, b) for a, b in zip(s.boxes, original))
    assert not s.undo()

    x = lambda f: (f + 0.5) * st.STRIP_WIDTH / 70  # noqa: E731
    assert s.pick(x(40)) == (40, None) and s.anchor == 40
    assert s.pick(x(33)) == (33, "33:41") and s.anchor is None and s.cursor == 33
    view = s.view(33)
    assert view.shape == (224, 224, 3)
    green = np.all(view == (0, 255, 0), axis=2)  # the box outline of prepare.draw
    x1, y1, x2, y2 = (int(round(v)) for v in original[33])
    assert green[max(y1, 0) : min(y2, 224), max(x1, 0)].mean() > 0.9

    with pytest.raises(Unit2AVError) as err:
        s.edit("500:600")
    assert cli_main(["bbox", "edit", str(root / SAMPLE_BBOX.name), "--none", "500:600"]) == 2
    cli_problem = capsys.readouterr().err.strip().split(": error: ", 1)[1].split(": ", 1)[1]
    assert str(err.value) == f"{s.video}: {cli_problem}"  # the CLI's one line, naming the clip
    with pytest.raises(Unit2AVError, match="no frame range given"):
        s.edit(" ")


def test_save_is_atomic_and_keeps_the_original_once(ws, root):
    s = open_video(ws.existing(SAMPLE_VIDEO.name), ws.session_folder())
    s.load(ws.existing(SAMPLE_BBOX.name))
    target = s.default_target()
    assert target == root / SAMPLE_BBOX.name
    s.edit("10:20")
    written, backup = s.save(target)
    assert backup == root / (SAMPLE_BBOX.name + ".bak") and backup.read_bytes() == SAMPLE_BBOX.read_bytes()
    s.edit("0:2")
    assert s.save(target) == (target, None)  # the .bak still holds the original
    assert backup.read_bytes() == SAMPLE_BBOX.read_bytes()
    saved = read_boxes(target)
    assert [i for i, b in enumerate(saved) if b is None] == [0, 1, *range(10, 20)]
    np.testing.assert_array_equal(saved[40], read_boxes(SAMPLE_BBOX)[40])
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [SAMPLE_VIDEO.name, SAMPLE_BBOX.name, SAMPLE_BBOX.name + ".bak", "units.txt"]
    )  # no temporary files left
    assert read_boxes(s.download_copy()) is not None
    other = root / "other.bbox.pkl"
    assert s.save(other) == (other, None)  # a new file: nothing to keep
    with pytest.raises(Unit2AVError, match="has 3 boxes but the video"):
        s.set_boxes([None] * 3, "test")


def test_the_browser_gets_an_h264_copy_of_other_codecs(ws):
    s = open_video(ws.existing(SAMPLE_VIDEO.name), ws.session_folder())
    copy = s.playable()  # the sample is MPEG-4 part 2, which browsers do not play
    assert copy != s.video and copy.parent == s.folder
    import av

    with av.open(str(copy)) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio
    assert probe_video(copy).num_frames == 70
    other = open_video(copy, ws.session_folder())
    assert other.playable() == copy  # already H.264


def test_render_in_the_app_equals_unit2av_render(ws, root, tmp_path):
    from unit2av.app.dub import RenderOptions, dub

    s = open_video(ws.existing(SAMPLE_VIDEO.name), ws.session_folder())
    s.load(ws.existing(SAMPLE_BBOX.name))
    s.edit("10:20")
    with pytest.raises(Unit2AVError, match="has no vocoder for language 'xx'"):
        dub(s, ws, root / "units.txt", BUNDLED, "xx")
    out = dub(s, ws, root / "units.txt", BUNDLED, None, RenderOptions("cpu"))
    assert out.frames == probe_video(out.video).num_frames > 40 and 1.5 < out.seconds < 3
    argv = shlex.split(out.command)
    assert argv[argv.index("--tgt-lang") + 1] == BUNDLED_LANG
    argv[argv.index("--out-vid-path") + 1] = str(tmp_path / "cli.mp4")
    assert cli_main(argv[1:]) == 0
    app_frames, cli_frames = list(iter_frames(out.video)), list(iter_frames(tmp_path / "cli.mp4"))
    assert len(app_frames) == len(cli_frames)
    assert all(np.array_equal(a, b) for a, b in zip(app_frames, cli_frames))
    source = list(iter_frames(SAMPLE_VIDEO))
    assert np.abs(app_frames[15].astype(int) - source[15]).mean() < 3  # frame 15 has no box: left as it was
    assert np.abs(app_frames[25].astype(int) - source[25]).mean() > 3  # a face was drawn at frame 25
    import cv2

    preview, spectrogram = cv2.imread(str(out.preview)), cv2.imread(str(out.spectrogram))
    assert preview.shape == (2 * (2 * 96 + 4), 8 * 2 * 96, 3)  # the demo's strip: 8 source over 8 rendered
    assert np.abs(preview[:192].astype(int) - preview[-192:]).mean() > 5  # rendered mouths differ from the source
    assert abs(spectrogram.shape[1] - out.seconds * 100) <= 2  # 100 px per second of the dubbed soundtrack


def test_app_command_names_the_extra_when_gradio_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert cli_main(["app", "--root", "."]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unit2av app: error:") and "pip install 'unit2av[app]'" in err and "\n" not in err


def test_page_builds_with_every_control(ws):
    pytest.importorskip("gradio")
    from unit2av.app.ui import build_app
    from unit2av.commands import app as cmd

    demo = build_app(ws)
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert {
        "u2av-video",
        "u2av-open",
        "u2av-status",
        "u2av-strip",
        "u2av-detect",
        "u2av-ranges",
        "u2av-none",
        "u2av-restore",
        "u2av-undo",
        "u2av-save",
        "u2av-render",
        "u2av-dub",
        "u2av-cmp-orig",
    } <= ids
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    args = p.parse_args(["--root", "r"])
    assert (args.host, args.port, args.models, args.backend) == ("127.0.0.1", 7860, None, "auto")
    assert cmd._is_loopback("127.0.0.1") and cmd._is_loopback("localhost") and not cmd._is_loopback("0.0.0.0")


def test_models_folder_lists_containers_and_their_languages(root, tmp_path):
    from unit2av.pipeline.pack import pack

    models = tmp_path / "models"
    pack({"ko": asset("vocoder.pt"), "en": asset("vocoder.pt")}, asset("face_renderer.pt"), models / "sub" / "two.pt")
    (models / "notes.txt").write_text("not a model")
    (tmp_path / "outside.pt").write_bytes((models / "sub" / "two.pt").read_bytes())
    w = Workspace(root, models=models, work=tmp_path / "work")
    assert w.model_choices() == [BUNDLED, "sub/two.pt"]
    assert w.model("sub/two.pt") == (models / "sub" / "two.pt", ["en", "ko"])
    container, langs = w.model(BUNDLED)
    assert langs == [BUNDLED_LANG] and container.parent.parent == w.work
    for bad in ("../outside.pt", "notes.txt", "missing.pt"):
        with pytest.raises(Unit2AVError, match="is not a model container under"):
            w.model(bad)
    with pytest.raises(Unit2AVError, match="--models must be an existing folder"):
        Workspace(root, models=tmp_path / "nope")
