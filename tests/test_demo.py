"""unit2av demo: the bundled models dub a talking face offline and write the three files."""

from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest

from unit2av.demo.corpus import DEFAULT_VOICES, EXTRA_VOICES, espeak_available, synthesize_espeak
from unit2av.demo.video import asset, load_default_models, run_video_demo
from unit2av.io.media import probe_video, read_audio_track


def _short_script() -> dict:
    script = json.loads(asset("demo_script.json").read_text())
    a, b = script["sentences"][:2]
    a["units"], b["units"] = a["units"][:25], b["units"][:25]
    script["sentences"] = [a, b]
    return script


def test_bundled_assets_are_small_and_load():
    total = sum(p.stat().st_size for p in asset("vocoder.pt").parent.iterdir() if p.is_file())
    assert total < 25 * 2**20
    vocoder, face = load_default_models("cpu")
    assert vocoder.dur_predictor is not None and vocoder.speaker == "embedding"
    assert face.num_embeddings == vocoder.dict.num_embeddings
    script = json.loads(asset("demo_script.json").read_text())
    assert set(script["order"]) == set(script["voices"]) and len(script["sentences"]) >= 2
    assert all(max(s["units"]) < face.num_embeddings for s in script["sentences"])


def _pitch(wav: np.ndarray) -> tuple[float, float]:
    """(median f0 in Hz of the voiced frames, share of frames that are voiced), by ``frame_f0``."""
    import torch

    from unit2av.spectral import frame_f0

    track = frame_f0(torch.from_numpy(np.asarray(wav, np.float32)), 16000, 320)
    voiced = track[track > 0]
    return (float(voiced.median()) if voiced.numel() else 0.0), float((track > 0).float().mean())


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
def test_bundled_vocoder_speaks_in_each_voice_at_its_pitch():
    """Voice A is espeak-ng ko+m3, voice B en-gb+f4 (see MODEL_CARD.md): the synthetic held-out sentence has
    the pitch of the real one, spoken again here by the corpus voice it was held out from."""
    import torch

    from unit2av.prepare.speaker import SpeakerEncoder
    from unit2av.vocoder.synth import synthesize

    vocoder, _ = load_default_models("cpu")
    script = json.loads(asset("demo_script.json").read_text())
    emb = {k: torch.tensor(v["embedding"]) for k, v in script["voices"].items()}
    encoder = SpeakerEncoder.load()
    voices = {v.speaker: v for v in DEFAULT_VOICES + EXTRA_VOICES}
    real_f0 = {}
    for sentence in script["sentences"][:2]:
        v = voices[sentence["source_speaker"]]
        real_f0[sentence["voice"]] = _pitch(synthesize_espeak(sentence["text"], v.voice, v.speed, v.pitch))[0]
    assert real_f0["A"] < real_f0["B"]  # a low male and a higher female voice
    for sentence in script["sentences"][:2]:  # A's held-out sentence, then B's
        own = sentence["voice"]
        other = next(v for v in emb if v != own)
        wav, _ = synthesize(vocoder, torch.tensor(sentence["units"]), emb[own].view(1, 1, -1), dur_prediction=True)
        e = torch.from_numpy(encoder.embed(wav, 16000))
        assert float(e @ emb[own]) > float(e @ emb[other]), own
        f0, voiced = _pitch(wav)
        assert voiced > 0.3, (own, voiced)  # voiced, not whispered (the mel-only model: under 10 % for A)
        assert abs(f0 - real_f0[own]) < 0.15 * real_f0[own], (own, f0)  # models without f0_source: ~125 Hz


def test_demo_writes_video_preview_and_spectrogram(tmp_path):
    r = run_video_demo(tmp_path / "demo", device="cpu", script=_short_script())
    assert {p.name for p in (tmp_path / "demo").iterdir()} == {"demo.mp4", "preview.png", "spectrogram.png"}
    info = probe_video(r.video)
    assert info.num_frames == r.frames and info.has_audio and (info.width, info.height) == (224, 224)
    wav, sr = read_audio_track(r.video)
    assert abs(len(wav) / sr - r.seconds) < 0.15 and np.abs(wav).max() > 0.05
    preview = cv2.imread(str(r.preview))
    assert preview.shape == (2 * (96 * 2 + 4), 2 * 96 * 8, 3)
    spec = cv2.imread(str(r.spectrogram))
    assert spec.shape[1] == int(r.seconds * 100)
    # speech, then the trailing pause: quiet in the soundtrack, dark in the spectrogram
    tail = slice(int((r.seconds - 0.25) * sr), None)
    assert np.sqrt(np.mean(wav[tail] ** 2)) < 0.1 * np.sqrt(np.mean(wav**2))
    x = int((r.seconds - 0.2) * 100)
    assert spec[20:, x : x + 10].mean() < 0.5 * spec[20:, : x - 30].mean()


def test_default_demo_command(tmp_path, capsys):
    from unit2av.commands import demo as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    assert cmd.run(p.parse_args(["--out", str(tmp_path / "demo"), "--device", "cpu"])) == 0
    printed = capsys.readouterr().out
    for name in ("demo.mp4", "preview.png", "spectrogram.png"):
        assert str(tmp_path / "demo" / name) in printed and (tmp_path / "demo" / name).is_file()


def test_train_demo_leaves_held_out_speech(tmp_path):
    """`unit2av demo --train`, shortened: corpus -> units -> 6 training steps -> held-out wavs."""
    import soundfile as sf

    from unit2av.demo.train import run_demo

    # bounded by steps, not seconds (the wall-clock budget is only a cap here), so a busy machine sees the same run
    result = run_demo(
        tmp_path / "demo", train_seconds=900.0, device="cpu", sentences=3, k=16, max_steps=6, validation_interval=3
    )
    assert result.steps == 6 and result.checkpoint == tmp_path / "demo" / "checkpoints" / "g_best"
    assert result.val_error_end < 0.9 * result.val_error_start  # training lowered the held-out mel error
    names = sorted(p.name for p in result.wavs)
    assert len(names) == 8  # 4 speakers x (own durations, predicted durations)
    for wav_path in result.wavs:
        wav, sr = sf.read(wav_path, dtype="float32")
        assert sr == 16000 and wav.size > 0.3 * sr and np.isfinite(wav).all()
