"""The ``unit2av`` console script: one subcommand per job.

Each subcommand lives in ``unit2av.commands.<module>`` and exposes
``add_arguments(parser)`` and ``run(args) -> int | None``. This file only dispatches;
a ``Unit2AVError`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .errors import Unit2AVError

# (subcommand, module under unit2av.commands, one-line help)
COMMANDS = [
    ("demo", "demo", "dub a talking-face video with the bundled models (--train: the Unit2A training demo)"),
    ("manifest", "manifest", "build training/validation manifests from unit files and audio"),
    ("train-unit2a", "train_unit2a", "train the unit-to-speech vocoder (CodeHiFiGAN)"),
    ("synth", "synth", "synthesise speech from units (.pt, .txt, or a folder)"),
    ("units", "units", "fit k-means on audio features and extract unit files"),
    ("speaker", "speaker", "compute 256-d GE2E speaker embeddings for audio or video files"),
    ("render", "render", "render a dubbed, lip-synced video from units, a video and face boxes"),
    ("batch", "batch", "run many render/synth jobs from a JSON-lines file, resumably (local processes or Ray)"),
    ("bbox", "bbox", "detect, edit, inspect and draw per-frame face boxes"),
    ("prepare", "prepare", "prepare one video: 16 kHz audio, speaker embedding, face boxes, units"),
    ("train-face", "train_face", "train (or fine-tune) the unit-driven face renderer"),
    ("train-sync", "train_sync", "train the unit/mouth sync expert used by train-face's sync loss"),
    ("pack", "pack", "pack vocoders and a face renderer into an AV2AV container"),
    ("export", "export", "export the vocoder or the face renderer to ONNX"),
    ("av2unit", "av2unit", "mAV-HuBERT units from a talking-face video's audio and/or mouth crops (no fairseq)"),
    ("translate", "translate", "translate unit files to another language with a UTUT checkpoint (no fairseq)"),
    ("dub", "dub", "dub a talking-face video into another language: av2unit -> translate -> render"),
    ("evaluate", "evaluate", "measure dubbed videos: intelligibility, voice, audio quality, lip sync, seams"),
    ("app", "app", "review face boxes and dub in the browser (a local Gradio page)"),
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unit2av", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        try:
            mod = importlib.import_module(f"unit2av.commands.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"unit2av.commands.{module}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip())
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Import only the chosen subcommand's module (fast start-up, no unrelated imports).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    known = {name for name, _, _ in COMMANDS}
    parser = build_parser(chosen if chosen in known else None)
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        rc = args._run(args)
    except Unit2AVError as e:
        print(f"unit2av {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"unit2av {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
