"""Dub a talking-face video into another language: mAV-HuBERT units -> UTUT translation -> Unit2AV render.

Example (AV2AV's inference.py flags):
  unit2av dub --in-vid-path talk.mp4 --out-vid-path talk.es.mp4 --src-lang en --tgt-lang es
              --av2unit-path mavhubert_large_noise.pt --utut-path utut_sts_ft.pt
              --unit2av-path unit_av_renderer.pt [--keep-intermediate work/]

Face boxes and mouth crops are made when not given; --keep-intermediate writes every stage's output
(boxes, mouth crops, source and target units, speech) so that a stage can be rerun alone.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..pipeline.paste import BLENDS
    from ..pipeline.render import DEFAULT_BATCH_FRAMES
    from ..runtime.fast import BACKENDS
    from .render import add_preset_argument

    req = parser.add_argument_group("required")
    req.add_argument("--in-vid-path", "--in_vid_path", dest="in_vid_path", required=True, help="source video")
    req.add_argument("--out-vid-path", "--out_vid_path", dest="out_vid_path", required=True, help="output .mp4")
    req.add_argument("--src-lang", "--src_lang", dest="src_lang", required=True, help="source language (en, es ...)")
    req.add_argument("--tgt-lang", "--tgt_lang", dest="tgt_lang", required=True, help="target language")
    req.add_argument(
        "--av2unit-path",
        "--av2unit_path",
        dest="av2unit_path",
        required=True,
        help="mAV-HuBERT checkpoint (mavhubert_large_noise.pt)",
    )
    req.add_argument(
        "--utut-path", "--utut_path", dest="utut_path", required=True, help="UTUT checkpoint (utut_sts_ft.pt)"
    )
    req.add_argument(
        "--unit2av-path",
        "--unit2av_path",
        dest="unit2av_path",
        required=True,
        help="AV2AV container (unit_av_renderer.pt)",
    )
    parser.add_argument("--config", default=None, help="vocoder config JSON (default: stored/beside, else AV2AV's)")
    parser.add_argument(
        "--modalities", default="audio,video", help="what mAV-HuBERT reads: audio,video | audio | video"
    )
    parser.add_argument(
        "--in-bbox-path", "--in_bbox_path", dest="in_bbox_path", default=None, help="face boxes (default: detected)"
    )
    parser.add_argument(
        "--in-lip-path",
        "--in_lip_path",
        dest="in_lip_path",
        default=None,
        help="96x96 mouth crops .lip.mp4 (default: made from face landmarks)",
    )
    parser.add_argument(
        "--keep-intermediate",
        "--keep_intermediate",
        dest="keep_intermediate",
        default=None,
        metavar="DIR",
        help="write every stage's output here",
    )
    parser.add_argument(
        "--utut-dict",
        "--utut_dict",
        dest="utut_dict",
        default=None,
        help="UTUT dict.txt (default: beside the checkpoint, else units 0..999)",
    )
    parser.add_argument("--beam", type=int, default=None, help="beam size (default: the checkpoint's)")
    parser.add_argument(
        "--speaker-encoder",
        "--speaker_encoder",
        dest="speaker_encoder",
        default=None,
        help="GE2E speaker-encoder weights (default: the bundled ones)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    parser.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=int,
        default=DEFAULT_BATCH_FRAMES,
        help=f"frames per face-renderer forward (default {DEFAULT_BATCH_FRAMES})",
    )
    parser.add_argument("--paste", choices=BLENDS, default="feather", help="feather (default) or hard")
    parser.add_argument("--backend", choices=BACKENDS, default="auto", help="inference path (see `unit2av render`)")
    add_preset_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..pipeline.dub import dub

    result = dub(
        args.in_vid_path,
        args.out_vid_path,
        args.src_lang,
        args.tgt_lang,
        args.av2unit_path,
        args.utut_path,
        args.unit2av_path,
        config=args.config,
        modalities=args.modalities,
        in_bbox_path=args.in_bbox_path,
        in_lip_path=args.in_lip_path,
        keep_intermediate=args.keep_intermediate,
        utut_dict=args.utut_dict,
        beam=args.beam,
        speaker_encoder=args.speaker_encoder,
        device=args.device,
        batch_size=args.batch_size,
        blend=args.paste,
        backend=args.backend,
        preset=args.encoder_preset,
    )
    r = result.render
    print(
        f"wrote {result.path}: {len(result.source_units)} source units -> {len(result.target_units)} "
        f"{args.tgt_lang} units, {r.num_frames} frames, {r.num_samples / r.sample_rate:.2f} s of speech"
    )
    for name, path in result.intermediate.items():
        print(f"  {name}: {path}")
    return 0
