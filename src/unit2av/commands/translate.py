"""Translate unit files with a UTUT checkpoint (AV2AV/UTUT unit2unit/inference.py, without fairseq).

    unit2av translate --in-unit-path U.txt --out-unit-path T.txt --utut-path utut_sts_ft.pt --src-lang en --tgt-lang es
    unit2av translate --in-unit-path units_en/ --out-unit-path units_es/ --utut-path ... --src-lang en --tgt-lang es

Inputs: ``.txt`` files of space-separated unit ids (consecutive repeats are removed, as AV2AV does) or
``.pt`` files with ``code``; several files, or a folder of them. Output: the translated unit string as
the reference writes it (``--nbest N``: N lines, best first). Every input is read and checked before
the first output is written; each output is written atomically (``unit2av.translate.files.translate_files``,
also the batch ``translate`` job's function).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--in-unit-path",
        "--in_unit_path",
        dest="in_unit_path",
        nargs="+",
        required=True,
        help="unit file(s) (.txt or .pt with 'code'), or one folder of them",
    )
    p.add_argument(
        "--out-unit-path",
        "--out_unit_path",
        dest="out_unit_path",
        nargs="+",
        required=True,
        help="output file(s), one per input, or a folder (<folder>/<input name>.txt)",
    )
    p.add_argument("--utut-path", "--utut_path", dest="utut_path", required=True, help="UTUT checkpoint (fairseq)")
    p.add_argument(
        "--utut-dict",
        "--utut_dict",
        dest="utut_dict",
        default=None,
        help="unit dict.txt (default: dict.txt beside the checkpoint, else the units 0..999)",
    )
    p.add_argument("--src-lang", "--src_lang", dest="src_lang", required=True, help="source language (en, es, ...)")
    p.add_argument("--tgt-lang", "--tgt_lang", dest="tgt_lang", required=True, help="target language")
    p.add_argument("--beam", type=int, default=None, help="beam size (default: the checkpoint's, 5 for UTUT)")
    p.add_argument(
        "--max-len-a",
        "--max_len_a",
        dest="max_len_a",
        type=float,
        default=None,
        help="max length = a * source tokens + b (default: the checkpoint's, 0)",
    )
    p.add_argument(
        "--max-len-b", "--max_len_b", dest="max_len_b", type=int, default=None, help="(default: the checkpoint's, 200)"
    )
    p.add_argument("--lenpen", type=float, default=None, help="length penalty (default: the checkpoint's, 1.0)")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses written per input, one per line")
    p.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=int,
        default=1,
        help="inputs translated together (same results as one at a time)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--cpu", action="store_true", help="run on the CPU (same as --device cpu)")


def _pairs(args) -> list[tuple[Path, Path]]:
    """(input, output) pairs; outputs must be distinct and a folder is required for several inputs."""
    from ..errors import fail
    from ..vocoder.synth import collect_inputs

    ins, outs = [Path(x) for x in args.in_unit_path], [Path(x) for x in args.out_unit_path]
    if len(ins) == 1 and ins[0].is_dir():
        if len(outs) != 1 or outs[0].is_file():
            raise fail(outs[0], "the input is a folder: give one output folder")
        pairs = [(f, outs[0] / f.relative_to(ins[0]).with_suffix(".txt")) for f in collect_inputs(ins[0])]
    else:
        for f in ins:
            if not f.is_file():
                raise fail(f, "unit file not found")
        if len(outs) == len(ins) and not (len(ins) > 1 and outs[0].is_dir()):
            pairs = list(zip(ins, outs))
        elif len(outs) == 1 and (outs[0].is_dir() or len(ins) > 1 or args.out_unit_path[0].endswith("/")):
            if outs[0].is_file() or (not outs[0].exists() and outs[0].suffix == ".txt"):
                raise fail(outs[0], f"{len(ins)} inputs need an output folder, not a file")
            pairs = [(f, outs[0] / f"{f.stem}.txt") for f in ins]
        else:
            raise fail(
                None, f"{len(ins)} input file(s) but {len(outs)} output path(s): give one output per input, or a folder"
            )
    seen: dict[Path, Path] = {}
    for src, out in pairs:
        if out in seen:
            raise fail(out, f"written twice (from {seen[out]} and {src}): rename one of the inputs")
        seen[out] = src
    return pairs


def run(args: argparse.Namespace) -> int:
    from ..errors import fail
    from ..translate.api import load_translator
    from ..translate.files import translate_files

    if args.batch_size < 1:
        raise fail(None, f"--batch-size must be at least 1 (got {args.batch_size})")
    pairs = _pairs(args)
    tr = load_translator(args.utut_path, args.utut_dict, "cpu" if args.cpu else args.device)
    translate_files(
        tr,
        pairs,
        args.src_lang,
        args.tgt_lang,
        beam=args.beam,
        nbest=args.nbest,
        max_len_a=args.max_len_a,
        max_len_b=args.max_len_b,
        lenpen=args.lenpen,
        batch_size=args.batch_size,
    )
    for _, out in pairs:
        print(out)
    print(f"translated {len(pairs)} file(s) {args.src_lang} -> {args.tgt_lang}")
    return 0
