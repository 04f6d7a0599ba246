"""The Gradio page of ``unit2av app``: layout and event wiring only; the work is in ``session`` and ``dub``.

Each tab keeps its own ``Session`` in a ``gr.State`` (no module globals hold user state). A
``Unit2AVError`` becomes ``error: <the CLI's one line>`` in the page's status box, and the other
outputs are left as they were. Long steps (decode, detect, render) report progress through
``gr.Progress(track_tqdm=True)``, which follows the tqdm bars of the library functions.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it: no telemetry, no version check

import gradio as gr  # noqa: E402

from ..errors import Unit2AVError  # noqa: E402
from ..io.units import UNIT_SUFFIXES  # noqa: E402
from ..prepare.faces import DetectOptions, detect_video  # noqa: E402
from . import dub_panel  # noqa: E402
from .dub import RenderOptions, dub  # noqa: E402
from .layout import forget, layout  # noqa: E402
from .page import CSS, SYNC_JS, TITLE  # noqa: E402
from .reply import Reply as _Reply  # noqa: E402
from .reply import dubbed_outputs  # noqa: E402
from .reply import need_session as _need  # noqa: E402
from .session import Session, open_video  # noqa: E402
from .workspace import BOX_SUFFIXES, BUNDLED, BUNDLED_LANG, VIDEO_SUFFIXES, Workspace  # noqa: E402

log = logging.getLogger(__name__)

# Gradio finds progress trackers by a parameter's default; it hands every call a fresh one.
_PROGRESS = gr.Progress()
_TQDM = gr.Progress(track_tqdm=True)  # follows the tqdm bars of detect_video / render


def _rgb(img):
    return None if img is None else img[:, :, ::-1].copy()


def _session_outputs(c, s: Session, reply: _Reply, status: str | None = None) -> _Reply:
    """Refresh the state, status, strip and viewer of a reply from ``s``."""
    reply.update({c.state: s, c.status: status or s.summary(), c.strip: _rgb(s.strip()), c.view: _rgb(s.view())})
    return reply


def _wire(c: SimpleNamespace, ws: Workspace, opts: RenderOptions) -> None:
    """Connect the events (handlers are closures over ``c`` and ``ws``; user state only in ``c.state``)."""
    view_out = [c.state, c.status, c.strip, c.view]
    _wire_open(c, ws, view_out)
    _wire_boxes(c, ws, view_out)
    _wire_edits(c, ws, view_out)
    _wire_dub(c, ws, opts)


def _wire_open(c: SimpleNamespace, ws: Workspace, view_out: list) -> None:
    """Open a video picked under the root or uploaded: a new session, every panel reset for it."""
    opened_out = view_out + [
        c.frame,
        c.original,
        c.save_as,
        c.bbox,
        c.dubbed,
        c.cmp_orig,
        c.preview,
        c.spectrogram,
        c.command,
        c.download,
    ]

    def opened(old, path, progress):
        with _Reply(c.status) as r:
            forget(old)
            s = open_video(
                path,
                ws.session_folder(),
                lambda i, n: progress((i, n), desc="decoding", unit="frames") if i % 25 == 0 else None,
            )
            beside = s.video.with_suffix(".bbox.pkl")
            _session_outputs(c, s, r)
            r.update(
                {
                    c.frame: gr.update(maximum=max(1, s.num_frames - 1), value=0),
                    c.original: str(s.playable()),
                    c.save_as: ws.relative(s.default_target(ws.root)),
                    c.bbox: ws.relative(beside) if beside.is_file() else gr.update(),
                    c.dubbed: None,
                    c.cmp_orig: None,
                    c.preview: None,
                    c.spectrogram: None,
                    c.command: "",
                    c.download: gr.update(value=None, interactive=False),
                }
            )
        return r

    def on_open(old, pick, progress=_PROGRESS):
        with _Reply(c.status) as r:
            return opened(old, ws.existing(pick, "video"), progress)
        return r

    def on_upload(old, file, progress=_PROGRESS):
        return opened(old, Path(file), progress) if file else {}

    c.open.click(on_open, [c.state, c.video], opened_out)
    c.upload.upload(on_upload, [c.state, c.upload], opened_out)


def _wire_boxes(c: SimpleNamespace, ws: Workspace, view_out: list) -> None:
    """Face boxes of the open video: detect them, load a box file (picked or uploaded), draw them on the video."""

    def on_detect(s, detector, style, face_index, smooth, max_gap, resize, pt, pb, pl, pr, progress=_TQDM):
        with _Reply(c.status) as r:
            s = _need(s)
            fi = None if face_index is None or int(face_index) < 0 else int(face_index)
            opts = DetectOptions(
                detector=detector,
                box_style=style,
                pads=tuple(int(v or 0) for v in (pt, pb, pl, pr)),
                smooth=int(smooth or 1),
                max_gap=int(max_gap or 0),
                face_index=fi,
                resize_factor=float(resize or 1.0),
            )
            found = detect_video(s.video, opts, progress=True)
            s.set_boxes(
                found.boxes, f"detected ({found.detector}, face found on {found.detected} of {found.num_frames} frames)"
            )
            _session_outputs(c, s, r)
        return r

    c.detect.click(
        on_detect, [c.state, c.detector, c.style, c.face_index, c.smooth, c.max_gap, c.resize, *c.pads], view_out
    )

    def loaded(s, path):
        with _Reply(c.status) as r:
            s = _need(s)
            s.load(path)
            _session_outputs(c, s, r)
            r[c.save_as] = ws.relative(s.default_target(ws.root))
        return r

    def on_load(s, pick):
        with _Reply(c.status) as r:
            return loaded(s, ws.existing(pick, "box file"))
        return r

    c.load.click(on_load, [c.state, c.bbox], view_out + [c.save_as])
    c.bbox_upload.upload(lambda s, f: loaded(s, Path(f)) if f else {}, [c.state, c.bbox_upload], view_out + [c.save_as])

    def on_boxes_video(s, progress=_TQDM):
        with _Reply(c.status) as r:
            s = _need(s)
            r.update({c.original: str(s.boxes_video()), c.status: f"video with boxes drawn\n{s.summary()}"})
        return r

    c.boxes_video.click(on_boxes_video, [c.state], [c.original, c.status])


def _wire_edits(c: SimpleNamespace, ws: Workspace, view_out: list) -> None:
    def edit(mode):
        def handler(s, text):
            with _Reply(c.status) as r:
                s = _need(s)
                ranges = s.edit(text, mode)
                done = ", ".join(f"{a}:{b}" for a, b in ranges)
                _session_outputs(c, s, r, f"{'set to None' if mode == 'none' else 'restored'}: {done}\n{s.summary()}")
            return r

        return handler

    c.none.click(edit("none"), [c.state, c.ranges], view_out)
    c.restore.click(edit("restore"), [c.state, c.ranges], view_out)

    def on_undo(s):
        with _Reply(c.status) as r:
            s = _need(s)
            _session_outputs(c, s, r, ("undone\n" if s.undo() else "nothing to undo\n") + s.summary())
        return r

    c.undo.click(on_undo, [c.state], view_out)

    def on_save(s, target):
        with _Reply(c.status) as r:
            s = _need(s)
            path = ws.resolve(target, "box file to save")
            if path.suffix.lower() not in BOX_SUFFIXES:
                raise Unit2AVError(f"{target}: box files end in .pkl (e.g. {s.video.stem}.bbox.pkl)")
            written, backup = s.save(path)
            r.update(
                {
                    c.state: s,
                    c.download: gr.update(value=str(s.download_copy()), interactive=True),
                    c.status: f"saved {written}"
                    + (f" (the file it replaced is kept as {backup})" if backup else "")
                    + f"\n{s.summary()}",
                }
            )
        return r

    c.save.click(on_save, [c.state, c.save_as], [c.state, c.status, c.download])

    def on_pick(s, evt: gr.SelectData):
        with _Reply(c.status) as r:
            s = _need(s)
            frame, text = s.pick(evt.index[0])
            _session_outputs(
                c,
                s,
                r,
                f"range {text} picked: press Mark None or Restore"
                if text
                else f"frame {frame}: click another frame to close the range",
            )
            r[c.frame] = frame
            if text:
                r[c.ranges] = text
        return r

    c.strip.select(on_pick, [c.state], view_out + [c.frame, c.ranges])

    def on_frame(s, value):
        with _Reply(c.status) as r:
            s = _need(s)
            s.view(int(value or 0))
            r.update({c.state: s, c.strip: _rgb(s.strip()), c.view: _rgb(s.view())})
        return r

    c.frame.input(on_frame, [c.state, c.frame], view_out)


def _wire_dub(c: SimpleNamespace, ws: Workspace, opts: RenderOptions) -> None:
    def on_model(model):
        with _Reply(c.status) as r:
            langs = ws.model(model)[1]
            r[c.lang] = gr.update(choices=langs, value=langs[0])
        return r

    c.model.change(on_model, [c.model], [c.lang, c.status])

    def on_render(s, units, units_file, model, lang, progress=_TQDM):
        with _Reply(c.status) as r:
            s = _need(s)
            path = Path(units_file) if units_file else ws.existing(units, "units file")
            progress(0, desc="loading models, synthesising speech")
            out = dub(s, ws, path, model, lang or None, opts)
            r.update(dubbed_outputs(c, s, out))
            r[c.status] = f"rendered {out.video.name}: {out.frames} frames, {out.seconds:.2f} s of speech"
        return r

    c.render.click(
        on_render,
        [c.state, c.units, c.uploaded_units, c.model, c.lang],
        [c.state, c.status, c.dubbed, c.cmp_orig, c.preview, c.spectrogram, c.command],
    )
    # an uploaded units file is used until a file under --root is picked again (per tab)
    c.units_upload.upload(
        lambda f: (f, f"units: {Path(f).name} uploaded; renders use it until you pick a file under --root"),
        [c.units_upload],
        [c.uploaded_units, c.status],
    )
    c.units.input(lambda: None, None, [c.uploaded_units])


def build_app(ws: Workspace, opts: RenderOptions | None = None) -> gr.Blocks:
    """The page for ``ws`` (not launched); renders use ``opts`` (device, backend; default: auto, auto)."""
    opts = opts or RenderOptions()
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        c = layout(ws)
        _wire(c, ws, opts)
        dub_panel.wire(c, ws, opts, demo)

        def on_load():
            models = ws.model_choices()
            return {
                c.video: gr.update(choices=ws.list_files(VIDEO_SUFFIXES)),
                c.bbox: gr.update(choices=ws.list_files(BOX_SUFFIXES)),
                c.units: gr.update(choices=ws.list_files(UNIT_SUFFIXES)),
                c.model: gr.update(choices=models, value=BUNDLED),
                c.lang: gr.update(choices=ws.model(BUNDLED)[1], value=BUNDLED_LANG),
            }

        demo.load(on_load, None, [c.video, c.bbox, c.units, c.model, c.lang])
    return demo


def launch(ws: Workspace, host: str = "127.0.0.1", port: int = 7860, opts: RenderOptions | None = None) -> None:
    """Serve the page until interrupted (files only from the root and the work folder)."""
    demo = build_app(ws, opts)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        show_error=True,
        allowed_paths=[str(ws.root), str(ws.work)],
        head=SYNC_JS,
        css=CSS,
        footer_links=[],
        inbrowser=False,
    )


__all__ = ["build_app", "launch"]
