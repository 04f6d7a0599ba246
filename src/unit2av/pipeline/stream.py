"""Streaming the frames of a render: batches of windows from the frame source, through the face
renderer, to the paste-and-encode step; one after another, or overlapped in three threads with at
most ``PIPELINE_BATCHES`` batches alive (``render.overlap_pays`` decides which)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..face.model import FaceRenderer
from ..io.boxes import Box
from ..io.video_writer import VideoWriter
from ..timing import FRAMES_PER_WINDOW
from .frames import FrameList, FrameReader
from .paste import crop_windows, faces_to_uint8, paste_face

PIPELINE_BATCHES = 2  # batches alive when decode / model / encode overlap: the model's and the encoder's
_END = object()  # end of a stage's stream


@dataclass
class _Batch:
    """One batch of windows on its way from the decoder through the renderer to the encoder."""

    first: int  # output frame index of its first frame
    idx: list[int]  # source frame index per output frame (padding of the last window included)
    frames: dict[int, np.ndarray]  # source index -> (H, W, 3) uint8 BGR frame
    boxes: list[Box | None]  # box per output frame
    faces: np.ndarray  # (n, 6, 96, 96) float32 renderer input
    windows: torch.Tensor  # (n / 10, 20) units
    generated: np.ndarray | None = None  # (n, 96, 96, 3) uint8 BGR renderer output (None: no box in the batch)


def _batches(
    source: FrameReader | FrameList,
    boxes: list[Box | None],
    windows: torch.Tensor,
    schedule: np.ndarray,
    batch_windows: int,
) -> Iterator[_Batch]:
    """Decode and crop, one batch of ``batch_windows`` windows at a time."""
    for w0 in range(0, windows.shape[0], batch_windows):
        w1 = min(windows.shape[0], w0 + batch_windows)
        idx = schedule[w0 * FRAMES_PER_WINDOW : w1 * FRAMES_PER_WINDOW].tolist()
        frames = source.get(idx)
        frame_boxes = [boxes[i] for i in idx]
        faces = crop_windows([frames[i] for i in idx], frame_boxes)  # (n, 6, 96, 96)
        yield _Batch(w0 * FRAMES_PER_WINDOW, idx, frames, frame_boxes, faces, windows[w0:w1])


def _infer(face: FaceRenderer, batch: _Batch) -> _Batch:
    """Run the renderer on a batch that has at least one box."""
    if any(b is not None for b in batch.boxes):
        device = next(face.parameters()).device
        with torch.inference_mode():
            out = face(batch.windows.to(device), torch.from_numpy(batch.faces).to(device))  # (n, 3, 96, 96)
        batch.generated = faces_to_uint8(out)  # (n, 96, 96, 3)
    batch.faces = None  # the input is no longer needed
    return batch


def _emit(
    batch: _Batch,
    writer: VideoWriter,
    num_frames: int,
    blend: str,
    keep: set[int],
    kept: dict[int, np.ndarray],
    bar: tqdm,
) -> None:
    """Paste a batch's faces into copies of its frames and encode them (padding frames dropped)."""
    for k, i in enumerate(batch.idx):
        n = batch.first + k  # output frame
        if n >= num_frames:
            break  # padding of the last window
        frame = batch.frames[i].copy()
        if batch.boxes[k] is not None:
            paste_face(frame, batch.generated[k], batch.boxes[k], blend)
            if n in keep:
                kept[n] = batch.generated[k]
        writer.write(frame)
        bar.update(1)


def _overlapped(batches: Iterator[_Batch], infer, emit, in_flight: int = PIPELINE_BATCHES) -> None:
    """``emit(infer(b))`` for every batch, in order, with decoding, the model and encoding overlapping.

    A decoder thread fills batches, this thread runs ``infer`` (torch's thread pool stays with it),
    an encoder thread runs ``emit``. At most ``in_flight`` batches exist at once (memory does not
    grow with the video). An exception in any stage stops all three and is raised here.
    """
    ready: queue.Queue = queue.Queue()  # decoded batches -> the model
    done: queue.Queue = queue.Queue()  # rendered batches -> the encoder
    slots = threading.Semaphore(in_flight)  # taken by the decoder per batch, given back after encoding
    stop, errors = threading.Event(), []

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(e)
                stop.set()

        return run

    def take(q: queue.Queue):
        while not stop.is_set():
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue
        return _END

    def decode():
        try:
            while True:
                while not slots.acquire(timeout=0.05):  # a slot before decoding: memory stays bounded
                    if stop.is_set():
                        return
                batch = next(batches, _END)
                ready.put(batch)
                if batch is _END or stop.is_set():
                    return
        finally:
            ready.put(_END)

    def encode():
        while (batch := take(done)) is not _END:
            emit(batch)
            slots.release()

    threads = [threading.Thread(target=guarded(f), name=f"render-{f.__name__}", daemon=True) for f in (decode, encode)]
    for t in threads:
        t.start()
    try:
        while (batch := take(ready)) is not _END:
            done.put(infer(batch))
    except BaseException:
        stop.set()
        raise
    finally:
        done.put(_END)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
