"""Unit2AV inference: units + source video + face boxes -> a dubbed, lip-synced video.

    from unit2av import render
    render("U.txt", "V.mp4", "V.bbox.pkl", "O.mp4", tgt_lang="ko", unit2av_path="unit_av_renderer.pt")

Steps: units (deduplicated, durations predicted) -> speech in the source speaker's voice ->
expanded units -> face renderer, a batch of windows at a time, streamed from the decoder to the
encoder so memory does not grow with the video's length (see ``timeline`` and ``paste``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..devices import resolve_device
from ..errors import fail
from ..face.model import EMBED_DIM, FRAMES_PER_WINDOW, FaceRenderer
from ..io.audio import load_audio
from ..io.checkpoints import face_state, load_state_checked, open_container, vocoder_state
from ..io.media import (
    VideoInfo,
    VideoWriter,
    decode_video,
    is_image,
    iter_frames,
    probe_video,
    read_audio_track,
    to_bgr,
)
from ..runtime.fast import fast_face_renderer, fast_vocoder
from ..vocoder.config import load_config
from ..vocoder.model import UnitVocoder
from ..vocoder.speech import synthesize_chunked
from ..vocoder.synth import read_units, speaker_tensor
from .paste import BLENDS, Box, crop_windows, faces_to_uint8, load_boxes, paste_face
from .timeline import OUTPUT_FPS, frame_schedule, num_output_frames, num_windows, unit_windows

log = logging.getLogger(__name__)

DEFAULT_BATCH_FRAMES = 80  # frames per face-renderer forward (8 windows; Wav2Lip users pass 128 on a GPU)


@dataclass
class RenderResult:
    """What ``render`` wrote."""

    path: Path  # the output video
    num_frames: int  # video frames written (25 fps)
    num_samples: int  # audio samples written
    sample_rate: int  # audio rate (the vocoder's)
    codes: torch.Tensor  # (T,) the expanded units that were voiced and rendered


def load_renderer(path: str | os.PathLike, config: str | os.PathLike | None = None, lang: str | None = None,
                  device: str | torch.device = "auto", backend: str = "auto") -> tuple[UnitVocoder, FaceRenderer]:
    """Load the vocoder for ``lang`` and the face renderer from an AV2AV container.

    Args:
        path: ``{"audio": {lang: sd}, "video": sd}`` checkpoint (``unit_av_renderer.pt``).
        config: vocoder config JSON (``None``: the bundled AV2AV config).
        lang: target language key (``None``: the only one, if the checkpoint has one).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` ...
        backend: inference path (``unit2av.runtime.fast.BACKENDS``): ``"auto"`` = folded, fused torch modules
            computing the same function; ``"eager"`` = the plain modules.

    Returns:
        ``(vocoder, face_renderer)`` in eval mode on ``device``; weight norm removed from the vocoder.

    Raises:
        Unit2AVError: unreadable file, missing language (the message lists those present), or
            weights that do not fit.
    """
    path = Path(path)
    dev = resolve_device(device)
    container = open_container(path)
    cfg = load_config(config)
    vocoder = UnitVocoder.from_config(cfg)
    load_state_checked(vocoder, vocoder_state(container, lang, path), path)
    vocoder.remove_weight_norm()
    video = face_state(container, path)
    table = video.get("unit_embed.weight")
    shape = tuple(table.shape) if isinstance(table, torch.Tensor) and table.dim() == 2 else (0, EMBED_DIM)
    face = FaceRenderer(num_embeddings=max(cfg.num_embeddings, shape[0]), width=shape[1])  # built at its width
    try:
        face.load_released(video)
    except (KeyError, RuntimeError) as e:
        detail = " ".join(str(e).split())[:300]
        raise fail(path, f"face renderer weights do not fit the AV2AV layout: {detail}") from e
    return (fast_vocoder(vocoder.to(dev).eval(), backend),
            fast_face_renderer(face.to(dev).eval(), backend))


class FrameReader:
    """Random access to a video's frames for one batch at a time, decoding forward lazily.

    Going backwards (the ping-pong walk) seeks to the nearest key frame at or before the first
    frame wanted (key frames are remembered, with their frame index, as the first pass meets
    them) and decodes forward from there, so a backward batch costs at most one GOP of extra
    decoding instead of the whole file. Only the frames of the current batch are kept.
    ``decoded`` counts the frames decoded so far.
    """

    def __init__(self, path: Path, num_frames: int):
        self.path, self.num_frames = path, num_frames
        self.still = is_image(path)
        self._it = None
        self._pos = 0  # index of the next frame the decoder yields
        self._check_pts: int | None = None  # after a seek: the pts the first frame must have
        self._last = None  # the last decoded frame (PyAV frame, or BGR array for a still image)
        self._cache: dict[int, np.ndarray] = {}
        self._keyframes: list[tuple[int, int]] = []  # (frame index, pts) of key frames met, ascending
        self._seekable = not self.still
        self.decoded = 0

    def _open_at(self, target: int) -> None:
        """Position the decoder at or before frame ``target``: the nearest known key frame, else the start."""
        if self._it is not None:
            self._it.close()
        key = next(((i, pts) for i, pts in reversed(self._keyframes) if i <= target), None)
        if not self._seekable or key is None or key[0] == 0:
            self._it, self._pos, self._check_pts = (iter_frames(self.path) if self.still
                                                    else decode_video(self.path)), 0, None
        else:
            self._it, self._pos, self._check_pts = decode_video(self.path, seek_pts=key[1]), key[0], key[1]

    def _next(self):
        """The next decoded frame (or ``None`` at the end), keeping frame indices exact."""
        frame = next(self._it, None)
        if self.still or frame is None:
            return frame
        if self._check_pts is not None:  # first frame after a seek: must be the key frame asked for
            landed, expected, self._check_pts = frame.pts, self._check_pts, None
            if landed != expected:
                log.debug("%s: seek landed on pts %s, not frame %d; decoding from the start", self.path,
                          landed, self._pos)
                self._seekable = False  # this file's time stamps do not allow exact seeking
                self._open_at(0)
                return self._next()
        self.decoded += 1
        if frame.key_frame and frame.pts is not None and (not self._keyframes or self._pos > self._keyframes[-1][0]):
            self._keyframes.append((self._pos, frame.pts))
        return frame

    def get(self, indices: list[int]) -> dict[int, np.ndarray]:
        """Frames for ``indices`` (a batch), as {index: (H, W, 3) uint8 BGR}."""
        wanted = set(indices)
        frames = {i: self._cache[i] for i in wanted if i in self._cache}
        missing = sorted(wanted - frames.keys())
        if missing:
            if self._it is None or missing[0] < self._pos:
                self._open_at(missing[0])
            todo = set(missing)
            while todo and self._pos <= missing[-1]:
                frame = self._next()
                if frame is None:  # the header promised more frames than the stream has
                    break
                if self._pos in todo:
                    frames[self._pos] = frame if self.still else to_bgr(frame)
                    todo.discard(self._pos)
                self._last, self._pos = frame, self._pos + 1
            if todo:
                if self._last is None:
                    raise fail(self.path, "cannot decode any video frame")
                log.warning("%s: stream ended at frame %d; repeating the last frame", self.path, self._pos)
                last = self._last if self.still else to_bgr(self._last)
                frames.update({i: last for i in todo})
        self._cache = frames
        return frames

    def close(self) -> None:
        if self._it is not None:
            self._it.close()


def speaker_embedding(vocoder: UnitVocoder, video: Path, info: VideoInfo, speaker_encoder=None,
                      speaker_wav: str | os.PathLike | None = None, units_spkr=None,
                      device: str | torch.device = "cpu") -> torch.Tensor | None:
    """The speaker input of the vocoder: GE2E embedding of ``speaker_wav`` or the video's own audio.

    Args:
        speaker_encoder: a ``SpeakerEncoder``, a path to its weights, or ``None`` (the default weights).
        units_spkr: an embedding stored in the units file, used when there is no audio at all.

    Returns:
        (1, 1, embedder_dim) float, (1, 1) long ids, or ``None`` for an unconditioned vocoder.
    """
    if vocoder.speaker is None:
        return None
    if speaker_wav is not None:
        wav, sr = load_audio(speaker_wav)
    elif info.has_audio:
        wav, sr = read_audio_track(video)
    elif units_spkr is not None:
        return speaker_tensor(vocoder, units_spkr, video)
    else:
        raise fail(video, "has no audio track to take the speaker's voice from; pass --speaker-wav")
    if vocoder.speaker == "id":
        raise fail(video, "this vocoder takes speaker ids, not voices; give the id in a .pt units file")
    if speaker_encoder is None or isinstance(speaker_encoder, (str, os.PathLike)):
        from ..prepare.speaker import SpeakerEncoder

        speaker_encoder = SpeakerEncoder.load(speaker_encoder, device=device)
    emb = speaker_encoder.embed(wav, sr)
    return speaker_tensor(vocoder, torch.as_tensor(np.asarray(emb)), speaker_wav or video)


@torch.inference_mode()
def render_frames(face: FaceRenderer, reader: FrameReader, boxes: list[Box | None], windows: torch.Tensor,
                  schedule: np.ndarray, writer: VideoWriter, num_frames: int, batch_windows: int,
                  blend: str) -> None:
    """Decode, render and encode ``num_frames`` output frames, ``batch_windows`` windows at a time.

    Args:
        windows: (W, 20) units per window.
        schedule: (W * 10,) source frame index per output frame (padded frames included).
    """
    device = next(face.parameters()).device
    with tqdm(total=num_frames, unit="frame", desc="render", disable=None) as bar:
        for w0 in range(0, windows.shape[0], batch_windows):
            w1 = min(windows.shape[0], w0 + batch_windows)
            idx = schedule[w0 * FRAMES_PER_WINDOW:w1 * FRAMES_PER_WINDOW].tolist()
            source = reader.get(idx)
            frame_boxes = [boxes[i] for i in idx]
            faces = crop_windows([source[i] for i in idx], frame_boxes)  # (n, 6, 96, 96)
            if any(b is not None for b in frame_boxes):
                out = face(windows[w0:w1].to(device), torch.from_numpy(faces).to(device))  # (n, 3, 96, 96)
                generated = faces_to_uint8(out)  # (n, 96, 96, 3)
            for k, i in enumerate(idx):
                if w0 * FRAMES_PER_WINDOW + k >= num_frames:
                    break  # padding of the last window
                frame = source[i].copy()
                if frame_boxes[k] is not None:
                    paste_face(frame, generated[k], frame_boxes[k], blend)
                writer.write(frame)
                bar.update(1)


def render(in_unit_path: str | os.PathLike, in_vid_path: str | os.PathLike, in_bbox_path: str | os.PathLike,
           out_vid_path: str | os.PathLike, tgt_lang: str | None, unit2av_path: str | os.PathLike,
           config: str | os.PathLike | None = None, speaker_encoder=None,
           speaker_wav: str | os.PathLike | None = None, dur_prediction: bool = True,
           device: str | torch.device = "auto", batch_size: int = DEFAULT_BATCH_FRAMES,
           blend: str = "feather", models: tuple[UnitVocoder, FaceRenderer] | None = None,
           backend: str = "auto") -> RenderResult:
    """Render a dubbed, lip-synced video (the seed's ``inference_unit2av.py``).

    Args:
        in_unit_path: ``.txt`` of space-separated unit ids, or a ``.pt`` with ``"code"``.
        in_vid_path: source video (any frame rate; a still image works) with its audio track.
        in_bbox_path: face-box pickle, one ``[x1, y1, x2, y2]`` or ``None`` per source frame.
        out_vid_path: output ``.mp4`` (H.264 + AAC, 25 fps, the source's frame size); written atomically.
        tgt_lang: language of the vocoder in the AV2AV checkpoint.
        unit2av_path: the AV2AV container ``{"audio": {lang: sd}, "video": sd}``.
        config: vocoder config JSON (``None``: AV2AV's).
        speaker_encoder: ``SpeakerEncoder`` or path to GE2E weights (``None``: Resemblyzer's).
        speaker_wav: voice reference instead of the video's own audio track.
        dur_prediction: deduplicate units and predict durations (False: units already carry them).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ...
        batch_size: frames per renderer forward (rounded up to whole 10-frame windows).
        blend: ``"feather"`` (seam-hiding) or ``"hard"`` (the reference's paste).
        models: already loaded ``(vocoder, face_renderer)`` (skips ``load_renderer``; used as given).
        backend: inference path for ``load_renderer`` (see there).

    Raises:
        Unit2AVError: any bad input (one line naming the file); no output is left behind.
    """
    if blend not in BLENDS:
        raise fail(None, f"unknown paste mode '{blend}' (choose {' or '.join(BLENDS)})")
    in_vid_path, out_vid_path = Path(in_vid_path), Path(out_vid_path)
    info = probe_video(in_vid_path)
    boxes = load_boxes(in_bbox_path, info.num_frames, info.width, info.height, in_vid_path)
    vocoder, face = models if models is not None else load_renderer(unit2av_path, config, tgt_lang, device,
                                                                                backend)
    units = read_units(in_unit_path, num_embeddings=min(vocoder.dict.num_embeddings, face.num_embeddings),
                       deduplicate=dur_prediction)
    dev = next(vocoder.parameters()).device
    spkr = speaker_embedding(vocoder, in_vid_path, info, speaker_encoder, speaker_wav, units.spkr, dev)
    wav, codes = synthesize_chunked(vocoder, units.code, spkr, dur_prediction=dur_prediction)
    sample_rate = int(vocoder.config.sampling_rate)
    frames = num_output_frames(codes.numel())
    windows = unit_windows(codes, num_windows(frames))  # (W, 20)
    schedule = frame_schedule(windows.shape[0] * FRAMES_PER_WINDOW, info.num_frames, info.fps)
    log.info("%s: %d units -> %.2f s of speech, %d frames from %d source frames at %g fps", in_unit_path,
             codes.numel(), len(wav) / sample_rate, frames, info.num_frames, info.fps)
    batch_windows = max(1, -(-int(batch_size) // FRAMES_PER_WINDOW))
    reader = FrameReader(in_vid_path, info.num_frames)
    try:
        with VideoWriter(out_vid_path, info.width, info.height, fps=OUTPUT_FPS, audio=wav,
                         audio_rate=sample_rate) as writer:
            render_frames(face, reader, boxes, windows, schedule, writer, frames, batch_windows, blend)
    finally:
        reader.close()
    return RenderResult(out_vid_path, frames, len(wav), sample_rate, codes)


__all__ = ["RenderResult", "load_renderer", "render"]
