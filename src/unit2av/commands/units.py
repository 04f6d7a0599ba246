"""Fit k-means on audio features and extract unit files.

  unit2av units fit --audio_root A --k K --out km.pt [--config C] [--features SPEC] [--max_files N]
  unit2av units extract --kmeans km.pt --audio_root A --out_root U [--speaker] [--workers N]
  unit2av units extract --features mavhubert:CKPT[:audio|video|audio,video] --audio_root A --out_root U

``extract`` writes ``U/<path relative to A>.pt`` = ``{"code": LongTensor[len(audio) // code_hop_size],
"spkr": FloatTensor[256]}`` (``spkr`` with ``--speaker``), the seed's unit format.
Feature specs: ``logmel`` (default; log-mel at the code rate) or ``hubert:DIR[:LAYER]``.
``mavhubert:CKPT`` takes the units from mAV-HuBERT's label heads (AV2AV's units; no k-means, audio
only unless a modality is named; ``video`` reads each file's ``<stem>.lip.mp4``); ``code`` is trimmed
to ``len(audio) // 320`` (the model gives that many plus 0-2 units of the padded tail).
"""

from __future__ import annotations

import argparse


def _add_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio_root", "--audio-root", required=True, help="folder of audio/video files (recursive)")
    p.add_argument("--k", "--n_clusters", "--n-clusters", type=int, required=True, help="number of units")
    p.add_argument("--out", "--kmeans", "--output", required=True, help="k-means file to write")
    p.add_argument(
        "--config",
        default=None,
        help="vocoder config.json: sampling_rate, code_hop_size (default: the bundled AV2AV config, 16 kHz / 320)",
    )
    p.add_argument("--features", default="logmel", help="feature spec: logmel or hubert:DIR[:LAYER] (default: logmel)")
    p.add_argument("--max_files", "--max-files", type=int, default=None, help="use at most N files (evenly spread)")
    p.add_argument(
        "--max_frames",
        "--max-frames",
        type=int,
        default=100_000,
        help="cluster at most this many frames (random subset; default: 100000)",
    )
    p.add_argument("--seed", type=int, default=0, help="k-means seed (default: 0)")
    p.add_argument("--device", default="cpu", help="device of a neural feature model (default: cpu)")


def _add_extract(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kmeans",
        "--km_path",
        "--km-path",
        default=None,
        help="k-means file from `units fit` (not with --features mavhubert:CKPT)",
    )
    p.add_argument("--audio_root", "--audio-root", required=True, help="folder of audio/video files (recursive)")
    p.add_argument(
        "--out_root",
        "--out-root",
        "--unit_root",
        "--unit-root",
        required=True,
        help="output folder; mirrors the audio tree with .pt files",
    )
    p.add_argument("--speaker", action="store_true", help="also store a 256-d GE2E speaker embedding (spkr)")
    p.add_argument(
        "--speaker-encoder",
        "--speaker_encoder",
        dest="speaker_encoder",
        default=None,
        help="speaker encoder weights; implies --speaker (default: Resemblyzer's GE2E weights, bundled)",
    )
    p.add_argument(
        "--features",
        default=None,
        help="override the k-means file's feature spec (e.g. moved model), "
        "or mavhubert:CKPT[:audio|video|audio,video] for mAV-HuBERT units without k-means",
    )
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: 1 = this process)")
    p.add_argument("--device", default="cpu", help="device of the speaker encoder / feature model (default: cpu)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="units_command", metavar="{fit,extract}", required=True)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    for name, add, help_text in (
        ("fit", _add_fit, "fit k-means on frame features"),
        ("extract", _add_extract, "write unit files with a fitted k-means"),
    ):
        sp = sub.add_parser(name, help=help_text)
        add(sp)
        sp.add_argument(
            "--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS, help="hide progress bars"
        )


def _spread(files: list, n: int | None) -> list:
    """At most ``n`` files, evenly spread over the (sorted) list so every speaker folder is sampled."""
    if n is None or n >= len(files):
        return files
    if n < 1:
        from ..errors import Unit2AVError

        raise Unit2AVError(f"--max_files must be >= 1 (got {n})")
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def run(args: argparse.Namespace) -> int:
    from ..io.audio import find_audio_files
    from ..prepare import units

    if args.units_command == "fit":
        from ..vocoder.config import load_config

        cfg = load_config(args.config)
        files = _spread(find_audio_files(args.audio_root), args.max_files)
        km = units.fit_kmeans(
            files,
            args.k,
            cfg,
            features=args.features,
            max_frames=args.max_frames,
            seed=args.seed,
            device=args.device,
            progress=args.progress,
        )
        units.save_kmeans(km, args.out)
        print(
            f"wrote k-means ({args.k} units, feature {km['feature']}, {km['num_frames']} frames of "
            f"{km['num_files']} files) to {args.out}"
        )
        return 0
    speaker = args.speaker or args.speaker_encoder is not None  # weights given: embeddings wanted
    outs = units.extract_folder(
        args.kmeans,
        args.audio_root,
        args.out_root,
        speaker=speaker,
        speaker_encoder=args.speaker_encoder,
        workers=args.workers,
        features=args.features,
        device=args.device,
        progress=args.progress,
    )
    print(f"wrote {len(outs)} unit files to {args.out_root}")
    return 0
