"""pack: vocoders + a train-face renderer -> one AV2AV container that load_renderer / render use."""

from __future__ import annotations

import argparse
from importlib import resources

import numpy as np
import pytest
import torch
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av import load_renderer, render
from unit2av.errors import Unit2AVError
from unit2av.face.model import FaceRenderer
from unit2av.face.state import renderer_container
from unit2av.io.checkpoints import container_languages
from unit2av.io.media import iter_frames, probe_video
from unit2av.io.safe import load_torch, save_torch
from unit2av.vocoder.checkpoint import save_generator
from unit2av.vocoder.config import load_config
from unit2av.vocoder.model import UnitVocoder

DEMO_CONFIG = resources.files("unit2av.configs").joinpath("demo.json")


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    out = tmp_path_factory.mktemp("pack")
    cfg = load_config(DEMO_CONFIG)
    torch.manual_seed(0)
    save_generator(UnitVocoder.from_config(cfg), out / "g_ko", config=cfg, step=7)
    save_generator(UnitVocoder.from_config(cfg), out / "g_en", config=cfg, step=9)
    save_torch(renderer_container(FaceRenderer(cfg.num_embeddings, width=16), step=3), out / "f_best")
    return out


def test_pack_loads_with_load_renderer_and_renders(parts, tmp_path):
    from unit2av.commands import pack as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    args = p.parse_args(["--vocoder", f"ko={parts / 'g_ko'}", "--vocoder", f"en={parts / 'g_en'}",
                         "--face", str(parts / "f_best"), "--out", str(tmp_path / "u2av.pt")])
    assert cmd.run(args) == 0
    container = load_torch(tmp_path / "u2av.pt")
    assert container_languages(container) == ["en", "ko"]
    assert torch.equal(container["audio"]["ko"]["dict.weight"], load_torch(parts / "g_ko")["generator"]["dict.weight"])
    vocoder, face = load_renderer(tmp_path / "u2av.pt", config=str(DEMO_CONFIG), lang="ko", device="cpu")
    assert face.width == 16 and vocoder.dict.num_embeddings == 100
    units = tmp_path / "u.txt"
    units.write_text(" ".join(str(u) for u in np.random.default_rng(0).integers(0, 100, 40)))
    result = render(units, SAMPLE_VIDEO, SAMPLE_BBOX, tmp_path / "out.mp4", "ko", tmp_path / "u2av.pt",
                    config=str(DEMO_CONFIG), device="cpu", models=(vocoder, face))
    info = probe_video(result.path)
    assert info.num_frames == result.num_frames > 0 and info.has_audio
    first = next(iter_frames(result.path)).astype(int)
    source = next(iter_frames(SAMPLE_VIDEO)).astype(int)
    assert np.abs(first[200:, :] - source[200:, :]).mean() < 8  # below the face: the source
    assert np.abs(first[120:150, 90:140] - source[120:150, 90:140]).mean() > 8  # the mouth: drawn


def test_pack_keeps_base_languages_and_refuses_bad_input(parts, tmp_path):
    from unit2av.pipeline.pack import pack, parse_vocoder_specs

    pack({"ko": parts / "g_ko"}, parts / "f_best", tmp_path / "a.pt")
    pack({"en": parts / "g_en"}, parts / "f_best", tmp_path / "b.pt", base=tmp_path / "a.pt")
    assert container_languages(load_torch(tmp_path / "b.pt")) == ["en", "ko"]
    with pytest.raises(Unit2AVError, match="LANG=CHECKPOINT"):
        parse_vocoder_specs(["g_best"])
    with pytest.raises(Unit2AVError, match="no face renderer"):
        pack({"ko": parts / "g_ko"}, parts / "g_en", tmp_path / "c.pt")
    with pytest.raises(Unit2AVError, match="has no vocoder for language 'fr'"):
        load_renderer(tmp_path / "b.pt", config=str(DEMO_CONFIG), lang="fr", device="cpu")
    assert not (tmp_path / "c.pt").exists()
