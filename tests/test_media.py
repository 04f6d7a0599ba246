"""unit2av.media on the real AV2AV sample clip: probe, decode, audio, atomic H.264 + AAC writing."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from conftest import SAMPLE_VIDEO

from unit2av.errors import Unit2AVError
from unit2av.media import VideoWriter, iter_frames, probe_video, read_audio_track


@pytest.fixture(scope="module")
def sample_frames():
    return list(iter_frames(SAMPLE_VIDEO))


def test_probe_and_decode_sample(sample_frames):
    info = probe_video(SAMPLE_VIDEO)
    assert (info.width, info.height, info.fps, info.num_frames, info.has_audio) == (224, 224, 25.0, 70, True)
    assert info.duration == pytest.approx(2.8)
    assert len(sample_frames) == 70
    assert sample_frames[0].shape == (224, 224, 3) and sample_frames[0].dtype == np.uint8
    # BGR order: the same frame through OpenCV's own decoder agrees channel for channel.
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    ok, first = cap.read()
    cap.release()
    if ok:
        assert np.abs(first.astype(int) - sample_frames[0]).mean() < 2
    assert list(iter_frames(SAMPLE_VIDEO, start=68))[0].tobytes() == sample_frames[68].tobytes()


def test_audio_track_of_sample():
    wav, sr = read_audio_track(SAMPLE_VIDEO)
    assert sr == 16000 and wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) / sr - 2.8) < 0.1
    assert 0.05 < np.abs(wav).max() <= 1.0  # real speech, not silence


def test_writer_roundtrip_h264_aac(tmp_path, sample_frames):
    out = tmp_path / "out.mp4"
    speech = (0.3 * np.sin(np.arange(40_000) / 16000 * 2 * np.pi * 220)).astype(np.float32)
    with VideoWriter(out, 224, 224, fps=25, audio=speech, audio_rate=16000) as w:
        for f in sample_frames[:63]:
            w.write(f)
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.num_frames) == (224, 224, 25.0, 63)
    assert info.audio_duration == pytest.approx(40_000 / 16000, abs=1e-3)
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert a.codec_context.name == "aac" and a.codec_context.sample_rate == 16000
    decoded = list(iter_frames(out))
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(int) for f in decoded]
    ref = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(int) for f in sample_frames[:63]]
    assert np.mean([np.abs(a - b).mean() for a, b in zip(grey, ref)]) < 2
    wav, sr = read_audio_track(out)
    n = min(len(wav), len(speech))
    assert np.corrcoef(wav[:n], speech[:n])[0, 1] > 0.95


def test_writer_is_atomic_and_handles_odd_sizes(tmp_path, sample_frames):
    out = tmp_path / "fail.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(out, 224, 224) as w:
            w.write(sample_frames[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    odd = tmp_path / "odd.mp4"
    with VideoWriter(odd, 223, 221) as w:
        for f in sample_frames[:3]:
            w.write(np.ascontiguousarray(f[:221, :223]))
    info = probe_video(odd)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (224, 222, 3, False)


def test_still_image_is_a_one_frame_video(tmp_path, sample_frames):
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), sample_frames[10])
    info = probe_video(img)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (224, 224, 1, False)
    frames = list(iter_frames(img))
    assert len(frames) == 1 and np.array_equal(frames[0], sample_frames[10])
    with pytest.raises(Unit2AVError, match="face.png.*no audio"):
        read_audio_track(img)


def test_bad_files_give_one_line_errors(tmp_path, sample_frames):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(Unit2AVError, match="junk.mp4") as e:
        probe_video(junk)
    assert "\n" not in str(e.value)
    with pytest.raises(Unit2AVError, match="missing.mp4.*not found"):
        probe_video(tmp_path / "missing.mp4")
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, 224, 224) as w:
        w.write(sample_frames[0])
    with pytest.raises(Unit2AVError, match="silent.mp4.*no audio track"):
        read_audio_track(silent)
