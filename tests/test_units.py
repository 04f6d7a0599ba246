"""Log-mel k-means units from espeak-ng speech: fit, extract, CLI, bad input."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import REFERENCE

from unit2av.cli import main
from unit2av.demo.corpus import Voice, make_corpus
from unit2av.errors import Unit2AVError
from unit2av.io.audio import find_audio_files
from unit2av.prepare import units

K = 24  # clusters of the test k-means
HOP = 320  # code hop of the bundled config (16 kHz, 50 Hz units)
# Speakers 1 and 2: one voice, one speed, two pitches -> the same words, nearly aligned frames.
VOICES = [
    Voice("1", "en-us+m3", "en", speed=160, pitch=40),
    Voice("2", "en-us+m3", "en", speed=160, pitch=65),
    Voice("3", "ko+f3", "ko", speed=170, pitch=75),
    Voice("4", "en-gb+f4", "en", speed=145, pitch=80),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("units_corpus")
    return out, make_corpus(out, voices=VOICES, sentences_per_voice=4)


@pytest.fixture(scope="module")
def kmeans(corpus, tmp_path_factory):
    _, records = corpus
    km = units.fit_kmeans([r["path"] for r in records], K, progress=False)
    path = tmp_path_factory.mktemp("km") / "km.pt"
    units.save_kmeans(km, path)
    return path


@pytest.fixture(scope="module")
def codes(corpus, kmeans):
    _, records = corpus
    km = units.load_kmeans(kmeans)
    return {r["utt_id"]: units.extract_units(km, r["path"])["code"] for r in records}


def test_kmeans_file_is_plain_tensors(kmeans, corpus):
    km = torch.load(kmeans, weights_only=True)  # loads without unpickling any object
    assert km["centers"].shape == (K, 40) and km["centers"].dtype == torch.float32
    assert km["mean"].shape == km["std"].shape == (40,)
    assert (km["std"] > 0).all()
    assert km["feature"] == "logmel" and km["code_hop_size"] == HOP and km["sample_rate"] == 16000
    _, records = corpus
    assert km["num_frames"] == sum(r["num_samples"] // HOP for r in records)
    assert units.load_kmeans(kmeans)["k"] == K


def test_code_length_range_and_determinism(corpus, kmeans, codes):
    _, records = corpus
    km = units.load_kmeans(kmeans)
    for r in records:
        code = codes[r["utt_id"]]
        assert code.dtype == torch.int64 and code.dim() == 1
        assert len(code) == sf.info(r["path"]).frames // HOP
        assert 0 <= int(code.min()) and int(code.max()) < K
    again = units.extract_units(km, records[0]["path"])["code"]
    torch.testing.assert_close(again, codes[records[0]["utt_id"]], rtol=0, atol=0)
    used = torch.cat(list(codes.values())).unique()
    assert len(used) >= K * 3 // 4  # the clusters are actually used


def test_same_words_share_units(corpus, codes):
    """Same voice and sentence at two pitches agree frame by frame far more than other sentences."""
    same, other = [], []
    for i in range(1, 5):
        a, b = codes[f"1_001_{i:04d}"].numpy(), codes[f"2_001_{i:04d}"].numpy()
        c = codes[f"2_001_{i % 4 + 1:04d}"].numpy()
        n, m = min(len(a), len(b)), min(len(a), len(c))
        same.append((a[:n] == b[:n]).mean())
        other.append((a[:m] == c[:m]).mean())
    assert np.mean(same) > 0.6  # measured ~0.8
    assert np.mean(same) > 3 * np.mean(other)  # other sentences: ~0.15


def test_other_sample_rate_and_video(tmp_path, corpus, kmeans):
    from scipy.signal import resample_poly

    _, records = corpus
    wav, _ = sf.read(records[0]["path"], dtype="float32")
    wav22 = resample_poly(wav, 441, 320).astype(np.float32)  # 16 kHz -> 22.05 kHz
    sf.write(tmp_path / "x.wav", wav22, 22050)
    km = units.load_kmeans(kmeans)
    code = units.extract_units(km, tmp_path / "x.wav")["code"]
    expected_samples = -(-len(wav22) * 320 // 441)  # ceil: polyphase output length back at 16 kHz
    assert len(code) == expected_samples // HOP
    assert abs(len(code) - len(wav) // HOP) <= 1
    from conftest import SAMPLE_VIDEO

    out = units.extract_units(km, SAMPLE_VIDEO)
    assert len(out["code"]) == 45056 // HOP  # 2.816 s of 16 kHz audio in the clip


def test_custom_feature_registry(corpus):
    """A later feature (e.g. HuBERT) plugs in through the registry."""

    class Energy(units.FeatureExtractor):
        def __init__(self, cfg):
            self.spec, self.sample_rate, self.hop_size = "energy", cfg.sampling_rate, cfg.code_hop_size

        def __call__(self, wav):
            n = len(wav) // self.hop_size
            frames = wav[: n * self.hop_size].reshape(n, self.hop_size)
            return np.stack([np.log(np.mean(frames**2, axis=1) + 1e-8), np.abs(frames).max(axis=1)], axis=1)

    units.register_feature("energy")(lambda arg, cfg, params, device: Energy(cfg))
    try:
        _, records = corpus
        km = units.fit_kmeans([r["path"] for r in records[:4]], 4, features="energy", progress=False)
        assert km["feature"] == "energy" and km["centers"].shape == (4, 2)
        assert len(units.extract_units(km, records[0]["path"])["code"]) == records[0]["num_samples"] // HOP
    finally:
        units.FEATURES.pop("energy")


def test_bad_specs_and_inputs(tmp_path, corpus, monkeypatch):
    _, records = corpus
    with pytest.raises(Unit2AVError, match="unknown feature spec"):
        units.make_feature_extractor("mfcc")
    with pytest.raises(Unit2AVError, match="hubert:DIR"):
        units.make_feature_extractor("hubert:")
    monkeypatch.setitem(sys.modules, "unit2av.prepare.hubert", None)  # makes `import unit2av.prepare.hubert` fail
    with pytest.raises(Unit2AVError, match="hubert features are not available"):
        units.make_feature_extractor("hubert:/models/mhubert:11")
    with pytest.raises(Unit2AVError, match="frames for k="):
        units.fit_kmeans([records[0]["path"]], 5000, progress=False)
    sf.write(tmp_path / "tiny.wav", np.zeros(100, np.float32), 16000)
    with pytest.raises(Unit2AVError, match="tiny.wav.*shorter than one unit"):
        units.fit_kmeans([tmp_path / "tiny.wav"], 2, progress=False)
    with pytest.raises(Unit2AVError, match="missing.wav"):
        units.fit_kmeans([tmp_path / "missing.wav"], 2, progress=False)


class _Thing:
    pass


def test_bad_kmeans_files(tmp_path):
    torch.save({"centers": torch.zeros(4, 40), "mean": torch.zeros(40), "std": torch.ones(40)}, tmp_path / "a.pt")
    with pytest.raises(Unit2AVError, match="not a unit2av k-means file"):
        units.load_kmeans(tmp_path / "a.pt")
    torch.save(
        {
            "format": "unit2av-kmeans",
            "centers": torch.zeros(4, 40),
            "mean": torch.zeros(3),
            "std": torch.ones(40),
            "feature": "logmel",
            "code_hop_size": 320,
        },
        tmp_path / "b.pt",
    )
    with pytest.raises(Unit2AVError, match="centers"):
        units.load_kmeans(tmp_path / "b.pt")
    torch.save(_Thing(), tmp_path / "c.pt")
    with pytest.raises(Unit2AVError, match="refused"):
        units.load_kmeans(tmp_path / "c.pt")
    torch.save({"format": "unit2av-kmeans", "x": argparse.Namespace()}, tmp_path / "d.pt")
    with pytest.raises(Unit2AVError, match="refused"):
        units.load_kmeans(tmp_path / "d.pt")


def test_cli_fit_extract_speaker(tmp_path, corpus, codes, capsys):
    root, records = corpus
    km_path, out = tmp_path / "km.pt", tmp_path / "units"
    assert (
        main(
            [
                "units",
                "--no-progress",
                "fit",
                "--audio_root",
                str(root),
                "--k",
                "8",
                "--out",
                str(km_path),
                "--config",
                str(REFERENCE / "config.json"),
                "--max_files",
                "6",
            ]
        )
        == 0
    )
    km = units.load_kmeans(km_path)
    assert km["centers"].shape == (8, 40) and km["num_files"] == 6
    assert {"1", "2", "3", "4"} <= {p.split("/")[-2] for p in map(str, find_audio_files(root))}
    assert (
        main(
            [
                "units",
                "extract",
                "--kmeans",
                str(km_path),
                "--audio_root",
                str(root),
                "--out_root",
                str(out),
                "--speaker",
                "--workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    assert f"wrote {len(records)} unit files" in capsys.readouterr().out
    from unit2av.prepare.speaker import SpeakerEncoder
    from unit2av.prepare.speaker_audio import cosine_similarity

    enc = SpeakerEncoder.load()
    for r in records[::4]:
        u = torch.load(out / r["speaker"] / f"{r['utt_id']}.pt", weights_only=True)
        assert set(u) == {"code", "spkr"}
        assert u["spkr"].shape == (256,) and u["spkr"].dtype == torch.float32
        assert cosine_similarity(u["spkr"], enc.embed_file(r["path"])) > 0.999
        local = units.extract_units(km, r["path"])["code"]  # worker processes == this process
        torch.testing.assert_close(u["code"], local, rtol=0, atol=0)


def test_cli_errors(tmp_path, corpus, capsys):
    root, _ = corpus
    (tmp_path / "empty").mkdir()
    torch.save({"weights": torch.zeros(3)}, tmp_path / "notkm.pt")
    runs = [
        ["units", "fit", "--audio_root", str(tmp_path / "missing"), "--k", "4", "--out", str(tmp_path / "k.pt")],
        ["units", "fit", "--audio_root", str(tmp_path / "empty"), "--k", "4", "--out", str(tmp_path / "k.pt")],
        [
            "units",
            "extract",
            "--kmeans",
            str(tmp_path / "notkm.pt"),
            "--audio_root",
            str(root),
            "--out_root",
            str(tmp_path / "u"),
        ],
        ["units", "fit", "--audio_root", str(root), "--k", "4", "--out", str(tmp_path / "k.pt"), "--features", "nope"],
    ]
    for argv in runs:
        assert main(argv) == 2, argv
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(runs) and all(line.startswith("unit2av units: error:") for line in err)
    assert "missing" in err[0] and "empty" in err[1] and "notkm.pt" in err[2]
    assert not (tmp_path / "k.pt").exists() and not (tmp_path / "u").exists()
