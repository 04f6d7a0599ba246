"""The espeak-ng corpus generator: layout, audio format, distinct voices, errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unit2av.demo.corpus import (
    DEFAULT_VOICES,
    SENTENCES,
    Voice,
    check_voice,
    espeak_available,
    make_corpus,
    synthesize_espeak,
)
from unit2av.errors import Unit2AVError

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return out, make_corpus(out, sentences_per_voice=6, chapters=2)  # its speed: benchmarks/bench_corpus.py


def test_layout_like_zeroth(corpus):
    out, records = corpus
    assert len(records) == 6 * len(DEFAULT_VOICES) == 24
    speakers = {r["speaker"] for r in records}
    assert len(speakers) >= 4
    assert {r["lang"] for r in records} == {"ko", "en"}
    assert len({r["voice"] for r in records}) == len(speakers)
    for r in records:
        path = Path(r["path"])
        assert re.fullmatch(r"\d+_\d{3}_\d{4}", r["utt_id"])
        assert r["utt_id"].split("_")[0] == r["speaker"]
        assert path == out / r["speaker"] / f"{r['utt_id']}.wav"
        assert r["text"] in SENTENCES[r["lang"]]
    # two chapters per speaker: utterances 1,3,5 -> chapter 001, 2,4,6 -> chapter 002
    ids = sorted(r["utt_id"] for r in records if r["speaker"] == "113")
    assert ids == ["113_001_0001", "113_001_0002", "113_001_0003", "113_002_0001", "113_002_0002", "113_002_0003"]


def test_audio_is_16k_mono_speech(corpus):
    _, records = corpus
    for r in records:
        info = sf.info(r["path"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == r["num_samples"]
        wav, _ = sf.read(r["path"], dtype="float32")
        assert 0.8 < info.duration < 8.0  # a short sentence
        assert 0.5 < np.abs(wav).max() <= 1.0
        assert np.sqrt(np.mean(wav**2)) > 0.02  # not silence


def test_same_language_voices_read_same_sentences_and_sound_different(corpus):
    _, records = corpus
    by_spk = {}
    for r in records:
        by_spk.setdefault(r["speaker"], []).append(r)
    ko = [s for s in by_spk if by_spk[s][0]["lang"] == "ko"]
    assert len(ko) >= 2
    a, b = (sorted(by_spk[s], key=lambda r: r["utt_id"]) for s in ko[:2])
    assert [r["text"] for r in a] == [r["text"] for r in b]
    assert a[0]["num_samples"] != b[0]["num_samples"]  # different speed


def test_deterministic(tmp_path):
    v = [Voice("7", "en-us+f3", "en", speed=170, pitch=60)]
    r1 = make_corpus(tmp_path / "a", voices=v, sentences_per_voice=2, seed=3)
    r2 = make_corpus(
        tmp_path / "b",
        voices=[{"speaker": "7", "voice": "en-us+f3", "lang": "en", "speed": 170, "pitch": 60}],
        sentences_per_voice=2,
        seed=3,
    )
    for x, y in zip(r1, r2):
        assert x["text"] == y["text"]
        np.testing.assert_array_equal(sf.read(x["path"])[0], sf.read(y["path"])[0])


def test_bad_voice_and_language(tmp_path):
    with pytest.raises(Unit2AVError, match="no voice 'no-such-voice-xyz'"):
        make_corpus(tmp_path, voices=[Voice("1", "no-such-voice-xyz", "en")])
    with pytest.raises(Unit2AVError, match="no variant 'zz9'"):
        check_voice("en-us+zz9")
    check_voice("ko+f3")
    check_voice("en-gb")
    with pytest.raises(Unit2AVError, match="espeak-ng"):
        synthesize_espeak("", "en-us")  # nothing to say: no audio
    with pytest.raises(Unit2AVError, match="no sentences for language"):
        make_corpus(tmp_path, voices=[Voice("1", "fr", "fr")])


def test_missing_espeak(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not espeak_available()
    with pytest.raises(Unit2AVError, match="espeak-ng not found") as e:
        make_corpus(tmp_path / "c")
    assert "\n" not in str(e.value)
