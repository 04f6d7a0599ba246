"""GE2E speaker encoder on real espeak-ng speech with Resemblyzer's weights (bundled in unit2av)."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SAMPLE_VIDEO

from unit2av.cli import main
from unit2av.demo.corpus import make_corpus
from unit2av.errors import Unit2AVError
from unit2av.io.packed import read_packed_state, write_packed_state
from unit2av.prepare.speaker import SpeakerEncoder, default_weights, resemblyzer_weights
from unit2av.prepare.speaker_audio import cosine_similarity, normalize_volume, partial_starts, trim_long_silences
from unit2av.spectral import mel_filterbank


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("spk_corpus")
    return out, make_corpus(out, sentences_per_voice=4)


@pytest.fixture(scope="module")
def encoder():
    return SpeakerEncoder.load()


@pytest.fixture(scope="module")
def embeddings(corpus, encoder):
    _, records = corpus
    return {r["utt_id"]: (r["speaker"], encoder.embed_file(r["path"])) for r in records}


def test_embedding_is_256d_unit_norm(embeddings):
    for _, e in embeddings.values():
        assert e.shape == (256,) and e.dtype == np.float32
        assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)
        assert (e >= 0).all()  # ReLU before the normalisation


def test_same_voice_more_similar_than_other_voices(embeddings):
    speakers = sorted({s for s, _ in embeddings.values()})
    assert len(speakers) >= 4
    sims: dict[tuple[str, str], list[float]] = {}
    for (_, (sa, ea)), (_, (sb, eb)) in itertools.combinations(embeddings.items(), 2):
        sims.setdefault(tuple(sorted((sa, sb))), []).append(cosine_similarity(ea, eb))
    for a in speakers:
        same = np.mean(sims[(a, a)])
        for b in speakers:
            if b != a:
                other = np.mean(sims[tuple(sorted((a, b)))])
                assert same > other + 0.05, f"speaker {a}: same {same:.3f} vs {b} {other:.3f}"
    # nearest neighbour (other utterances) identifies the speaker
    items = list(embeddings.values())
    hits = 0
    for i, (s, e) in enumerate(items):
        best = max((cosine_similarity(e, f), t) for j, (t, f) in enumerate(items) if j != i)
        hits += best[1] == s
    assert hits / len(items) >= 0.9


def test_rtvc_and_bare_state_dict_give_identical_embeddings(tmp_path, corpus, encoder):
    _, records = corpus
    state = read_packed_state(default_weights())
    torch.save({"model_state": state}, tmp_path / "encoder.pt")  # Real-Time-Voice-Cloning layout
    torch.save(dict(state), tmp_path / "bare.pt")
    torch.save({f"module.{k}": v for k, v in state.items() if not k.startswith("similarity")}, tmp_path / "ddp.pt")
    wav, sr = sf.read(records[0]["path"], dtype="float32")
    ref = encoder.embed(wav, sr)
    for name in ("encoder.pt", "bare.pt", "ddp.pt"):
        np.testing.assert_array_equal(SpeakerEncoder.load(tmp_path / name).embed(wav, sr), ref)


def test_resampling_and_silence_barely_change_embedding(corpus, encoder):
    _, records = corpus
    wav, sr = sf.read(records[0]["path"], dtype="float32")
    ref = encoder.embed(wav, sr)
    from scipy.signal import resample_poly

    wav44 = resample_poly(wav, 441, 160).astype(np.float32)  # 16 kHz -> 44.1 kHz
    assert cosine_similarity(encoder.embed(wav44, 44100), ref) > 0.98
    half = len(wav) // 2
    gap = np.concatenate([wav[:half], np.zeros(3 * sr, np.float32), wav[half:]])  # a 3 s pause
    assert len(trim_long_silences(gap, sr)) < len(wav) + sr // 2
    assert cosine_similarity(encoder.embed(gap, sr), ref) > 0.95
    stereo = np.stack([wav, wav], axis=1)  # (T, 2)
    np.testing.assert_allclose(encoder.embed(stereo, sr), ref, atol=1e-6)


def test_video_file(encoder):
    e = encoder.embed_file(SAMPLE_VIDEO)
    assert e.shape == (256,)
    assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-5)


def test_mel_frames_match_librosa_definition(encoder):
    rng = np.random.default_rng(0)
    wav = rng.standard_normal(4000).astype(np.float32) * 0.1
    mel = encoder.mel_frames(torch.from_numpy(wav)).numpy()
    # librosa.feature.melspectrogram defaults: centred frames, zero padding, periodic Hann, power 2
    n_fft, hop = 400, 160
    padded = np.pad(wav.astype(np.float64), n_fft // 2)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i * hop : i * hop + n_fft] * window for i in range(1 + len(wav) // hop)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    expected = power @ mel_filterbank(16000, n_fft, 40).T.astype(np.float64)
    assert mel.shape == (1 + 4000 // 160, 40)
    np.testing.assert_allclose(mel, expected, rtol=1e-3, atol=1e-6)


def test_partials_and_volume():
    assert partial_starts(100) == [0]  # shorter than a partial: one, zero-padded
    assert partial_starts(160) == [0]
    assert partial_starts(320) == [0, 80, 160]
    assert partial_starts(290) == [0, 80, 160]  # last covers 130/160 >= 0.75
    assert partial_starts(270) == [0, 80]  # last would cover 110/160 < 0.75: dropped
    quiet = np.full(16000, 0.001, np.float32)  # -60 dBFS
    out = normalize_volume(quiet)
    assert 10 * np.log10(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(-30.0, abs=1e-3)
    loud = np.full(16000, 0.5, np.float32)  # -6 dBFS: never turned down
    np.testing.assert_array_equal(normalize_volume(loud), loud)
    assert cosine_similarity([1, 0], [0, 2]) == 0.0
    assert cosine_similarity([1, 1], [2, 2]) == pytest.approx(1.0)


class _NotTensors:
    pass


def test_bad_weights(tmp_path, monkeypatch):
    torch.save({"centers": torch.zeros(3, 2)}, tmp_path / "other.pt")
    with pytest.raises(Unit2AVError, match="not a GE2E speaker encoder"):
        SpeakerEncoder.load(tmp_path / "other.pt")
    torch.save({"model_state": {"x": argparse.Namespace(a=1)}}, tmp_path / "pickled.pt")
    with pytest.raises(Unit2AVError, match="refused"):
        SpeakerEncoder.load(tmp_path / "pickled.pt")
    torch.save(_NotTensors(), tmp_path / "obj.pt")
    with pytest.raises(Unit2AVError, match="refused"):
        SpeakerEncoder.load(tmp_path / "obj.pt")
    state = read_packed_state(default_weights())
    state["linear.weight"] = torch.zeros(256, 128)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(Unit2AVError, match="do not fit"):
        SpeakerEncoder.load(tmp_path / "shape.pt")
    with pytest.raises(Unit2AVError, match="not found"):
        SpeakerEncoder.load(tmp_path / "missing.pt")
    (tmp_path / "garbage.bin").write_bytes(b"unit2av-packed-state-1\n\xff\xff\xff\x00{")
    with pytest.raises(Unit2AVError, match="corrupt packed state dict") as e:
        read_packed_state(tmp_path / "garbage.bin")
    assert "\n" not in str(e.value)
    with pytest.raises(Unit2AVError, match="not a packed state dict"):
        read_packed_state(tmp_path / "shape.pt")


# SHA-256 over (name, float32 bytes) of the 16 tensors of resemblyzer 0.1.4's pretrained.pt "model_state",
# computed from that file (not from the bundled copy).
RESEMBLYZER_SHA256 = "e585f3cee8e789b8a3b7fc958e04d945699befed5dd9f42c60c4ffcf130b435b"


def test_bundled_weights_are_resemblyzers_bit_for_bit(tmp_path, corpus, encoder):
    """No `pip install resemblyzer` needed: the bundled weights are its pretrained.pt's, losslessly packed."""
    state = read_packed_state(default_weights())
    h = hashlib.sha256()
    for name, t in state.items():
        assert t.dtype == torch.float32
        h.update(name.encode())
        h.update(t.numpy().tobytes())
    assert h.hexdigest() == RESEMBLYZER_SHA256 and len(state) == 16
    assert default_weights().stat().st_size < 5 * 2**20
    write_packed_state(state, tmp_path / "again.bin")  # the format round-trips exactly
    assert all(torch.equal(a, b) for a, b in zip(read_packed_state(tmp_path / "again.bin").values(), state.values()))
    if importlib.util.find_spec("resemblyzer") is None:
        print("resemblyzer not installed: compared with the pinned SHA-256 only")
        return
    original = torch.load(resemblyzer_weights(), map_location="cpu", weights_only=True)["model_state"]
    assert list(original) == list(state) and all(torch.equal(original[k], state[k]) for k in state)
    _, records = corpus
    wav, sr = sf.read(records[0]["path"], dtype="float32")
    np.testing.assert_array_equal(SpeakerEncoder.load(resemblyzer_weights()).embed(wav, sr), encoder.embed(wav, sr))


def test_bad_audio(encoder, tmp_path):
    with pytest.raises(Unit2AVError):
        encoder.embed(np.zeros(0, np.float32), 16000)
    with pytest.raises(Unit2AVError, match="silent"):
        encoder.embed(np.zeros(16000, np.float32), 16000)
    with pytest.raises(Unit2AVError, match="NaN"):
        encoder.embed(np.full(1600, np.nan, np.float32), 16000)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(Unit2AVError, match="bad.wav"):
        encoder.embed_file(tmp_path / "bad.wav")


def test_cli_speaker(tmp_path, corpus, embeddings, capsys):
    root, records = corpus
    out = tmp_path / "emb"
    spk = records[0]["speaker"]
    rc = main(
        [
            "speaker",
            "--input",
            str(root / spk),
            str(SAMPLE_VIDEO),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "wrote 5 speaker embeddings" in capsys.readouterr().out
    for r in records:
        if r["speaker"] == spk:
            t = torch.load(out / f"{r['utt_id']}.pt", weights_only=True)
            assert t.dtype == torch.float32 and t.shape == (256,)
            np.testing.assert_allclose(t.numpy(), embeddings[r["utt_id"]][1], atol=1e-6)
    assert torch.load(out / f"{SAMPLE_VIDEO.stem}.pt", weights_only=True).shape == (256,)
    # errors: missing input, duplicate stems, bad weights -> exit code 2 and one line
    assert main(["speaker", "--input", str(tmp_path / "nope.wav"), "--out", str(out)]) == 2
    dup = tmp_path / "dup"
    dup.mkdir()
    (dup / f"{records[0]['utt_id']}.wav").write_bytes(open(records[0]["path"], "rb").read())
    assert main(["speaker", "--input", records[0]["path"], str(dup), "--out", str(out)]) == 2
    assert (
        main(
            [
                "speaker",
                "--input",
                records[0]["path"],
                "--out",
                str(out),
                "--speaker-encoder",
                str(tmp_path / "none.pt"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("unit2av speaker: error:") for line in err)


def test_segment_embeddings_and_speaker_consistency_loss(corpus, encoder):
    from unit2av.io.audio import load_audio
    from unit2av.vocoder.losses import speaker_consistency_loss

    _, records = corpus
    by_spk: dict[str, list] = {}
    for r in records:
        by_spk.setdefault(r["speaker"], []).append(torch.from_numpy(load_audio(r["path"], 16000)[0]))
    a, b = sorted(by_spk)[:2]
    seg = 16000  # 1 s from the middle of each utterance
    cut = [w[len(w) // 2 - seg // 2 : len(w) // 2 + seg // 2] for w in by_spk[a][:2] + by_spk[b][:1]]
    a1, a2, b1 = cut
    # one segment, one partial: close to the utterance embedding that ``embed`` gives
    whole = encoder.embed(by_spk[a][0].numpy(), 16000)
    seg_emb = encoder.embed_segments(a1[None])[0].detach()
    assert seg_emb.shape == (256,) and float(seg_emb.norm()) == pytest.approx(1.0, abs=1e-5)
    assert cosine_similarity(seg_emb, whole) > 0.8
    # quiet audio is raised to -30 dBFS first (as ``embed`` does): how quiet does not matter
    quiet = a1 * (0.01 / float(a1.pow(2).mean().sqrt()))  # -40 dBFS
    assert torch.allclose(encoder.embed_segments(quiet[None]), encoder.embed_segments(0.3 * quiet[None]), atol=1e-4)
    same = float(speaker_consistency_loss(encoder, a1[None], a1[None]))
    same_voice = float(speaker_consistency_loss(encoder, a1[None], a2[None]))
    other_voice = float(speaker_consistency_loss(encoder, a1[None], b1[None]))
    assert same < 1e-5 and same_voice < other_voice, (same_voice, other_voice)
    # gradients reach the generated audio, not the encoder
    fake = b1.clone()[None].requires_grad_(True)
    enc = SpeakerEncoder.load().requires_grad_(False)
    speaker_consistency_loss(enc, a1[None], fake).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    assert all(p.grad is None for p in enc.parameters())
