"""UnitAudioDataset: code/audio alignment, aligned random segments, short clips, resampling, speakers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch
from _unit2a_helpers import TINY_CONFIG, make_unit_corpus

from unit2av.demo.corpus import espeak_available
from unit2av.errors import Unit2AVError
from unit2av.vocoder.config import config_from_dict
from unit2av.vocoder.data import SegmentSampler, UnitAudioDataset
from unit2av.vocoder.manifest import ManifestEntry, build_manifest

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")

HOP = TINY_CONFIG["code_hop_size"]
SEG = TINY_CONFIG["segment_size"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset_corpus")
    data = make_unit_corpus(root, sentences_per_voice=2)
    data["entries"] = build_manifest(data["audio_root"], data["unit_root"]).entries
    return data


@pytest.fixture(scope="module")
def cfg():
    return config_from_dict(dict(TINY_CONFIG), "tiny")


def _normalised(path) -> np.ndarray:
    wav, _ = sf.read(path, dtype="float32")
    return wav * (0.95 / np.abs(wav).max())


def _unit_file(path, codes, spkr=None):
    obj = {"code": torch.as_tensor(codes, dtype=torch.long)}
    if spkr is not None:
        obj["spkr"] = spkr
    torch.save(obj, path)
    return str(path)


def test_whole_utterances_are_aligned_and_trimmed(corpus, cfg):
    ds = UnitAudioDataset(corpus["entries"], cfg, segment=False)
    rec = {r["path"]: r for r in corpus["records"]}
    for i, e in enumerate(ds.entries):
        item = ds[i]
        n = rec[e.audio]["num_samples"] // HOP  # the unit files hold len(audio) // hop codes
        assert item["code"].shape == (n,) and item["audio"].shape == (n * HOP,)
        assert torch.equal(item["code"], torch.load(e.unit_path)["code"][:n])
        np.testing.assert_allclose(item["audio"].numpy(), _normalised(e.audio)[: n * HOP], atol=1e-6)
        assert item["mel"].shape == (80, n * HOP // cfg.hop_size)
        assert torch.equal(item["spkr"], corpus["spkr"][e.speaker].view(1, -1))
        assert torch.equal(ds[i]["audio"], item["audio"])  # validation items do not change


def test_codes_longer_or_shorter_than_audio_trim_the_other(corpus, cfg, tmp_path):
    e = corpus["entries"][0]
    codes = torch.load(e.unit_path)["code"]
    n = len(codes)
    extra = ManifestEntry(
        e.audio, _unit_file(tmp_path / "long.pt", torch.cat([codes, codes[:7]]), corpus["spkr"][e.speaker])
    )
    fewer = ManifestEntry(e.audio, _unit_file(tmp_path / "short.pt", codes[: n - 5], corpus["spkr"][e.speaker]))
    ds = UnitAudioDataset([extra, fewer], cfg, segment=False)
    assert ds[0]["code"].shape == (n,) and ds[0]["audio"].shape == (n * HOP,)
    assert ds[1]["code"].shape == (n - 5,) and ds[1]["audio"].shape == ((n - 5) * HOP,)
    np.testing.assert_allclose(ds[1]["audio"].numpy(), _normalised(e.audio)[: (n - 5) * HOP], atol=1e-6)


def test_random_segments_are_aligned_slices(corpus, cfg):
    ds = UnitAudioDataset(corpus["entries"], cfg, segment=True)
    starts = set()
    for i in range(len(ds)):
        full, codes = _normalised(ds.entries[i].audio), torch.load(ds.entries[i].unit_path)["code"]
        for seed in (11, 12, 13):
            item = ds[(i, 1000 * i + seed)]
            assert item["code"].shape == (SEG // HOP,) and item["audio"].shape == (SEG,)
            assert item["mel"].shape == (80, SEG // cfg.hop_size)
            # locate the segment in the utterance: it must start on a code boundary with its codes
            start = int(
                np.argmin(
                    [
                        np.abs(full[s : s + SEG] - item["audio"].numpy()).max()
                        for s in range(0, len(full) - SEG + 1, HOP)
                    ]
                )
            )
            np.testing.assert_allclose(full[start * HOP : start * HOP + SEG], item["audio"].numpy(), atol=1e-6)
            assert torch.equal(item["code"], codes[start : start + SEG // HOP])
            starts.add((i, start))
            assert torch.equal(ds[(i, 1000 * i + seed)]["code"], item["code"])  # the crop depends only on the seed
    assert len(starts) >= 2 * len(ds)  # crops move around


def test_short_clip_is_repeated_to_a_segment(corpus, cfg, tmp_path):
    e = corpus["entries"][0]
    wav, sr = sf.read(e.audio, dtype="float32")
    clip_codes = 7  # 140 ms, far below the 400 ms segment
    sf.write(tmp_path / "101_009_0001.wav", wav[4000 : 4000 + clip_codes * HOP], sr)
    codes = torch.arange(clip_codes) + 3
    short = ManifestEntry(
        str(tmp_path / "101_009_0001.wav"), _unit_file(tmp_path / "c.pt", codes, corpus["spkr"]["101"])
    )
    item = UnitAudioDataset([short], cfg, segment=True)[(0, 5)]
    assert item["audio"].shape == (SEG,) and item["code"].shape == (SEG // HOP,)
    a, c = item["audio"].numpy(), item["code"].numpy()
    np.testing.assert_allclose(a[clip_codes * HOP :], a[: -clip_codes * HOP], atol=1e-7)  # periodic
    assert np.array_equal(c[clip_codes:], c[:-clip_codes]) and set(c.tolist()) == set((codes).tolist())


def test_other_rate_and_stereo_are_resampled_and_mixed(corpus, cfg, tmp_path):
    e = corpus["entries"][0]
    wav, _ = sf.read(e.audio, dtype="float32")
    other = np.roll(wav, 800) * 0.5
    sf.write(tmp_path / "s16.wav", np.stack([wav, other], axis=1), 16000, subtype="FLOAT")
    n = len(wav) // HOP
    unit = _unit_file(tmp_path / "u.pt", np.zeros(n, dtype=np.int64), corpus["spkr"][e.speaker])
    item = UnitAudioDataset([ManifestEntry(str(tmp_path / "s16.wav"), unit)], cfg, segment=False)[0]
    mono = (wav + other) / 2
    np.testing.assert_allclose(item["audio"].numpy(), (mono * 0.95 / np.abs(mono).max())[: n * HOP], atol=1e-5)
    # 22.05 kHz stereo: resampled to 16 kHz, so the same codes still cover the audio
    from scipy.signal import resample_poly

    sf.write(tmp_path / "s22.wav", np.stack([resample_poly(wav, 441, 320)] * 2, axis=1).astype(np.float32), 22050)
    item = UnitAudioDataset([ManifestEntry(str(tmp_path / "s22.wav"), unit)], cfg, segment=False)[0]
    assert abs(item["code"].shape[0] - n) <= 1
    ref = _normalised(e.audio)[: item["audio"].shape[0]]
    assert np.corrcoef(ref, item["audio"].numpy())[0, 1] > 0.99


def test_speaker_ids_for_id_configs(corpus, cfg):
    id_cfg = dataclasses.replace(cfg, embedder_params=None, multispkr=True)
    ds = UnitAudioDataset(corpus["entries"], id_cfg, segment=False)
    names = sorted({e.speaker for e in corpus["entries"]})
    for i, e in enumerate(ds.entries):
        assert ds[i]["spkr"].dtype == torch.long and ds[i]["spkr"].tolist() == [names.index(e.speaker)]
    single = UnitAudioDataset(corpus["entries"], dataclasses.replace(cfg, embedder_params=None, multispkr=False))
    assert "spkr" not in single[(0, 1)]


def test_bad_unit_files_are_one_line_errors(corpus, cfg, tmp_path):
    e = corpus["entries"][0]
    cases = [
        (_unit_file(tmp_path / "nospk.pt", torch.zeros(50)), "has no 'spkr'"),
        (_unit_file(tmp_path / "big.pt", torch.full((50,), 16), torch.zeros(256)), r"\[0, 16\)"),
        (_unit_file(tmp_path / "dim.pt", torch.zeros(50), torch.zeros(128)), "128 values"),
        (_unit_file(tmp_path / "empty.pt", torch.zeros(0)), "empty"),
    ]
    torch.save({"units": torch.zeros(5)}, tmp_path / "nocode.pt")
    cases.append((str(tmp_path / "nocode.pt"), "no 'code'"))
    for path, problem in cases:
        with pytest.raises(Unit2AVError, match=problem) as err:
            UnitAudioDataset([ManifestEntry(e.audio, path)], cfg)[0]
        assert path in str(err.value) and "\n" not in str(err.value)


def test_sampler_shuffles_shards_and_resumes(corpus, cfg):
    ds = UnitAudioDataset(corpus["entries"], cfg)
    one = SegmentSampler(ds, seed=1)
    one.set_epoch(0)
    e0 = [i for i, _ in one]
    one.set_epoch(1)
    e1 = [i for i, _ in one]
    assert sorted(e0) == list(range(len(ds))) and e0 != e1 and e0 != sorted(e0)
    ranks = [SegmentSampler(ds, num_replicas=2, rank=r, seed=1) for r in (0, 1)]
    parts = [[i for i, _ in s] for s in ranks]
    assert not set(parts[0]) & set(parts[1]) and sorted(parts[0] + parts[1]) == list(range(len(ds)))
    one.set_position(1, 3)
    assert [i for i, _ in one] == e1[3:] and [i for i, _ in one] == e1  # skip applies once
