"""render with decoding, the face renderer and encoding overlapping (three threads): the same video.

The expected frames are made here, one batch after another, from the pipeline's pieces (frame
schedule, crops, renderer, paste) and encoded with the same (deterministic) encoder settings;
the overlapped render must decode to exactly those frames. Stage errors must surface in the caller.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from conftest import SAMPLE_BBOX, SAMPLE_VIDEO

from unit2av.errors import Unit2AVError, fail
from unit2av.io.boxes import load_boxes
from unit2av.io.media import iter_frames, probe_video
from unit2av.io.video_writer import VideoWriter
from unit2av.pipeline import render as render_mod
from unit2av.pipeline.frames import FrameList
from unit2av.pipeline.paste import crop_windows, faces_to_uint8, paste_face
from unit2av.pipeline.render import PIPELINE_BATCHES, SPARE_CORES, load_renderer, overlap_pays, render, render_video
from unit2av.pipeline.timeline import frame_schedule, num_windows, unit_windows
from unit2av.prepare.speaker import SpeakerEncoder

BATCH = 10  # frames per renderer forward here: one window, so a short render still has several batches


@pytest.fixture(scope="module")
def models(reference_dir, reference_config):
    return load_renderer(reference_dir / "unit2av_ref.pt", reference_config, lang="ko", device="cpu", backend="torch")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, models):
    """The sample clip dubbed with 64 units (32 frames: 4 windows, the last one mostly padding)."""
    d = tmp_path_factory.mktemp("overlap")
    (d / "u.txt").write_text(" ".join(map(str, np.random.default_rng(4).integers(0, 1000, 64))))
    out = d / "overlapped.mp4"
    result = render(
        d / "u.txt",
        SAMPLE_VIDEO,
        SAMPLE_BBOX,
        out,
        "ko",
        None,
        speaker_encoder=SpeakerEncoder.load(),
        dur_prediction=False,
        models=models,
        batch_size=BATCH,
        blend="feather",
        overlap=True,
    )
    return result, out


def _no_pipeline_threads() -> bool:
    return not any(t.name.startswith("render-") for t in threading.enumerate())


def test_overlapped_render_decodes_to_the_sequentially_made_frames(rendered, models, tmp_path):
    result, out = rendered
    face = models[1]
    source = list(iter_frames(SAMPLE_VIDEO))
    info = probe_video(SAMPLE_VIDEO)
    boxes = load_boxes(SAMPLE_BBOX, info.num_frames, info.width, info.height, SAMPLE_VIDEO)
    n = result.num_frames
    windows = unit_windows(result.codes, num_windows(n))  # (W, 20)
    schedule = frame_schedule(windows.shape[0] * 10, len(source), info.fps).tolist()
    assert n > 3 * BATCH and max(schedule) < len(source)  # several batches went through the pipeline
    expected = tmp_path / "sequential.mp4"
    with VideoWriter(expected, info.width, info.height, audio=result.wav, audio_rate=result.sample_rate) as w:
        for w0 in range(windows.shape[0]):  # one window (= one batch of BATCH frames) at a time
            idx = schedule[w0 * 10 : (w0 + 1) * 10]
            faces = crop_windows([source[i] for i in idx], [boxes[i] for i in idx])
            with torch.inference_mode():
                gen = faces_to_uint8(face(windows[w0 : w0 + 1], torch.from_numpy(faces)))
            for k, i in enumerate(idx):
                if w0 * 10 + k < n:
                    frame = source[i].copy()
                    paste_face(frame, gen[k], boxes[i], "feather")
                    w.write(frame)
    got, want = list(iter_frames(out)), list(iter_frames(expected))
    assert len(got) == len(want) == n
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert any(not np.array_equal(a, source[i]) for a, i in zip(got, schedule))  # faces were pasted
    assert out.read_bytes() == expected.read_bytes()  # audio too: the whole file
    assert _no_pipeline_threads()


def test_sequential_switch_gives_the_same_file_and_kept_faces(rendered, models, tmp_path):
    result, out = rendered
    source = FrameList(list(iter_frames(SAMPLE_VIDEO)))
    info = probe_video(SAMPLE_VIDEO)
    boxes = load_boxes(SAMPLE_BBOX, info.num_frames, info.width, info.height, SAMPLE_VIDEO)
    keep = {0, 11, 31}
    runs, files = {}, {}
    for overlap in (False, True):
        path = tmp_path / f"demo_{overlap}.mp4"
        runs[overlap] = render_video(
            models[1],
            result.wav,
            result.sample_rate,
            result.codes,
            source,
            boxes,
            path,
            batch_size=BATCH,
            keep_faces=keep,
            overlap=overlap,
        )
        files[overlap] = path.read_bytes()
    assert files[True] == files[False] == out.read_bytes()
    assert set(runs[True].faces) == keep and all(
        np.array_equal(runs[True].faces[k], runs[False].faces[k]) for k in keep
    )


class _FailingFrames(FrameList):
    """Frames in memory whose third batch cannot be read."""

    def get(self, indices):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            raise fail("broken.mp4", "cannot decode video: corrupt packet")
        return super().get(indices)


def _frames_and_boxes():
    info = probe_video(SAMPLE_VIDEO)
    return list(iter_frames(SAMPLE_VIDEO)), load_boxes(
        SAMPLE_BBOX, info.num_frames, info.width, info.height, SAMPLE_VIDEO
    )


@pytest.mark.parametrize("stage", ["decode", "model", "encode"])
def test_a_stage_error_surfaces_and_leaves_no_output_or_threads(rendered, models, tmp_path, monkeypatch, stage):
    result = rendered[0]
    frames, boxes = _frames_and_boxes()
    face = models[1]
    source = _FailingFrames(frames) if stage == "decode" else FrameList(frames)
    if stage == "model":
        calls = []

        def broken(batch_face, batch):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("out of memory in the renderer")
            return real_infer(batch_face, batch)

        real_infer = render_mod._infer
        monkeypatch.setattr(render_mod, "_infer", broken)
    if stage == "encode":
        real_write = VideoWriter.write

        def write(self, frame):
            if self.frames_written == 15:
                raise OSError("No space left on device")
            real_write(self, frame)

        monkeypatch.setattr(VideoWriter, "write", write)
    out = tmp_path / "never.mp4"
    expected = {
        "decode": (Unit2AVError, "corrupt packet"),
        "model": (RuntimeError, "out of memory"),
        "encode": (OSError, "No space left"),
    }[stage]
    with pytest.raises(expected[0], match=expected[1]):
        render_video(
            face, result.wav, result.sample_rate, result.codes, source, boxes, out, batch_size=BATCH, overlap=True
        )
    assert not out.exists() and not list(tmp_path.glob(".never*"))
    assert _no_pipeline_threads()


def test_at_most_pipeline_batches_alive_and_order_kept():
    """The decoder runs ahead of a held-up encoder by exactly the batches the pipeline allows."""
    made, emitted, alive = [], [], []

    def batches():
        for i in range(12):
            made.append(i)
            alive.append(len(made) - len(emitted))
            yield i

    def emit(i):
        if i == 0:  # hold the encoder until the decoder has filled every slot
            for _ in range(2000):
                if len(made) >= PIPELINE_BATCHES:
                    break
                time.sleep(0.005)
        emitted.append(i)

    render_mod._overlapped(batches(), lambda i: i, emit)
    assert emitted == list(range(12))
    assert max(alive) == PIPELINE_BATCHES  # reached while batch 0 was held, never exceeded
    assert _no_pipeline_threads()


def test_overlap_by_default_only_where_it_pays(rendered, models, tmp_path, monkeypatch):
    """Default: overlapped on a GPU or with spare cores, one batch after another when torch fills the CPU."""
    face = models[1]
    threads = torch.get_num_threads()
    monkeypatch.setattr(render_mod, "_cores", lambda: threads + SPARE_CORES - 1)
    assert not overlap_pays(face)
    monkeypatch.setattr(render_mod, "_cores", lambda: threads + SPARE_CORES)
    assert overlap_pays(face)
    used = []
    real = render_mod._overlapped
    monkeypatch.setattr(render_mod, "_overlapped", lambda *a, **k: used.append(1) or real(*a, **k))
    result = rendered[0]
    source = FrameList(list(iter_frames(SAMPLE_VIDEO))[:12])
    boxes = [None] * 12  # no face: nothing for the model, the pipeline still runs
    render_video(face, result.wav[: 640 * 12], result.sample_rate, result.codes[:24], source, boxes, tmp_path / "a.mp4")
    assert used == [1]
    monkeypatch.setattr(render_mod, "_cores", lambda: 1)
    render_video(face, result.wav[: 640 * 12], result.sample_rate, result.codes[:24], source, boxes, tmp_path / "b.mp4")
    assert used == [1]  # not overlapped this time
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
