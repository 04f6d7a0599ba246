"""One browser tab's review state and the edits on it, without any UI.

    s = open_video("clip.mp4", folder)            # decodes once: viewer frames + strip thumbnails
    s.set_boxes(detect_video("clip.mp4").boxes, "detected")
    s.edit("10:20", "none")                        # frames 10..19 -> None (end exclusive, as `bbox edit`)
    s.undo()
    target, backup = s.save(Path("clip.bbox.pkl"))  # atomic; the file it replaces kept as .bak once
    strip, view = s.strip(), s.view()               # (H, W, 3) BGR images for the page

Every tab holds its own ``Session`` (Gradio ``gr.State``); nothing here is shared between tabs.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import fail
from ..io.boxes import read_boxes, write_boxes
from ..io.media import VideoInfo, iter_frames, probe_video
from ..prepare.draw import draw_box, overlay_video
from ..prepare.edit import BACKUP_SUFFIX, box_info, edit_boxes, parse_range
from . import strip as st

log = logging.getLogger(__name__)

MAX_VIEW_BYTES = 512 * 2**20  # JPEG bytes of viewer frames kept per tab; past that frames are decoded on demand
JPEG_QUALITY = 85
MAX_UNDO = 100  # edits remembered for undo
EDIT_MODES = ("none", "restore")


class FrameStore:
    """Viewer-sized frames of one video (JPEG in memory) and the strip's thumbnails, from one decoding pass.

    Args:
        video: the video file.
        info: its ``probe_video`` result.
        progress: optional callable ``(done, total)`` called while decoding.
    """

    def __init__(self, video: Path, info: VideoInfo, progress=None):
        self.video, self.info = video, info
        self.scale = st.view_scale(info.width)
        self.size = (max(1, round(info.width * self.scale)), max(1, round(info.height * self.scale)))
        wanted = set(st.thumb_frames(info.num_frames))
        self.jpegs: list[bytes] = []
        self.thumbs: dict[int, np.ndarray] = {}
        self.complete = True
        total = 0
        for i, frame in enumerate(iter_frames(video)):
            small = self._shrink(frame)
            if i in wanted:
                self.thumbs[i] = cv2.resize(
                    small,
                    (st.THUMB_WIDTH, max(1, round(st.THUMB_WIDTH * small.shape[0] / small.shape[1]))),
                    interpolation=cv2.INTER_AREA,
                )
            if self.complete:
                data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()
                total += len(data)
                self.jpegs.append(data)
                if total > MAX_VIEW_BYTES:
                    log.warning("%s: too long to keep every frame for the viewer; decoding on demand", video)
                    self.complete, self.jpegs = False, []
            if progress is not None:
                progress(i + 1, info.num_frames)
        if not self.thumbs:
            raise fail(video, "no frames could be decoded")

    def _shrink(self, frame: np.ndarray) -> np.ndarray:
        return frame if self.scale == 1.0 else cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)

    def frame(self, index: int) -> np.ndarray:
        """(h, w, 3) BGR frame ``index`` at viewer size."""
        if self.complete and index < len(self.jpegs):
            return cv2.imdecode(np.frombuffer(self.jpegs[index], np.uint8), cv2.IMREAD_COLOR)
        for frame in iter_frames(self.video, start=index):
            return self._shrink(frame)
        raise fail(self.video, f"cannot decode frame {index}")


@dataclass
class Session:
    """A video under review in one tab: its boxes as loaded/detected (``reference``) and as edited (``boxes``)."""

    video: Path
    info: VideoInfo
    frames: FrameStore
    folder: Path  # this tab's files (renders, downloads)
    boxes: list | None = None  # one float32 (4,) box or None per frame
    reference: list | None = None  # the boxes before any edit (restore copies from here)
    origin: str = ""  # where the boxes came from, for the status line
    bbox_path: Path | None = None  # the box file loaded (the default save target)
    history: list = field(default_factory=list)  # earlier ``boxes`` lists, for undo
    cursor: int = 0  # frame in the viewer
    anchor: int | None = None  # first click of a range picked on the strip
    backed_up: set = field(default_factory=set)  # files already copied to .bak in this tab

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    def require_boxes(self) -> list:
        """The current boxes, or a one-line error asking for them."""
        if self.boxes is None:
            raise fail(self.video, "has no boxes yet: detect them or load a .bbox.pkl first")
        return self.boxes

    def set_boxes(self, boxes: list, origin: str, path: Path | None = None) -> None:
        """Take a new box list (detected or loaded); clears the undo history.

        Raises:
            Unit2AVError: the list's length is not the video's frame count.
        """
        if len(boxes) != self.num_frames:
            raise fail(
                path or origin, f"has {len(boxes)} boxes but the video {self.video.name} has {self.num_frames} frames"
            )
        self.boxes, self.reference = list(boxes), list(boxes)
        self.origin, self.bbox_path, self.history, self.anchor = origin, path, [], None

    def load(self, path: Path) -> None:
        """Read a box file through the project's restricted reader (``unit2av.io.boxes``)."""
        self.set_boxes(read_boxes(path), str(path), path)

    def parse_ranges(self, text: str) -> list[tuple[int, int]]:
        """``"10:20, 41:84"`` -> ``[(10, 20), (41, 84)]`` (end exclusive; ``bbox edit``'s syntax and errors)."""
        parts = [p for p in re.split(r"[,;\s]+", str(text or "").strip()) if p]
        if not parts:
            raise fail(None, "no frame range given: type START:END (end exclusive), e.g. 10:20, or click the strip")
        return [parse_range(p, self.num_frames, self.video) for p in parts]

    def edit(self, text: str, mode: str = "none") -> list[tuple[int, int]]:
        """Set ranges to ``None`` (``mode="none"``) or back to the reference boxes (``"restore"``).

        Returns:
            The ranges applied.
        """
        if mode not in EDIT_MODES:
            raise fail(None, f"unknown edit {mode!r} (choose {', '.join(EDIT_MODES)})")
        boxes = self.require_boxes()
        ranges = self.parse_ranges(text)
        if mode == "none":
            edited = edit_boxes(boxes, none=ranges)
        else:
            edited = list(boxes)
            for start, end in ranges:
                edited[start:end] = self.reference[start:end]
        self.history = (self.history + [boxes])[-MAX_UNDO:]
        self.boxes, self.anchor = edited, None
        return ranges

    def undo(self) -> bool:
        """Go back one edit; False when there is none."""
        if not self.history:
            return False
        self.boxes = self.history.pop()
        return True

    def pick(self, x: float) -> tuple[int, str | None]:
        """A click on the strip at column ``x``: the first click anchors a range, the second closes it.

        Returns:
            ``(frame clicked, "A:B" once a range is complete else None)``; the range includes both
            clicked frames (end exclusive in the text).
        """
        frame = st.frame_at(x, self.num_frames)
        self.cursor = frame
        if self.anchor is None:
            self.anchor = frame
            return frame, None
        start, end = sorted((self.anchor, frame))
        self.anchor = None
        return frame, f"{start}:{end + 1}"

    def save(self, target: Path) -> tuple[Path, Path | None]:
        """Write the edited boxes to ``target`` in the seed's format, atomically.

        The file it replaces is kept as ``<target>.bak``, once per tab (a later save in the same
        tab does not overwrite the original's copy).

        Returns:
            ``(target, backup path or None)``.
        """
        boxes = self.require_boxes()
        backup = None
        if target.exists() and target not in self.backed_up:
            backup = target.with_name(target.name + BACKUP_SUFFIX)
            shutil.copy2(target, backup)
            self.backed_up.add(target)
        write_boxes(boxes, target)
        log.info("%s: %d of %d frames without a box", target, sum(b is None for b in boxes), len(boxes))
        return target, backup

    def download_copy(self) -> Path:
        """The edited boxes written into this tab's folder (for the page's download link)."""
        path = self.folder / f"{self.video.stem}.bbox.pkl"
        write_boxes(self.require_boxes(), path)
        return path

    def default_target(self, root: Path | None = None) -> Path:
        """Where Save writes by default: the loaded box file, else ``<video stem>.bbox.pkl`` beside the video;
        with ``root``, the first of those under it, else ``<root>/<video stem>.bbox.pkl`` (uploads)."""
        for target in (self.bbox_path, self.video.with_suffix(".bbox.pkl")):
            if target is not None and (root is None or target.is_relative_to(root)):
                return target
        return root / f"{self.video.stem}.bbox.pkl"

    def playable(self) -> Path:
        """The video as the browser can play it: itself when it is H.264/VP8/VP9/AV1, else an H.264 copy
        in the tab's folder (made once; audio kept)."""
        if _browser_playable(self.video):
            return self.video
        copy = self.folder / f"{self.video.stem}.play.mp4"
        if not copy.is_file():
            _transcode(self.video, self.info, copy)
        return copy

    def boxes_video(self) -> Path:
        """The whole video with the current boxes and frame numbers drawn (``prepare.draw``), H.264 + audio."""
        boxes = self.require_boxes()
        n = sum(1 for _ in self.folder.glob(f"{self.video.stem}.boxes*.mp4")) + 1
        out = self.folder / f"{self.video.stem}.boxes{n}.mp4"
        return overlay_video(self.video, boxes, out, progress=True)

    def summary(self) -> str:
        """One line: frames, frames without a box and their ranges, where the boxes came from, edits."""
        if self.boxes is None:
            return f"{self.video.name}: {self.num_frames} frames at {self.info.fps:g} fps; no boxes yet"
        info = box_info(self.boxes)
        ranges = ", ".join(f"{s}:{e}" for s, e in info.none_ranges[:8])
        more = f", ... ({len(info.none_ranges) - 8} more)" if len(info.none_ranges) > 8 else ""
        none = f"{info.none_count} without a box" + (f" ({ranges}{more}, end exclusive)" if ranges else "")
        edits = (
            f"; {len(self.history)} edit{'s' if len(self.history) != 1 else ''} (undo available)"
            if self.history
            else ""
        )
        return f"{self.video.name}: {self.num_frames} frames, {none}; boxes {self.origin}{edits}"

    def strip(self) -> np.ndarray:
        """The timeline strip (``strip.draw_strip``), (H, W, 3) BGR."""
        return st.draw_strip(
            self.frames.thumbs, self.boxes, self.reference, self.num_frames, cursor=self.cursor, anchor=self.anchor
        )

    def view(self, index: int | None = None) -> np.ndarray:
        """Frame ``index`` (default: the cursor) at viewer size with its box and number, (h, w, 3) BGR."""
        if index is not None:
            self.cursor = int(min(self.num_frames - 1, max(0, index)))
        box = self.boxes[self.cursor] if self.boxes is not None else None
        return draw_box(self.frames.frame(self.cursor), box, self.cursor, self.frames.scale)


BROWSER_CODECS = ("h264", "vp8", "vp9", "av1")  # video codecs Chromium and Firefox play in .mp4 / .webm


def _browser_playable(video: Path) -> bool:
    """True when a browser can play ``video`` as it is (its first video stream's codec and the container)."""
    import av

    if video.suffix.lower() not in (".mp4", ".m4v", ".webm", ".mov"):
        return False
    try:
        with av.open(str(video)) as container:
            return bool(container.streams.video) and container.streams.video[0].codec_context.name in BROWSER_CODECS
    except av.FFmpegError:
        return False


def _transcode(video: Path, info: VideoInfo, out: Path) -> None:
    """Re-encode ``video`` as H.264 + AAC (``io.video_writer.VideoWriter``), same size and frame rate."""
    from tqdm import tqdm

    from ..io.media import read_audio_track
    from ..io.video_writer import VideoWriter

    audio, rate = read_audio_track(video) if info.has_audio else (None, None)
    with VideoWriter(out, info.width, info.height, fps=info.fps, audio=audio, audio_rate=rate) as writer:
        for frame in tqdm(iter_frames(video), total=info.num_frames, desc="playable copy", unit="frame", disable=None):
            writer.write(frame)


def open_video(video: str | os.PathLike, folder: Path, progress=None) -> Session:
    """Probe and decode a video for review.

    Args:
        video: the video file (already checked to lie under the root, or uploaded).
        folder: this tab's folder.
        progress: optional ``(done, total)`` callable.

    Raises:
        Unit2AVError: a file that is not a readable video.
    """
    video = Path(video)
    info = probe_video(video)
    return Session(video, info, FrameStore(video, info, progress), folder)


__all__ = ["EDIT_MODES", "FrameStore", "Session", "open_video"]
