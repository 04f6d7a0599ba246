"""unit2av app's "Translate and dub" without a browser: the fixture mAV-HuBERT, UTUT and AV2AV models on the
sample clip give what ``unit2av.pipeline.dub.dub`` gives, the models are loaded once, paths stay fenced."""

from __future__ import annotations

import shlex
import shutil

import numpy as np
import pytest
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO, SHARED

from unit2av.app import translate_dub as td
from unit2av.app.dub import RenderOptions
from unit2av.app.session import open_video
from unit2av.app.workspace import BUNDLED, Workspace
from unit2av.cli import main as cli_main
from unit2av.errors import Unit2AVError
from unit2av.io.boxes import read_boxes, write_boxes
from unit2av.io.media import iter_frames, probe_video
from unit2av.pipeline.models import ModelCache
from unit2av.prepare.landmarks import landmarks_available

UTUT_DICT = SHARED / "fixtures" / "utut" / "dict.txt"
CPU = RenderOptions("cpu", "eager")  # "auto" would time both inference paths first (calibration)


def pack_es_container(reference_dir, reference_config, build, out):
    """Write ``out``: the reference AV2AV container with its English vocoder packed again as "es" (the clip is
    English speech), the vocoder's config stored inside (``unit2av pack``), built in the folder ``build``."""
    build.mkdir(parents=True, exist_ok=True)
    for name in ("g_00000000", "unit2av_ref.pt"):
        shutil.copy(reference_dir / name, build / name)
    shutil.copy(reference_config, build / "config.json")
    vocoder, face = build / "g_00000000", build / "unit2av_ref.pt"
    assert (
        cli_main(["pack", "--vocoder", f"es={vocoder}", "--face", str(face), "--base", str(face), "--out", str(out)])
        == 0
    )
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory, reference_dir, reference_config, av2unit_ckpt, utut_ckpt):
    """``(root, models)``: the clip and its boxes, UTUT + dict.txt under --root; the mAV-HuBERT checkpoint
    and the "es" AV2AV container (``pack_es_container``) under --models."""
    base = tmp_path_factory.mktemp("app_dub")
    root, models = base / "root", base / "models"
    for d in (root / "utut", models):
        d.mkdir(parents=True)
    for src in (SAMPLE_VIDEO, SAMPLE_BBOX):
        shutil.copyfile(src, root / src.name)
    shutil.copyfile(utut_ckpt, root / "utut" / "utut_tiny.pt")
    shutil.copyfile(UTUT_DICT, root / "utut" / "units.dict.txt")  # not beside-the-checkpoint's name: passed
    shutil.copyfile(av2unit_ckpt, models / "mavhubert_tiny.pt")
    pack_es_container(reference_dir, reference_config, base / "build", models / "av2av_es.pt")
    return root, models


@pytest.fixture()
def ws(folders, tmp_path):
    w = Workspace(folders[0], models=folders[1], work=tmp_path / "work")
    yield w
    w.close()


def _choice(**over) -> td.DubChoice:
    fields = dict(
        av2unit="mavhubert_tiny.pt",
        utut="utut/utut_tiny.pt",
        utut_dict="utut/units.dict.txt",
        model="av2av_es.pt",
        src_lang="en",
        tgt_lang="es",
    )
    return td.DubChoice(**(fields | over))


def _session(ws, edit: str | None = "30:34"):
    s = open_video(ws.existing(SAMPLE_VIDEO.name), ws.session_folder())
    s.load(ws.existing(SAMPLE_BBOX.name))
    if edit:
        s.edit(edit)
    return s


def _needs_landmarks():
    if not landmarks_available():
        pytest.skip("mouth crops need the landmark model: pip install 'unit2av[mouth]'")


def test_app_dub_equals_pipeline_dub_and_its_command(ws, folders, tmp_path):
    _needs_landmarks()
    from unit2av.pipeline.dub import dub

    root, models = folders
    s = _session(ws)
    out = td.translate_dub(s, ws, ModelCache(keep=1), _choice(), CPU)
    box_file = tmp_path / "edited.bbox.pkl"  # the tab's edited boxes, written here by the test
    edited = read_boxes(SAMPLE_BBOX)
    edited[30:34] = [None] * 4
    write_boxes(edited, box_file)
    direct = dub(
        SAMPLE_VIDEO,
        tmp_path / "direct.mp4",
        "en",
        "es",
        models / "mavhubert_tiny.pt",
        root / "utut" / "utut_tiny.pt",
        models / "av2av_es.pt",
        in_bbox_path=box_file,
        utut_dict=UTUT_DICT,
        device="cpu",
        backend="eager",
    )
    assert len(out.source_units) == 140 and out.source_units == direct.source_units  # 2.8 s at 50 Hz
    assert out.target_units and out.target_units == direct.target_units
    app_frames, direct_frames = list(iter_frames(out.video)), list(iter_frames(direct.path))
    assert len(app_frames) == out.frames == probe_video(out.video).num_frames == direct.render.num_frames
    assert all(np.array_equal(a, b) for a, b in zip(app_frames, direct_frames))
    assert abs(out.seconds - direct.render.num_samples / direct.render.sample_rate) < 1e-9
    assert out.video.parent == s.folder and out.spectrogram.is_file() and out.preview.is_file()

    # the command line the page shows: the same inputs (the tab's boxes as saved) and the same video
    argv = shlex.split(out.command)
    assert argv[:2] == ["unit2av", "dub"]
    saved = read_boxes(argv[argv.index("--in-bbox-path") + 1])
    assert [b is None for b in saved] == [b is None for b in edited]
    work = argv[argv.index("--keep-intermediate") + 1]
    assert (s.folder / work).joinpath(f"{SAMPLE_VIDEO.stem}.es.txt").read_text().split() == [
        str(u) for u in direct.target_units
    ]
    argv[argv.index("--out-vid-path") + 1] = str(tmp_path / "cli.mp4")
    argv[argv.index("--keep-intermediate") + 1] = str(tmp_path / "cli_work")
    assert cli_main(argv[1:]) == 0
    cli_frames = list(iter_frames(tmp_path / "cli.mp4"))
    assert len(cli_frames) == len(app_frames) and all(np.array_equal(a, b) for a, b in zip(app_frames, cli_frames))


def test_models_are_loaded_once_for_two_dubs(ws, monkeypatch):
    _needs_landmarks()
    import unit2av.pipeline.dub as pipeline_dub

    calls = {"av2unit": 0, "translator": 0, "renderer": 0}

    def counting(kind, load):
        def wrapped(*args, **kwargs):
            calls[kind] += 1
            return load(*args, **kwargs)

        return wrapped

    import unit2av.av2unit.api as av2unit_api
    import unit2av.pipeline.render as render_api
    import unit2av.translate.api as translate_api

    monkeypatch.setattr(av2unit_api, "load_av2unit", counting("av2unit", av2unit_api.load_av2unit))
    monkeypatch.setattr(translate_api, "load_translator", counting("translator", translate_api.load_translator))
    monkeypatch.setattr(render_api, "load_renderer", counting("renderer", render_api.load_renderer))
    for name in ("load_av2unit", "load_translator", "load_renderer"):  # the pipeline must not load its own
        monkeypatch.setattr(pipeline_dub, name, lambda *a, **k: pytest.fail("the pipeline loaded a model"))
    models = ModelCache(keep=1)
    langs, voiced = td.languages(ws, models, "utut/utut_tiny.pt", "utut/units.dict.txt", "av2av_es.pt", "cpu")
    assert langs[:2] == ["en", "es"] and len(langs) == 19 and voiced == ["en", "es"]  # the container: en, es, ko
    first = td.translate_dub(_session(ws), ws, models, _choice(), CPU)
    second = td.translate_dub(_session(ws), ws, models, _choice(beam=2), CPU)  # another tab
    assert calls == {"av2unit": 1, "translator": 1, "renderer": 1} and models.loads == 3
    assert first.source_units == second.source_units
    assert "--beam 2" in second.command and "--beam" not in first.command


def test_paths_outside_the_folders_and_bad_choices_are_one_line(ws, folders, tmp_path):
    root, models = folders
    outside = tmp_path / "outside.pt"
    shutil.copyfile(models / "mavhubert_tiny.pt", outside)
    (root / "link.pt").symlink_to(outside)
    s = _session(ws, None)
    cases = {
        "is outside the --root folder": [
            _choice(av2unit=str(outside)),
            _choice(av2unit="../outside.pt"),
            _choice(utut="link.pt"),
            _choice(utut_dict=str(UTUT_DICT)),  # the real file, but outside both folders
        ],
        "mAV-HuBERT checkpoint not found": [_choice(av2unit="missing.pt")],
        "has no vocoder for language 'fr'": [_choice(tgt_lang="fr")],
        "has no vocoder for language 'es'": [_choice(model=BUNDLED)],  # the demo vocoder speaks no UTUT language
        "unknown language 'xx'": [_choice(src_lang="xx")],
        "is not a model container under": [_choice(model="../root/utut/utut_tiny.pt")],
        "beam 0: must be at least 1": [_choice(beam=0)],
        "language '../es'": [_choice(tgt_lang="../es")],
    }
    models_ = ModelCache(keep=1)
    for problem, choices in cases.items():
        for choice in choices:
            with pytest.raises(Unit2AVError, match=problem) as err:
                td.translate_dub(s, ws, models_, choice, CPU)
            assert "\n" not in str(err.value)
    assert ws.checkpoint("mavhubert_tiny.pt") == models / "mavhubert_tiny.pt"  # --models first
    assert ws.checkpoint(str(root / "utut" / "utut_tiny.pt")) == root / "utut" / "utut_tiny.pt"
    assert ws.checkpoint_choices() == ["av2av_es.pt", "mavhubert_tiny.pt", "link.pt", "utut/utut_tiny.pt"]
    assert list(s.folder.glob("*.mp4")) == []  # nothing was dubbed
    with pytest.raises(Unit2AVError, match="has no boxes yet"):
        td.translate_dub(open_video(SAMPLE_VIDEO, ws.session_folder()), ws, models_, _choice(), CPU)
