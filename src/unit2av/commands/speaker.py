"""Compute 256-d GE2E speaker embeddings for audio or video files.

Writes ``OUT/<stem>.pt`` holding a FloatTensor (256,), L2-normalised: the ``spkr`` input
of speaker-conditioned vocoders. Default weights: Resemblyzer's pretrained GE2E encoder,
bundled with unit2av; ``--speaker-encoder`` takes a Resemblyzer ``pretrained.pt`` or a
Real-Time-Voice-Cloning ``encoder.pt``.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input", "--inputs", "-i", nargs="+", required=True, help="audio or video files, or folders of them"
    )
    p.add_argument("--out", "--out_dir", "--out-dir", "-o", required=True, help="output folder for <stem>.pt")
    p.add_argument(
        "--speaker-encoder",
        "--speaker_encoder",
        dest="speaker_encoder",
        default=None,
        help="encoder weights (default: Resemblyzer's pretrained GE2E weights, bundled)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ... (default: auto)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from ..prepare.speaker import SpeakerEncoder, embed_files

    encoder = SpeakerEncoder.load(args.speaker_encoder, device=args.device)
    outs = embed_files(args.input, args.out, encoder, progress=args.progress)
    print(f"wrote {len(outs)} speaker embeddings to {args.out}")
    return 0
