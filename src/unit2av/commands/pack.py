"""Pack vocoders (train-unit2a) and a face renderer (train-face) into one AV2AV checkpoint."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vocoder",
        action="append",
        default=[],
        metavar="LANG=CHECKPOINT",
        help="a vocoder under a language key, e.g. ko=cp_ko/g_best (repeatable)",
    )
    p.add_argument("--face", required=True, help="face renderer checkpoint (f_best from train-face, or AV2AV)")
    p.add_argument("--out", required=True, help="output AV2AV container (.pt)")
    p.add_argument("--base", default=None, help="keep the other languages of this AV2AV container")


def run(args: argparse.Namespace) -> int:
    from ..pipeline.pack import pack, parse_vocoder_specs

    obj = pack(parse_vocoder_specs(args.vocoder), args.face, args.out, base=args.base)
    print(f"wrote {args.out}: vocoders {', '.join(sorted(obj['audio']))} + face renderer")
    return 0
