"""HuBERT-family features from a tiny, randomly initialised Hugging Face model saved to a temp folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the `hubert` extra (transformers) is not installed")

from unit2av.cli import main  # noqa: E402
from unit2av.errors import Unit2AVError  # noqa: E402
from unit2av.prepare.hubert import HubertFeatures  # noqa: E402

HIDDEN = 32  # tiny model: 2 layers of width 32, 16-channel conv front end (same strides as HuBERT)
LAYERS = 2


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    cfg = transformers.HubertConfig(
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    model = transformers.HubertModel(cfg).eval()
    out = tmp_path_factory.mktemp("tiny_hubert")
    model.save_pretrained(out)
    return out, model


def speechlike(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (
        0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + 0.02 * rng.standard_normal(n)
    ).astype(np.float32)


@pytest.mark.parametrize("n", [100, 320, 399, 400, 479, 480, 16000, 16079, 16080, 24321])
def test_length_contract(tiny_model, n):
    feats = HubertFeatures(tiny_model[0], layer=1)(speechlike(n))
    assert feats.shape == (n // 320, HIDDEN) and feats.dtype == np.float32
    assert np.all(np.isfinite(feats))


def test_pads_by_repeating_last_frame_and_matches_the_model(tiny_model):
    folder, model = tiny_model
    ext = HubertFeatures(folder)  # last layer
    wav = speechlike(16000)  # 16000 % 320 = 0 < 80: the model gives 49 frames, 50 are due
    feats = ext(wav)
    with torch.no_grad():
        direct = model(torch.from_numpy(wav)[None]).last_hidden_state[0].numpy()
    assert direct.shape == (49, HIDDEN)
    np.testing.assert_allclose(feats[:49], direct, atol=1e-5)
    np.testing.assert_array_equal(feats[49], feats[48])
    longer = ext(speechlike(16080))  # 16080 % 320 = 80: the model's own 50 frames, nothing padded
    assert not np.allclose(longer[49], longer[48])


def test_layers_and_determinism(tiny_model):
    folder, model = tiny_model
    wav = speechlike(8000, seed=1)
    a, b = HubertFeatures(folder, layer=1), HubertFeatures(folder, layer=1)
    np.testing.assert_array_equal(a(wav), a(wav))
    np.testing.assert_array_equal(a(wav), b(wav))
    with torch.no_grad():
        hidden = model(torch.from_numpy(wav)[None], output_hidden_states=True).hidden_states
    np.testing.assert_allclose(a(wav)[: len(hidden[1][0])], hidden[1][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(HubertFeatures(folder, layer=LAYERS)(wav), HubertFeatures(folder)(wav), atol=1e-6)
    assert not np.allclose(HubertFeatures(folder, layer=0)(wav), a(wav))


def test_bad_model_folder_and_layer(tiny_model, tmp_path):
    with pytest.raises(Unit2AVError, match="no config.json"):
        HubertFeatures(tmp_path)
    with pytest.raises(Unit2AVError, match="layers 0..2"):
        HubertFeatures(tiny_model[0], layer=3)


def test_feature_spec_picks_the_folder_and_layer(tiny_model, tmp_path):
    """``--features hubert:DIR[:LAYER]`` as `unit2av units` reads it (``make_feature_extractor``)."""
    import shutil

    from unit2av.prepare.units import make_feature_extractor

    folder, _ = tiny_model
    wav = speechlike(8000, seed=2)
    layer1, last = HubertFeatures(folder, layer=1)(wav), HubertFeatures(folder)(wav)
    assert not np.allclose(layer1, last)
    np.testing.assert_array_equal(make_feature_extractor(f"hubert:{folder}:1")(wav), layer1)
    np.testing.assert_array_equal(make_feature_extractor(f"hubert:{folder}")(wav), last)  # no layer: the last
    odd = tmp_path / "a:b"  # a colon inside the folder name is part of the folder, not a layer
    shutil.copytree(folder, odd)
    np.testing.assert_array_equal(make_feature_extractor(f"hubert:{odd}:1")(wav), layer1)
    np.testing.assert_array_equal(make_feature_extractor(f"hubert:{odd}")(wav), last)
    with pytest.raises(Unit2AVError, match="layers 0..2"):
        make_feature_extractor(f"hubert:{folder}:7")
    with pytest.raises(Unit2AVError, match="needs a model folder"):
        make_feature_extractor("hubert:")


def test_units_fit_and_extract_with_hubert_features(tiny_model, tmp_path):
    from unit2av.demo.corpus import make_corpus
    from unit2av.io.audio import load_audio
    from unit2av.io.safe import load_torch

    records = make_corpus(
        tmp_path / "wavs", voices=[{"speaker": "1", "voice": "en-us", "lang": "en"}], sentences_per_voice=3
    )
    spec = f"hubert:{tiny_model[0]}:1"
    km = tmp_path / "km.pt"
    assert (
        main(
            [
                "units",
                "--no-progress",
                "fit",
                "--audio_root",
                str(tmp_path / "wavs"),
                "--k",
                "8",
                "--out",
                str(km),
                "--features",
                spec,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "units",
                "--no-progress",
                "extract",
                "--kmeans",
                str(km),
                "--audio_root",
                str(tmp_path / "wavs"),
                "--out_root",
                str(tmp_path / "units"),
            ]
        )
        == 0
    )
    for rec in records:
        unit_file = tmp_path / "units" / "1" / (rec["utt_id"] + ".pt")
        code = load_torch(unit_file)["code"]
        wav, sr = load_audio(rec["path"], 16000)
        assert code.dtype == torch.long and len(code) == len(wav) // 320
        assert 0 <= int(code.min()) and int(code.max()) < 8
        assert len(torch.unique(code)) > 1
