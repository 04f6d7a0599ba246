"""The components of ``unit2av app``'s page (created inside an open ``gr.Blocks``); ``ui`` wires their events."""

from __future__ import annotations

import os
import shutil
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it: no telemetry, no version check

import gradio as gr  # noqa: E402

from ..io.units import UNIT_SUFFIXES  # noqa: E402
from ..prepare.faces import DETECTORS, DetectOptions  # noqa: E402
from ..prepare.track import BOX_STYLES  # noqa: E402
from . import dub_panel  # noqa: E402
from .page import LEGEND, TITLE  # noqa: E402
from .session import Session  # noqa: E402
from .workspace import BUNDLED, VIDEO_SUFFIXES, Workspace  # noqa: E402


def forget(session: Session | None) -> None:
    """``gr.State`` delete callback: remove the closed tab's files."""
    if isinstance(session, Session):
        shutil.rmtree(session.folder, ignore_errors=True)


def layout(ws: Workspace) -> SimpleNamespace:
    """The components (created inside an open ``gr.Blocks``)."""
    c = SimpleNamespace()
    c.state = gr.State(None, delete_callback=forget)
    gr.Markdown(f"## {TITLE}\nFiles are read from and saved under `{ws.root}`.")
    with gr.Row(equal_height=True):
        c.video = gr.Dropdown(label="Video under --root", allow_custom_value=True, elem_id="u2av-video", scale=4)
        c.open = gr.Button("Open", variant="primary", elem_id="u2av-open", scale=1)
        c.upload = gr.UploadButton(
            "Upload a video", file_types=list(VIDEO_SUFFIXES), scale=1, elem_id="u2av-upload-video"
        )
        c.status = gr.Textbox(label="Status", interactive=False, lines=3, scale=6, elem_id="u2av-status")
    with gr.Row():
        with gr.Column(scale=3):
            c.view = gr.Image(label="Frame with its box", interactive=False, elem_id="u2av-view", height=340)
            c.frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="u2av-frame")
        with gr.Column(scale=2):
            c.original = gr.Video(label="Video", interactive=False, elem_id="u2av-original", height=400)
            c.boxes_video = gr.Button("Play with the current boxes drawn", elem_id="u2av-boxes-video")
    c.strip = gr.Image(
        label="Timeline", show_label=False, interactive=False, format="png", elem_id="u2av-strip", buttons=[]
    )
    gr.Markdown(LEGEND)
    with gr.Row():
        with gr.Column():
            _detect_layout(c)
            with gr.Row(equal_height=True):
                c.bbox = gr.Dropdown(
                    label="... or a .bbox.pkl under --root", allow_custom_value=True, elem_id="u2av-bbox", scale=4
                )
                c.load = gr.Button("Load boxes", elem_id="u2av-load", scale=1)
                c.bbox_upload = gr.UploadButton(
                    "Upload .bbox.pkl", file_types=[".pkl"], scale=1, elem_id="u2av-upload-bbox"
                )
        with gr.Column():
            c.ranges = gr.Textbox(
                label="Frame ranges (START:END, end exclusive; comma-separated)",
                placeholder="10:20, 41:84",
                elem_id="u2av-ranges",
            )
            with gr.Row():
                c.none = gr.Button("Mark None", variant="stop", elem_id="u2av-none")
                c.restore = gr.Button("Restore", elem_id="u2av-restore")
                c.undo = gr.Button("Undo", elem_id="u2av-undo")
            with gr.Row(equal_height=True):
                c.save_as = gr.Textbox(
                    label="Save as (under --root; a replaced file is kept as .bak)", elem_id="u2av-save-as", scale=4
                )
                c.save = gr.Button("Save", variant="primary", elem_id="u2av-save", scale=1)
                c.download = gr.DownloadButton(
                    "Download .bbox.pkl", interactive=False, elem_id="u2av-download", scale=1
                )
    _dub_layout(c, ws)
    return c


def _detect_layout(c: SimpleNamespace) -> None:
    d = DetectOptions()
    with gr.Accordion("Detect boxes (as `unit2av bbox detect`)", open=True):
        with gr.Row():
            c.detector = gr.Dropdown(list(DETECTORS), value=d.detector, label="Detector", min_width=100)
            c.style = gr.Dropdown(list(BOX_STYLES), value=d.box_style, label="Box style", min_width=100)
            c.face_index = gr.Number(-1, precision=0, label="Face from left (-1: largest)", min_width=100)
            c.smooth = gr.Number(d.smooth, precision=0, label="Smooth (frames)", min_width=80)
            c.max_gap = gr.Number(d.max_gap, precision=0, label="Max gap (frames)", min_width=80)
            c.resize = gr.Number(d.resize_factor, label="Resize factor", min_width=80)
        with gr.Row():
            c.pads = [
                gr.Number(v, precision=0, label=f"Pad {side} (px)", min_width=80)
                for v, side in zip(d.pads, ("top", "bottom", "left", "right"))
            ]
            c.detect = gr.Button("Detect boxes", variant="primary", elem_id="u2av-detect", min_width=120)


def _dub_layout(c: SimpleNamespace, ws: Workspace) -> None:
    gr.Markdown("### Dub: units + models -> lip-synced video")
    with gr.Row(equal_height=True):
        c.units = gr.Dropdown(
            label="Units file under --root (.txt / .pt)", allow_custom_value=True, elem_id="u2av-units", scale=3
        )
        c.units_upload = gr.UploadButton(
            "Upload units", file_types=list(UNIT_SUFFIXES), scale=1, elem_id="u2av-upload-units"
        )
        c.uploaded_units = gr.State(None)
        c.model = gr.Dropdown(ws.model_choices(), value=BUNDLED, label="Models", elem_id="u2av-model", scale=2)
        c.lang = gr.Dropdown(label="Language", allow_custom_value=True, elem_id="u2av-lang", scale=1)
        c.render = gr.Button("Render", variant="primary", elem_id="u2av-render", scale=1)
    dub_panel.layout(c, ws)  # or translate the open video's speech first (as `unit2av dub`)
    with gr.Row():
        c.cmp_orig = gr.Video(
            label="Original (follows the dubbed player, muted)", interactive=False, elem_id="u2av-cmp-orig", height=360
        )
        c.dubbed = gr.Video(label="Dubbed", interactive=False, elem_id="u2av-dub", height=360)
    with gr.Row():
        c.preview = gr.Image(
            label="Mouths: source (top) and rendered (bottom)",
            interactive=False,
            format="png",
            elem_id="u2av-preview",
            height=220,
        )
        c.spectrogram = gr.Image(
            label="Spectrogram of the dubbed speech",
            interactive=False,
            format="png",
            elem_id="u2av-spectrogram",
            height=220,
        )
    c.command = gr.Textbox(
        label="The same result from the command line", interactive=False, elem_id="u2av-command", buttons=["copy"]
    )
