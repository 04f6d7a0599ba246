"""Export the vocoder (units + speaker -> wav), its body, or the face renderer to ONNX."""

from __future__ import annotations

import argparse

from .synth import add_vocoder_arguments

FORMATS = ("onnx",)  # export formats


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..runtime.onnx import WHAT

    p.add_argument("--format", choices=FORMATS, default="onnx", help="output format (default onnx)")
    add_vocoder_arguments(p, "--unit2av-path", "--unit2av_path")
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
