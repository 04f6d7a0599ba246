"""Render a tab's video with its edited boxes, through the same ``unit2av.render`` call as the CLI.

    result = dub(session, workspace, units=Path("u.txt"), model=BUNDLED, lang="demo")
    result.video, result.preview, result.spectrogram   # files in the tab's folder
    result.command                                      # the `unit2av render ...` line that gives the same video

The preview strip and the spectrogram are the ones ``unit2av demo`` draws
(``unit2av.demo.video.preview_image`` / ``spectrogram_image``): source face crops above the
rendered ones, and the log-mel of the dubbed soundtrack.
"""

from __future__ import annotations

import itertools
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import fail
from ..io.boxes import clip_boxes, crop_face, write_boxes
from ..io.media import iter_frames, read_audio_track
from ..io.safe import write_bytes_atomic
from .session import Session
from .workspace import Workspace

log = logging.getLogger(__name__)

PREVIEW_COUNT = 8  # frames in the preview strip (as the demo's)


@dataclass(frozen=True)
class RenderOptions:
    """How the app renders (``unit2av app --device/--backend``), passed to ``render`` and shown in the command."""

    device: str = "auto"  # "auto", "cpu", "cuda" ...
    backend: str = "auto"  # unit2av.runtime.fast.BACKENDS


@dataclass
class DubResult:
    """What ``dub`` wrote."""

    video: Path  # the dubbed .mp4
    preview: Path | None  # source crops over rendered crops (None when no frame had a box)
    spectrogram: Path  # log-mel of the dubbed soundtrack
    command: str  # the equivalent `unit2av render` command line
    frames: int  # video frames written
    seconds: float  # length of the speech


def render_command(
    units: Path, video: Path, boxes: Path, out: Path, lang: str, container: Path, opts: RenderOptions
) -> list[str]:
    """The ``unit2av render`` arguments that render exactly what ``dub`` renders."""
    cmd = [
        "unit2av",
        "render",
        "--in-unit-path",
        str(units),
        "--in-vid-path",
        str(video),
        "--in-bbox-path",
        str(boxes),
        "--out-vid-path",
        str(out),
        "--tgt-lang",
        lang,
        "--unit2av-path",
        str(container),
    ]
    return cmd + ["--device", opts.device, "--backend", opts.backend]


def dub(
    session: Session,
    workspace: Workspace,
    units: Path,
    model: str,
    lang: str | None,
    opts: RenderOptions = RenderOptions(),
) -> DubResult:
    """Render ``session``'s video with its current boxes; write the preview and spectrogram images.

    The boxes are written to ``<tab folder>/<stem>.render.bbox.pkl`` and rendered with
    ``unit2av.render`` exactly as ``result.command`` would.

    Args:
        session: the tab's video and boxes.
        workspace: the app's folders (the model container comes from here).
        units: the units file (``.txt`` / ``.pt``).
        model: a ``Workspace.model_choices`` entry.
        lang: the vocoder's language in the container (``None``: its first).
        opts: device and inference backend.

    Raises:
        Unit2AVError: no boxes, a bad units file or model (the render's one-line errors).
    """
    from ..pipeline.render import render

    boxes = session.require_boxes()
    container, langs = workspace.model(model)
    lang = lang or langs[0]
    if lang not in langs:
        raise fail(container, f"has no vocoder for language {lang!r} (it has {', '.join(langs)})")
    n = next(i for i in itertools.count(1) if not (session.folder / f"{session.video.stem}.dub{i}.mp4").exists())
    out = session.folder / f"{session.video.stem}.dub{n}.mp4"
    box_file = session.folder / f"{session.video.stem}.render{n}.bbox.pkl"
    write_boxes(boxes, box_file)
    result = render(units, session.video, box_file, out, lang, container, device=opts.device, backend=opts.backend)
    command = shlex.join(render_command(units, session.video, box_file, out, lang, container, opts))
    log.info("app render: %s", command)
    spectrogram = write_spectrogram(out, result, session.folder / f"{out.stem}.spectrogram.png")
    preview = write_preview(session, boxes, out, result.num_frames, session.folder / f"{out.stem}.preview.png")
    return DubResult(out, preview, spectrogram, command, result.num_frames, result.num_samples / result.sample_rate)


def _write_png(path: Path, img: np.ndarray) -> Path:
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise fail(path, "cannot encode the image")
    write_bytes_atomic(path, data.tobytes())
    return path


def write_spectrogram(video: Path, result, path: Path) -> Path:
    """Log-mel image of the dubbed video's soundtrack, one bar over the speech."""
    from ..demo.video import spectrogram_image

    wav, rate = read_audio_track(video)
    hop = max(1, result.num_samples // max(1, result.codes.numel()))  # samples per unit
    return _write_png(path, spectrogram_image(np.asarray(wav, np.float32), [(0, result.codes.numel(), 0)], rate, hop))


def write_preview(session: Session, boxes: list, video: Path, num_out: int, path: Path) -> Path | None:
    """Source face crops over the rendered ones at ``PREVIEW_COUNT`` output frames that had a box."""
    from ..demo.video import preview_image
    from ..pipeline.timeline import frame_schedule

    schedule = frame_schedule(num_out, session.num_frames, session.info.fps)  # output frame -> source frame
    clipped = clip_boxes(boxes, session.info.width, session.info.height, session.video)
    usable = [j for j in range(num_out) if clipped[schedule[j]] is not None]
    if not usable:
        return None
    picks = [usable[k] for k in np.linspace(0, len(usable) - 1, min(PREVIEW_COUNT, len(usable))).round().astype(int)]
    wanted_src = {int(schedule[j]) for j in picks}
    source = {i: f for i, f in enumerate(iter_frames(session.video)) if i in wanted_src} if wanted_src else {}
    rendered = {j: f for j, f in enumerate(iter_frames(video)) if j in set(picks)}
    frames = {j: source[int(schedule[j])] for j in picks}
    frame_boxes = {j: clipped[schedule[j]] for j in picks}
    generated = {j: crop_face(rendered[j], frame_boxes[j]) for j in picks if j in rendered}
    picks = [j for j in picks if j in generated]
    return _write_png(path, preview_image(frames, frame_boxes, generated, picks)) if picks else None


__all__ = ["DubResult", "RenderOptions", "dub", "render_command", "write_preview", "write_spectrogram"]
