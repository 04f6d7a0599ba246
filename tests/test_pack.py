"""pack: vocoders + a train-face renderer -> one AV2AV container that load_renderer / render use as it is."""

from __future__ import annotations

import logging
import shutil
from importlib import resources

import numpy as np
import pytest
import torch
from conftest import REFERENCE, SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av import load_renderer
from unit2av.cli import main as cli_main
from unit2av.errors import Unit2AVError
from unit2av.face.model import FaceRenderer
from unit2av.face.state import renderer_container
from unit2av.io.checkpoints import container_languages
from unit2av.io.media import iter_frames, probe_video, read_audio_track
from unit2av.io.safe import load_torch, save_torch
from unit2av.pipeline.pack import pack
from unit2av.vocoder.checkpoint import save_generator
from unit2av.vocoder.config import config_from_dict, load_config
from unit2av.vocoder.model import UnitVocoder

DEMO_CONFIG = resources.files("unit2av.configs").joinpath("demo.json")  # not AV2AV's: 100 units, 64 channels


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    out = tmp_path_factory.mktemp("pack")
    cfg = load_config(DEMO_CONFIG)
    torch.manual_seed(0)
    save_generator(UnitVocoder.from_config(cfg), out / "g_ko", config=cfg, step=7)
    save_generator(UnitVocoder.from_config(cfg), out / "g_en", config=cfg, step=9)
    save_torch(renderer_container(FaceRenderer(cfg.num_embeddings, width=16), step=3), out / "f_best")
    (out / "u.txt").write_text(" ".join(str(u) for u in np.random.default_rng(0).integers(0, 100, 40)))
    return out


def _render(parts, container, out, *extra) -> int:
    return cli_main(
        [
            "render",
            "--in-unit-path",
            str(parts / "u.txt"),
            "--in-vid-path",
            str(SAMPLE_VIDEO),
            "--in-bbox-path",
            str(SAMPLE_BBOX),
            "--out-vid-path",
            str(out),
            "--tgt-lang",
            "ko",
            "--unit2av-path",
            str(container),
            "--device",
            "cpu",
            *extra,
        ]
    )


def test_packed_container_renders_without_config(parts, tmp_path):
    """The vocoders' own (non-AV2AV) config travels in the container: no --config is needed to render it."""
    u2av = tmp_path / "u2av.pt"
    assert (
        cli_main(
            [
                "pack",
                "--vocoder",
                f"ko={parts / 'g_ko'}",
                "--vocoder",
                f"en={parts / 'g_en'}",
                "--face",
                str(parts / "f_best"),
                "--out",
                str(u2av),
            ]
        )
        == 0
    )
    container = load_torch(u2av)
    assert container_languages(container) == ["en", "ko"]
    assert torch.equal(container["audio"]["ko"]["dict.weight"], load_torch(parts / "g_ko")["generator"]["dict.weight"])
    assert config_from_dict(container["vocoder_configs"]["ko"]) == load_config(DEMO_CONFIG)
    vocoder, face = load_renderer(u2av, lang="ko", device="cpu")
    assert face.width == 16 and vocoder.dict.num_embeddings == 100
    assert _render(parts, u2av, tmp_path / "out.mp4") == 0
    info = probe_video(tmp_path / "out.mp4")
    assert info.num_frames > 0 and info.has_audio
    first = next(iter_frames(tmp_path / "out.mp4")).astype(int)
    source = next(iter_frames(SAMPLE_VIDEO)).astype(int)
    assert np.abs(first[200:, :] - source[200:, :]).mean() < 8  # below the face: the source
    assert np.abs(first[120:150, 90:140] - source[120:150, 90:140]).mean() > 8  # the mouth: drawn


def test_two_renders_decode_to_the_same_frames_and_audio(parts, tmp_path):
    u2av = tmp_path / "u2av.pt"
    pack({"ko": parts / "g_ko"}, parts / "f_best", u2av)
    outs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for out in outs:
        assert _render(parts, u2av, out, "--batch-size", "10") == 0
    a, b = (np.stack(list(iter_frames(o))) for o in outs)
    assert a.shape == b.shape and a.shape[0] > 10 and np.array_equal(a, b)
    (wa, ra), (wb, rb) = (read_audio_track(o) for o in outs)
    assert ra == rb and np.array_equal(wa, wb)


def test_render_refuses_a_vocoder_off_the_unit_rate(parts, tmp_path, capsys):
    """100 units/s speech would drift out of sync with 25 fps lips: one line, exit 2, nothing written."""
    data = load_config(DEMO_CONFIG).to_dict()
    data.update(upsample_rates=[5, 4, 4, 2], upsample_kernel_sizes=[11, 8, 8, 4], code_hop_size=160)
    cfg = config_from_dict(data)
    save_generator(UnitVocoder.from_config(cfg), tmp_path / "g_100hz", config=cfg)
    pack({"ko": tmp_path / "g_100hz"}, parts / "f_best", tmp_path / "fast.pt")
    capsys.readouterr()
    assert _render(parts, tmp_path / "fast.pt", tmp_path / "out.mp4") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fast.pt" in err[0] and "100 units/s" in err[0] and "50 units/s" in err[0]
    assert not (tmp_path / "out.mp4").exists()


def test_pack_warns_once_about_models_the_original_tools_cannot_load(parts, tmp_path, reference_dir, caplog):
    from unit2av.demo.video import asset

    with caplog.at_level(logging.WARNING, logger="unit2av.pipeline.pack"):
        pack({"ko": asset("vocoder.pt")}, asset("face_renderer.pt"), tmp_path / "bundled.pt")
    (record,) = caplog.records
    text = record.getMessage()
    assert "vocoder 'ko' (AV2AV, fairseq): f0_source" in text
    assert "face renderer (AV2AV): width 64 (AV2AV builds 512), 100 units (AV2AV builds 1000)" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unit2av.pipeline.pack"):
        pack({"ko": parts / "g_ko"}, parts / "f_best", tmp_path / "small.pt")  # plain vocoder, narrow renderer
    (record,) = caplog.records
    assert "vocoder" not in record.getMessage() and "width 16" in record.getMessage()
    caplog.clear()
    (tmp_path / "ref").mkdir()  # a g_ file with its config.json beside it, as training writes them
    shutil.copy(reference_dir / "g_00000000", tmp_path / "ref" / "g_00000000")
    shutil.copy(REFERENCE / "config.json", tmp_path / "ref" / "config.json")
    with caplog.at_level(logging.WARNING, logger="unit2av.pipeline.pack"):  # AV2AV's own layout: nothing to say
        pack({"en": tmp_path / "ref" / "g_00000000"}, reference_dir / "unit2av_ref.pt", tmp_path / "ref.pt")
    assert not caplog.records


def test_pack_keeps_base_languages_and_refuses_bad_input(parts, tmp_path):
    from unit2av.pipeline.pack import parse_vocoder_specs

    pack({"ko": parts / "g_ko"}, parts / "f_best", tmp_path / "a.pt")
    pack({"en": parts / "g_en"}, parts / "f_best", tmp_path / "b.pt", base=tmp_path / "a.pt")
    b = load_torch(tmp_path / "b.pt")
    assert container_languages(b) == ["en", "ko"] and sorted(b["vocoder_configs"]) == ["en", "ko"]
    with pytest.raises(Unit2AVError, match="LANG=CHECKPOINT"):
        parse_vocoder_specs(["g_best"])
    with pytest.raises(Unit2AVError, match="no face renderer"):
        pack({"ko": parts / "g_ko"}, parts / "g_en", tmp_path / "c.pt")
    with pytest.raises(Unit2AVError, match="has no vocoder for language 'fr'"):
        load_renderer(tmp_path / "b.pt", lang="fr", device="cpu")
    assert not (tmp_path / "c.pt").exists()
