"""The page's "Translate and dub" panel: mAV-HuBERT -> UTUT -> render of the open video (``translate_dub``).

``layout`` adds the fields (inside the open ``gr.Blocks``, below the render row); ``wire`` connects
them. The result goes to the render's own players, preview, spectrogram and command box, and
the source and target units to two text boxes. The models are loaded once per app (one
``ModelCache`` shared by every tab) and reused.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it: no telemetry, no version check

import gradio as gr  # noqa: E402

from ..pipeline.models import ModelCache  # noqa: E402
from .dub import RenderOptions  # noqa: E402
from .reply import Reply, dubbed_outputs, need_session  # noqa: E402
from .translate_dub import MODALITIES, DubChoice, languages, translate_dub  # noqa: E402
from .workspace import BUNDLED, Workspace  # noqa: E402

# Gradio finds progress trackers by a parameter's default; it hands every call a fresh one.
_TQDM = gr.Progress(track_tqdm=True)  # follows the tqdm bars of the dub's stages


def _default_container(ws: Workspace) -> str:
    """The first container under --models (the bundled demo vocoder speaks no UTUT language), else the bundled."""
    choices = ws.model_choices()
    return choices[1] if len(choices) > 1 else BUNDLED


def layout(c: SimpleNamespace, ws: Workspace) -> None:
    """The panel's components, stored on ``c`` as ``c.tr_*``."""
    checkpoints = ws.checkpoint_choices()
    with gr.Accordion("Translate and dub (as `unit2av dub`: mAV-HuBERT units -> UTUT -> render)", open=True):
        with gr.Row(equal_height=True):
            c.tr_av2unit = gr.Dropdown(
                checkpoints,
                label="mAV-HuBERT checkpoint (under --models or --root)",
                allow_custom_value=True,
                elem_id="u2av-tr-av2unit",
                scale=3,
            )
            c.tr_utut = gr.Dropdown(
                checkpoints, label="UTUT checkpoint", allow_custom_value=True, elem_id="u2av-tr-utut", scale=3
            )
            c.tr_dict = gr.Textbox(
                label="UTUT dict.txt (optional)", placeholder="beside the checkpoint", elem_id="u2av-tr-dict", scale=2
            )
            c.tr_model = gr.Dropdown(
                ws.model_choices(),
                value=_default_container(ws),
                label="AV2AV container",
                elem_id="u2av-tr-model",
                scale=2,
            )
        with gr.Row(equal_height=True):
            c.tr_src = gr.Dropdown(label="From", allow_custom_value=True, elem_id="u2av-tr-src", min_width=80)
            c.tr_tgt = gr.Dropdown(label="To", allow_custom_value=True, elem_id="u2av-tr-tgt", min_width=80)
            c.tr_beam = gr.Number(0, precision=0, minimum=0, label="Beam (0: the checkpoint's)", min_width=80)
            c.tr_modalities = gr.Dropdown(list(MODALITIES), value=MODALITIES[0], label="mAV-HuBERT reads")
            c.tr_dub = gr.Button("Translate and dub", variant="primary", elem_id="u2av-tr-dub", min_width=120)
        with gr.Row():
            c.tr_src_units = gr.Textbox(
                label="Source units (mAV-HuBERT)", interactive=False, lines=2, max_lines=4, elem_id="u2av-tr-src-units"
            )
            c.tr_tgt_units = gr.Textbox(
                label="Target units (UTUT)", interactive=False, lines=2, max_lines=4, elem_id="u2av-tr-tgt-units"
            )


def _wire_languages(c: SimpleNamespace, ws: Workspace, models: ModelCache, opts: RenderOptions) -> None:
    """Fill the language dropdowns from the UTUT checkpoint (loaded into ``models``) and the container."""

    def on_checkpoint(utut, utut_dict, model, src, tgt):
        with Reply(c.status) as r:
            if not (utut or "").strip():
                return r
            langs, voiced = languages(ws, models, utut, utut_dict, model, opts.device)
            src = src if src in langs else langs[0]
            targets = voiced or langs
            tgt = tgt if tgt in targets else next((x for x in targets if x != src), targets[0])
            r.update(
                {
                    c.tr_src: gr.update(choices=langs, value=src),
                    c.tr_tgt: gr.update(choices=targets, value=tgt),
                    c.status: f"UTUT {Path(utut).name}: {len(langs)} languages; the container voices "
                    + (", ".join(voiced) if voiced else "none of them (pick a container under --models)"),
                }
            )
        return r

    inputs = [c.tr_utut, c.tr_dict, c.tr_model, c.tr_src, c.tr_tgt]
    for event in (c.tr_utut.change, c.tr_dict.submit, c.tr_model.change):
        event(on_checkpoint, inputs, [c.tr_src, c.tr_tgt, c.status])


def wire(c: SimpleNamespace, ws: Workspace, opts: RenderOptions, demo: gr.Blocks) -> None:
    """Connect the panel; its models live as long as the page (one ``ModelCache(keep=1)`` for every tab)."""
    models = ModelCache(keep=1)
    _wire_languages(c, ws, models, opts)

    def on_dub(s, av2unit, utut, utut_dict, model, src, tgt, beam, modalities, progress=_TQDM):
        with Reply(c.status) as r:
            s = need_session(s)
            progress(0, desc="loading models, dubbing")
            beam = int(beam) if beam else None  # the empty field arrives as 0
            choice = DubChoice(av2unit, utut, utut_dict, model, src, tgt, beam, modalities)
            out = translate_dub(s, ws, models, choice, opts)
            r.update(dubbed_outputs(c, s, out))
            r.update(
                {
                    c.tr_src_units: " ".join(map(str, out.source_units)),
                    c.tr_tgt_units: " ".join(map(str, out.target_units)),
                    c.status: f"dubbed {src} -> {tgt} as {out.video.name}: {len(out.source_units)} source units -> "
                    f"{len(out.target_units)} target units, {out.frames} frames, {out.seconds:.2f} s of speech",
                }
            )
        return r

    c.tr_dub.click(
        on_dub,
        [c.state, c.tr_av2unit, c.tr_utut, c.tr_dict, c.tr_model, c.tr_src, c.tr_tgt, c.tr_beam, c.tr_modalities],
        [c.state, c.status, c.dubbed, c.cmp_orig, c.preview, c.spectrogram, c.command, c.tr_src_units, c.tr_tgt_units],
    )
    # a newly opened video has no dub yet
    for event in (c.open.click, c.upload.upload):
        event(lambda: ("", ""), None, [c.tr_src_units, c.tr_tgt_units])

    def on_load():
        checkpoints = ws.checkpoint_choices()
        return {
            c.tr_av2unit: gr.update(choices=checkpoints),
            c.tr_utut: gr.update(choices=checkpoints),
            c.tr_model: gr.update(choices=ws.model_choices()),
        }

    demo.load(on_load, None, [c.tr_av2unit, c.tr_utut, c.tr_model])


__all__ = ["layout", "wire"]
