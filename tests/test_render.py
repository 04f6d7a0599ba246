"""Unit2AV rendering on the real AV2AV sample with the reference checkpoint (64-channel vocoder).

Renders are kept short (10-30 frames): the face renderer is 36 M parameters on a shared CPU.
"""

from __future__ import annotations

import pickle

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av.cli import main as cli_main
from unit2av.errors import Unit2AVError
from unit2av.io.boxes import clip_box
from unit2av.io.media import iter_frames, probe_video
from unit2av.io.safe import dump_plain_pickle, load_plain_pickle
from unit2av.io.video_writer import VideoWriter
from unit2av.pipeline.paste import crop_windows, paste_face
from unit2av.pipeline.render import load_renderer, render
from unit2av.pipeline.timeline import frame_schedule, ping_pong, retime_indices, unit_windows
from unit2av.prepare.speaker import SpeakerEncoder

HOP = 320  # samples per unit of the reference config (16 kHz, 50 Hz units)
LABEL = 16  # side of the corner patch that labels synthetic clips' frames (outside every sample box)


@pytest.fixture(scope="module")
def models(reference_dir, reference_config):
    return load_renderer(reference_dir / "unit2av_ref.pt", reference_config, lang="ko", device="cpu")


@pytest.fixture(scope="module")
def encoder():
    return SpeakerEncoder.load()


@pytest.fixture(scope="module")
def source_frames():
    return list(iter_frames(SAMPLE_VIDEO))


@pytest.fixture(scope="module")
def sample_boxes():
    return load_plain_pickle(SAMPLE_BBOX)


def _units(path, n, seed=0):
    path.write_text(" ".join(map(str, np.random.default_rng(seed).integers(0, 1000, n))))
    return path


def _outside(boxes, h=224, w=224):
    """(H, W) bool: pixels outside the (clipped) box."""
    mask = np.ones((h, w), bool)
    if boxes is not None:
        x1, y1, x2, y2 = clip_box(boxes, w, h)
        mask[y1:y2, x1:x2] = False
    return mask


def _labelled_clip(path, frames, fps, step, audio=True):
    """Write frames with a grey corner patch of value ``step * i`` identifying frame i."""
    wav = None
    if audio:
        from unit2av.io.media import read_audio_track

        wav, _ = read_audio_track(SAMPLE_VIDEO)
    with VideoWriter(path, 224, 224, fps=fps, audio=wav, audio_rate=16000 if audio else None) as w:
        for i, f in enumerate(frames):
            f = f.copy()
            f[:LABEL, :LABEL] = step * i
            w.write(f)


def _labels(path, step):
    return [int(round(f[2 : LABEL - 2, 2 : LABEL - 2].mean() / step)) for f in iter_frames(path)]


# ----------------------------------------------------------------------------- timeline and paste
def test_timeline_ping_pong_retime_and_windows():
    assert ping_pong(np.arange(9), 4).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert ping_pong(np.arange(3), 1).tolist() == [0, 0, 0]
    assert retime_indices(6, 30.0).tolist() == [0, 1, 2, 4, 5]  # 0.2 s at 25 fps, nearest 30 fps frame
    assert frame_schedule(7, 3, 25.0).tolist() == [0, 1, 2, 1, 0, 1, 2]
    w = unit_windows(torch.arange(23), 2)
    assert w.shape == (2, 20) and w[1].tolist() == [20, 21, 22] + [22] * 17


def test_crops_reproduce_fixture_windows(reference_expected, sample_boxes):
    """Box -> clipped integer crop -> 96x96: the reference's crops, pixel for pixel (FFmpeg-decoded frames)."""
    with av.open(str(SAMPLE_VIDEO)) as c:
        frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(20), c.decode(video=0))]
    boxes = [clip_box(b, 224, 224) for b in sample_boxes[:20]]
    win = crop_windows(frames, boxes)
    crops = reference_expected["face__crops_bgr"].transpose(0, 3, 1, 2) / 255.0  # (20, 3, 96, 96)
    assert np.abs(win[:, 3:] - crops).max() < 1e-6
    assert np.all(win[:, :3, 48:] == 0) and np.abs(win[:, :3, :48] - crops[:, :, :48]).max() < 1e-6
    assert np.all(crop_windows(frames[:1], [None]) == 0)


@pytest.mark.parametrize("blend", ["hard", "feather"])
def test_paste_partly_outside_box_is_undistorted(source_frames, sample_boxes, blend):
    frame = source_frames[0]
    box = clip_box(np.asarray(sample_boxes[0]) + [-80, 0, -80, 0], 224, 224)  # hangs off the left edge
    assert box[0] == 0
    face = crop_windows([frame], [box])[0, 3:]  # the frame's own face, (3, 96, 96)
    face = np.clip(face.transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    out = frame.copy()
    paste_face(out, face, box, blend)
    x1, y1, x2, y2 = box
    # Pasting the unchanged face back gives the frame again (up to resampling blur); a squashed paste would not.
    assert np.abs(out[y1:y2, x1:x2].astype(int) - frame[y1:y2, x1:x2]).mean() < 4
    assert np.array_equal(out[:, x2:], frame[:, x2:]) and np.array_equal(out[y2:], frame[y2:])


# ----------------------------------------------------------------------------- end-to-end renders
def test_render_sample_end_to_end(tmp_path, models, encoder, source_frames, sample_boxes):
    boxes = list(sample_boxes)
    boxes[5] = boxes[6] = None  # frames the user wants left untouched
    dump_plain_pickle(boxes, tmp_path / "edited.bbox.pkl")
    out = tmp_path / "out.mp4"
    result = render(
        _units(tmp_path / "u.txt", 14),
        SAMPLE_VIDEO,
        tmp_path / "edited.bbox.pkl",
        out,
        "ko",
        None,
        speaker_encoder=encoder,
        models=models,
    )
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.has_audio) == (224, 224, 25.0, True)
    assert result.num_samples == result.codes.numel() * HOP
    assert info.audio_duration == pytest.approx(result.num_samples / 16000, abs=1e-3)
    assert info.num_frames == result.num_frames
    assert abs(info.num_frames / 25.0 - info.audio_duration) <= 1 / 25.0
    assert 10 <= info.num_frames < 70  # shorter speech: the video ends with it
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.streams.video[0].codec_context.name == "h264"
    rendered = list(iter_frames(out))
    for k, frame in enumerate(rendered):
        diff = np.abs(frame.astype(int) - source_frames[k]).mean(axis=2)
        if boxes[k] is None:
            assert diff.mean() < 3, f"None frame {k} changed"
            continue
        assert diff[_outside(boxes[k])].mean() < 3, f"frame {k} changed outside its box"
        x1, y1, x2, y2 = clip_box(boxes[k], 224, 224)
        assert diff[(y1 + y2) // 2 : y2, x1:x2].mean() > 5, f"frame {k}: mouth region not re-rendered"


def test_longer_speech_ping_pongs(tmp_path, models, encoder, source_frames, sample_boxes):
    clip = tmp_path / "clip12.mp4"
    _labelled_clip(clip, source_frames[:12], 25, 20)
    dump_plain_pickle(list(sample_boxes[:12]), tmp_path / "clip12.pkl")
    out = tmp_path / "pp.mp4"
    result = render(
        _units(tmp_path / "u.txt", 44),
        clip,
        tmp_path / "clip12.pkl",
        out,
        "ko",
        None,
        speaker_encoder=encoder,
        dur_prediction=False,
        blend="hard",
        models=models,
    )
    assert result.num_frames == 22 and probe_video(out).num_frames == 22
    assert _labels(out, 20) == list(range(12)) + list(range(10, 0, -1))


def test_30fps_source_is_retimed_by_nearest_frame(tmp_path, models, encoder, source_frames, sample_boxes):
    clip = tmp_path / "clip30.mp4"
    _labelled_clip(clip, source_frames[:24], 30, 10)
    dump_plain_pickle(list(sample_boxes[:24]), tmp_path / "clip30.pkl")
    assert probe_video(clip).fps == pytest.approx(30.0)
    out = tmp_path / "r30.mp4"
    render(
        _units(tmp_path / "u.txt", 40),
        clip,
        tmp_path / "clip30.pkl",
        out,
        "ko",
        None,
        speaker_encoder=encoder,
        dur_prediction=False,
        models=models,
    )
    info = probe_video(out)
    assert info.fps == 25.0 and info.num_frames == 20
    assert _labels(out, 10) == [min(23, round(k * 30 / 25)) for k in range(20)]


def test_still_image_renders_with_speaker_wav(tmp_path, models, encoder, source_frames, sample_boxes):
    img = tmp_path / "face.png"
    cv2.imwrite(str(img), source_frames[0])
    dump_plain_pickle([sample_boxes[0]], tmp_path / "face.pkl")
    out = tmp_path / "still.mp4"
    with pytest.raises(Unit2AVError, match="face.png.*speaker-wav"):
        render(
            _units(tmp_path / "u.txt", 20),
            img,
            tmp_path / "face.pkl",
            out,
            "ko",
            None,
            speaker_encoder=encoder,
            dur_prediction=False,
            models=models,
        )
    from unit2av import render as api_render  # the public API spelling

    api_render(
        tmp_path / "u.txt",
        img,
        tmp_path / "face.pkl",
        out,
        "ko",
        None,
        speaker_encoder=encoder,
        speaker_wav=SAMPLE_VIDEO,
        dur_prediction=False,
        models=models,
    )
    frames = list(iter_frames(out))
    assert len(frames) == 10
    keep = _outside(sample_boxes[0])
    for f in frames:
        assert np.abs(f.astype(int) - source_frames[0]).mean(axis=2)[keep].mean() < 3


def test_cli_render_with_seed_flags(tmp_path, reference_dir, reference_config, sample_boxes):
    units = _units(tmp_path / "u.txt", 20)
    out = tmp_path / "cli.mp4"
    rc = cli_main(
        [
            "render",
            "--in-unit-path",
            str(units),
            "--in_vid_path",
            str(SAMPLE_VIDEO),
            "--in-bbox-path",
            str(SAMPLE_BBOX),
            "--out-vid-path",
            str(out),
            "--tgt-lang",
            "en",
            "--unit2av-path",
            str(reference_dir / "unit2av_ref.pt"),
            "--config",
            str(reference_config),
            "--no-dur-prediction",
            "--device",
            "cpu",
            "--paste",
            "hard",
            "--batch-size",
            "10",
            "--encoder_preset",
            "ultrafast",
        ]
    )
    assert rc == 0 and probe_video(out).num_frames == 10
    assert b"cabac=0" in out.read_bytes()  # x264's settings record in the stream: the ultrafast preset was used


# ----------------------------------------------------------------------------- bad input
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _bad_cases(tmp_path, sample_boxes):
    good_units = _units(tmp_path / "u.txt", 20)
    dump_plain_pickle(list(sample_boxes[:50]), tmp_path / "short.pkl")
    dump_plain_pickle([None] * 70, tmp_path / "none.pkl")
    marker = tmp_path / "pwned"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([_Payload(marker)] * 70))
    (tmp_path / "junk.mp4").write_bytes(b"\x00not a video" * 200)
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, 224, 224) as w:
        for _ in range(12):
            w.write(np.zeros((224, 224, 3), np.uint8))
    dump_plain_pickle(list(sample_boxes[:12]), tmp_path / "silent.pkl")
    (tmp_path / "neg.txt").write_text("-1 -5 -2")
    return (
        marker,
        [
            (dict(in_bbox_path=tmp_path / "short.pkl"), r"short.pkl: has 50 boxes .*TRajLqEaWhQ_00002.mp4 has 70"),
            (dict(in_bbox_path=tmp_path / "none.pkl"), "none.pkl: all boxes are None"),
            (dict(in_bbox_path=tmp_path / "evil.pkl"), "evil.pkl: refused"),
            (dict(in_vid_path=tmp_path / "junk.mp4"), "junk.mp4"),
            (dict(in_vid_path=silent, in_bbox_path=tmp_path / "silent.pkl"), "silent.mp4: has no audio track"),
            (dict(in_unit_path=tmp_path / "neg.txt"), "neg.txt: no valid unit"),
            (dict(tgt_lang="fr"), "unit2av_ref.pt: has no vocoder for language 'fr'; it has: en, ko"),
            (dict(preset="turbo"), "unknown encoder preset 'turbo' \\(choose one of ultrafast, "),
        ],
        good_units,
    )


def test_bad_inputs_fail_with_one_line_and_no_output(tmp_path, reference_dir, reference_config, sample_boxes, encoder):
    marker, cases, units = _bad_cases(tmp_path, sample_boxes)
    out = tmp_path / "out" / "never.mp4"
    for override, message in cases:
        kwargs = dict(
            in_unit_path=units,
            in_vid_path=SAMPLE_VIDEO,
            in_bbox_path=SAMPLE_BBOX,
            out_vid_path=out,
            tgt_lang="ko",
            unit2av_path=reference_dir / "unit2av_ref.pt",
            config=reference_config,
            speaker_encoder=encoder,
            device="cpu",
        )
        kwargs.update(override)
        with pytest.raises(Unit2AVError, match=message) as e:
            render(**kwargs)
        assert "\n" not in str(e.value)
        assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    assert not marker.exists()


def test_cli_bad_input_exit_code_2(tmp_path, reference_dir, sample_boxes, capsys):
    dump_plain_pickle(list(sample_boxes[:69]), tmp_path / "b.pkl")
    out = tmp_path / "o.mp4"
    rc = cli_main(
        [
            "render",
            "--in-unit-path",
            str(_units(tmp_path / "u.txt", 10)),
            "--in-vid-path",
            str(SAMPLE_VIDEO),
            "--in-bbox-path",
            str(tmp_path / "b.pkl"),
            "--out-vid-path",
            str(out),
            "--tgt-lang",
            "ko",
            "--unit2av-path",
            str(reference_dir / "unit2av_ref.pt"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "b.pkl" in err and "69 boxes" in err


def test_chunked_speech_matches_reference_dur_case(reference_dir, reference_config, reference_expected):
    """Bounded-memory vocoding (chunks with receptive-field context) gives the reference's numbers."""
    from unit2av.vocoder.speech import synthesize_chunked

    vocoder, _ = load_renderer(reference_dir / "unit2av_ref.pt", reference_config, lang="en", device="cpu")
    code = torch.from_numpy(reference_expected["dur__code"]).long().view(-1)
    spkr = torch.from_numpy(reference_expected["dur__spkr"]).float()
    wav, codes = synthesize_chunked(vocoder, code, spkr, dur_prediction=True, chunk_units=40)
    assert codes.tolist() == reference_expected["dur__expanded_code"].reshape(-1).tolist()
    expected = reference_expected["dur__wav"].reshape(-1)
    assert wav.shape == expected.shape and np.abs(wav - expected).max() <= 1e-4
