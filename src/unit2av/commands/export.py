"""Export the vocoder (units + speaker -> wav), its body, or the face renderer to ONNX."""

from __future__ import annotations

import argparse

FORMATS = ("onnx",)  # export formats


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..runtime.onnx import WHAT

    p.add_argument("--format", choices=FORMATS, default="onnx", help="output format (default onnx)")
    p.add_argument(
        "--checkpoint",
        "--checkpoint_file",
        "--checkpoint-file",
        "--unit2av-path",
        "--unit2av_path",
        dest="checkpoint",
        required=True,
        help="g_XXXXXXXX, {'generator': sd} or an AV2AV container",
    )
    p.add_argument(
        "--config",
        "--config_file",
        dest="config",
        default=None,
        help="vocoder config JSON (default: beside the checkpoint, else AV2AV's)",
    )
    p.add_argument(
        "--lang", "--tgt-lang", "--tgt_lang", dest="lang", default=None, help="language of an AV2AV container's vocoder"
    )
    p.add_argument(
        "--what",
        choices=WHAT,
        default="vocoder",
        help="vocoder: code (+ spkr) -> wav; vocoder-body: generator input -> wav; "
        "face: units + faces -> faces (default vocoder)",
    )
    p.add_argument("--out", "--output", dest="out", required=True, help="the .onnx file to write")


def run(args: argparse.Namespace) -> int:
    from ..runtime.onnx import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, what=args.what, config=args.config, lang=args.lang)
    print(f"wrote {out} ({args.what}, {args.format})")
    return 0
