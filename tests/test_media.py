"""unit2av.io.media and io.video_writer on the real AV2AV sample clip: probe, decode, audio, atomic H.264 + AAC."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from conftest import SAMPLE_VIDEO

from unit2av.errors import Unit2AVError
from unit2av.io.media import iter_frames, probe_video, read_audio_track
from unit2av.io.video_writer import VideoWriter


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


def test_encoding_the_same_frames_is_deterministic(tmp_path, sample_frames):
    """With macroblock-tree rate control, PyAV's libx264 gave 2 to 11 different files in 16 encodes of
    these frames (more under load); without it every encode must be the same."""
    wav, sr = read_audio_track(SAMPLE_VIDEO)
    frames = sample_frames[:40]
    decoded, audio = [], []
    for k in range(6):
        out = tmp_path / f"{k}.mp4"
        with VideoWriter(out, 224, 224, audio=wav[: len(frames) * sr // 25], audio_rate=sr) as w:
            for frame in frames:
                w.write(frame)
        decoded.append(np.stack(list(iter_frames(out))))
        audio.append(read_audio_track(out)[0])
    assert all(np.array_equal(decoded[0], d) for d in decoded[1:])
    assert all(np.array_equal(audio[0], a) for a in audio[1:])
    assert 0 < np.abs(decoded[0].astype(int) - np.stack(frames)).mean() < 3  # encoded, not passed through


def test_encoder_presets_trade_size_for_speed(tmp_path, sample_frames):
    """The preset reaches libx264 (its settings record in the stream says so); both decode to the frames."""
    frames = sample_frames[:30]
    sizes = {}
    for preset, mark in (("ultrafast", b"cabac=0"), ("medium", b"subme=7")):
        out = tmp_path / f"{preset}.mp4"
        with VideoWriter(out, 224, 224, preset=preset) as w:
            for frame in frames:
                w.write(frame)
        assert mark in out.read_bytes()
        sizes[preset] = out.stat().st_size
        decoded = np.stack(list(iter_frames(out)))
        assert np.abs(decoded.astype(int) - np.stack(frames)).mean() < 3
    assert sizes["ultrafast"] > sizes["medium"]
    with pytest.raises(Unit2AVError, match=r"x.mp4: unknown encoder preset 'fastest' \(choose one of ultrafast, "):
        VideoWriter(tmp_path / "x.mp4", 224, 224, preset="fastest")


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


def _short_gop_clip(path, frames, gop):
    """The sample's frames as H.264 with a key frame every ``gop`` frames (no B-frame reordering tricks)."""
    from unit2av.io.video_writer import pick_h264_encoder

    with av.open(str(path), "w") as out:
        stream = out.add_stream(pick_h264_encoder(), rate=25)
        stream.width, stream.height, stream.pix_fmt = 224, 224, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"keyint_min": str(gop), "sc_threshold": "0"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="bgr24")))
        out.mux(stream.encode(None))


def test_frame_reader_seeks_back_to_key_frames(tmp_path, sample_frames):
    from unit2av.pipeline.frames import FrameReader
    from unit2av.pipeline.timeline import ping_pong

    clip = tmp_path / "gop8.mp4"
    _short_gop_clip(clip, sample_frames * 3, gop=8)  # 210 frames, a key frame every 8
    truth = list(iter_frames(clip))  # decoded start to end, once
    assert len(truth) == 210
    walk = ping_pong(np.arange(525), 210).tolist()  # 2.5 passes: forward, backward, forward
    batches = [walk[b : b + 10] for b in range(0, len(walk), 10)]  # one window per batch

    def run(seek: bool) -> int:
        reader = FrameReader(clip)
        reader._seekable = reader._seekable and seek
        for batch in batches:
            got = reader.get(batch)
            assert all(np.array_equal(got[i], truth[i]) for i in batch), batch
        reader.close()
        return reader.decoded

    seeking, from_start = run(True), run(False)
    # each backward batch costs its own frames plus at most one GOP; decoding from the start
    # for each of them costs ~100 frames apiece
    assert seeking <= len(walk) + 21 * 8, seeking
    assert from_start > 3 * seeking, (seeking, from_start)
    img = tmp_path / "still.png"  # a still image has no key frames to seek: it just works
    cv2.imwrite(str(img), sample_frames[0])
    still = FrameReader(img)
    assert np.array_equal(still.get([0, 0])[0], sample_frames[0])
