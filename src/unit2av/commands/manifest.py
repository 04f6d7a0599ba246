"""Build training (and held-out validation) manifests from unit files and audio, or of talking-face clips.

Vocoder manifests: unit files (``*.pt`` with ``code`` and optionally ``spkr``) are the source of
truth; the audio of utterance ``113_003_0012`` is ``AUDIO_ROOT/113/113_003_0012.wav``.
Face manifests (``--video_root``): every video with its ``<stem>.bbox.pkl`` and ``<stem>.pt`` units.
"""

from __future__ import annotations

import argparse

# How many missing audio paths are listed on the console.
SHOW_MISSING = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio_root", "--audio-root", help="zeroth-style audio tree A/<spk>/<utt>.wav")
    src.add_argument(
        "--video_root",
        "--video-root",
        help="talking-face clips for train-face: videos with <stem>.bbox.pkl and <stem>.pt units",
    )
    p.add_argument(
        "--unit_root",
        "--unit-root",
        help="folder of *.pt unit files (searched recursively; with --video_root: default beside the videos)",
    )
    p.add_argument(
        "--bbox_root", "--bbox-root", help="--video_root: folder of box pickles (default: beside the videos)"
    )
    p.add_argument("--output_file", "--output-file", "--out", required=True, help="manifest to write (JSON lines)")
    p.add_argument(
        "--unit_suffix",
        "--unit-suffix",
        default=None,
        help="suffix after the utterance id in unit file names (default: longest matching id)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--valid_count", "--valid-count", type=int, default=None, help="hold out this many for validation")
    g.add_argument(
        "--valid_fraction", "--valid-fraction", type=float, default=None, help="hold out this fraction for validation"
    )
    p.add_argument(
        "--valid_file",
        "--valid-file",
        default=None,
        help="validation manifest (default: OUTPUT_FILE with _valid before the extension)",
    )
    p.add_argument(
        "--split_by",
        "--split-by",
        choices=("utterance", "speaker"),
        default="utterance",
        help="hold out random utterances or whole speakers (default: utterance)",
    )
    p.add_argument("--seed", type=int, default=1234, help="split seed (default: 1234)")


def _valid_path(output_file: str) -> str:
    from pathlib import Path

    out = Path(output_file)
    return str(out.with_name(out.stem + "_valid" + (out.suffix or ".txt")))


def _run_faces(args: argparse.Namespace) -> int:
    from ..errors import fail
    from ..face.data import build_face_manifest, write_face_manifest

    clips, problems = build_face_manifest(args.video_root, args.unit_root, args.bbox_root)
    print(f"found {len(clips)} complete clips, skipped {len(problems)}")
    for line in problems[:SHOW_MISSING]:
        print(f"  skipped: {line}")
    if len(problems) > SHOW_MISSING:
        print(f"  ... and {len(problems) - SHOW_MISSING} more")
    if not clips:
        raise fail(args.video_root, "no video has both a box pickle and a units file")
    write_face_manifest(clips, args.output_file)
    print(f"wrote {len(clips)} clips to {args.output_file}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..errors import fail
    from ..vocoder.manifest import build_manifest, split_manifest, write_manifest

    if args.video_root:
        return _run_faces(args)
    if not args.unit_root:
        raise fail(None, "--unit_root is required with --audio_root")
    result = build_manifest(args.audio_root, args.unit_root, args.unit_suffix)
    print(f"found {len(result.entries)} utterances with audio, {len(result.missing)} unit files without audio")
    for unit_file, expected in result.missing[:SHOW_MISSING]:
        print(f"  missing: {expected}  (for {unit_file})")
    if len(result.missing) > SHOW_MISSING:
        print(f"  ... and {len(result.missing) - SHOW_MISSING} more")
    if not result.entries:
        raise fail(args.audio_root, "no unit file has matching audio (check --audio_root and --unit_suffix)")
    train, valid = result.entries, []
    if args.valid_count is not None or args.valid_fraction is not None:
        train, valid = split_manifest(result.entries, args.valid_count, args.valid_fraction, args.split_by, args.seed)
    write_manifest(train, args.output_file)
    print(f"wrote {len(train)} entries to {args.output_file}")
    if valid:
        valid_file = args.valid_file or _valid_path(args.output_file)
        write_manifest(valid, valid_file)
        print(f"wrote {len(valid)} entries to {valid_file}")
    return 0
