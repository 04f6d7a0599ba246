"""Measure dubbed videos offline: intelligibility (ASR WER/CER, STOI/ESTOI), voice (GE2E similarity,
pitch), audio quality (DNSMOS), lip sync (offset and confidence) and paste seams / mouth sharpness.

Input: one video, a folder of videos, or a ``unit2av batch`` report.jsonl. Prints a table;
``--json OUT.json`` (or ``.jsonl``) writes every figure. Figures that need a missing optional
package are null with a one-line note naming ``pip install 'unit2av[asr|stoi|quality]'``.
"""

from __future__ import annotations

import argparse

from ..errors import fail


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of ``unit2av evaluate``: the videos, what they are measured against, and how to run and report.

    Args:
        p: the subcommand's parser.
    """
    _add_inputs(p)
    _add_references(p)
    _add_run_options(p)


def _add_inputs(p: argparse.ArgumentParser) -> None:
    """The dubbed video(s), their source video(s) and face boxes."""
    p.add_argument(
        "--video", "-i", required=True, help="the dubbed video, a folder of videos, or a unit2av batch report.jsonl"
    )
    p.add_argument(
        "--source",
        "--source_video",
        "--source-video",
        dest="source",
        default=None,
        help="the source video the dub was made from (a folder of them, matched by name, for many)",
    )
    p.add_argument(
        "--bbox",
        "--in_bbox_path",
        "--in-bbox-path",
        dest="bbox",
        default=None,
        help="face boxes (.bbox.pkl) of the dub's or the source's frames (default: NAME.bbox.pkl "
        "beside the video); a folder for many videos",
    )


def _add_references(p: argparse.ArgumentParser) -> None:
    """What the figures are measured against: the text and its recogniser, a reference recording, the target voice."""
    text = p.add_mutually_exclusive_group()
    text.add_argument("--text", default=None, help="what the dub says (WER / CER against it)")
    text.add_argument(
        "--text-file",
        "--text_file",
        dest="text_file",
        default=None,
        help="a UTF-8 file with what the dub says; a folder of NAME.txt for many videos",
    )
    p.add_argument("--lang", default="en", help="language of the dubbed speech: en (PocketSphinx), ko (Vosk)")
    p.add_argument(
        "--asr-vocab",
        "--asr_vocab",
        dest="asr_vocab",
        default=None,
        help="a file of sentences, one a line: recognise with a closed vocabulary over them",
    )
    p.add_argument(
        "--vosk-model",
        "--vosk_model",
        dest="vosk_model",
        default=None,
        help="a Vosk model folder to recognise with (any language) instead of the packaged ones",
    )
    p.add_argument(
        "--reference-audio",
        "--reference_audio",
        dest="reference_audio",
        default=None,
        help="a time-aligned reference of the same utterance for STOI / ESTOI (a folder for many)",
    )
    p.add_argument(
        "--speaker-wav",
        "--speaker_wav",
        dest="speaker_wav",
        default=None,
        help="the target voice for speaker similarity (default: the source's audio)",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """A batch report's job file, sections to skip, the JSON output, the device and the progress bar."""
    p.add_argument(
        "--jobs",
        default=None,
        help="with a batch report: the job file that made it (its render jobs' sources and boxes)",
    )
    p.add_argument(
        "--skip",
        nargs="+",
        default=(),
        metavar="SECTION",
        help="sections not to measure: intelligibility voice audio_quality sync seams",
    )
    p.add_argument(
        "--json",
        "--out",
        "-o",
        dest="json",
        default=None,
        help="write every figure: OUT.json (one document) or OUT.jsonl (a line per video + summary)",
    )
    p.add_argument("--device", default="auto", help="device of the speaker encoder: auto, cpu, cuda, ...")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def _vocabulary(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        lines = [ln.strip() for ln in open(path, encoding="utf-8") if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise fail(path, f"cannot read the vocabulary: {e}") from e
    if not lines:
        raise fail(path, "the vocabulary file has no sentences")
    return lines


def run(args: argparse.Namespace) -> int:
    from ..evaluate import Evaluator, evaluate_all, expand_jobs, format_table, summarise, write_json

    jobs = expand_jobs(
        args.video,
        source=args.source,
        bbox=args.bbox,
        text=args.text,
        text_file=args.text_file,
        reference_audio=args.reference_audio,
        speaker_wav=args.speaker_wav,
        jobs=args.jobs,
    )
    evaluator = Evaluator(
        lang=args.lang,
        vocabulary=_vocabulary(args.asr_vocab),
        vosk_model=args.vosk_model,
        device=args.device,
        skip=tuple(args.skip),
    )
    rows = evaluate_all(evaluator, jobs, progress=args.progress)
    summary = summarise(rows)
    print(format_table(rows, summary))
    for row in rows:
        for note in row["notes"]:
            print(f"note: {row['video']}: {note}")
    if args.json:
        write_json(args.json, rows, summary)
        print(f"wrote {args.json}")
    return 1 if summary["failed"] else 0
