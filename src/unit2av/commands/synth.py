"""Synthesise speech from units: a .pt ({"code", "spkr"} or a tensor), a .txt of unit ids, or a folder."""

from __future__ import annotations

import argparse

from ..runtime.fast import BACKENDS


def add_vocoder_arguments(p: argparse.ArgumentParser, *checkpoint_aliases: str) -> None:
    """``--checkpoint`` (the vocoder's weights; also spelled ``checkpoint_aliases``) and ``--config``."""
    p.add_argument(
        "--checkpoint",
        "--checkpoint_file",
        "--checkpoint-file",
        *checkpoint_aliases,
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


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_vocoder_arguments(p)
    p.add_argument(
        "--input_file",
        "--input-file",
        "--input_code_file",
        dest="input_file",
        required=True,
        help="a .pt or .txt units file, or a folder of them",
    )
    p.add_argument("--output_folder", "--output-folder", "--output_dir", dest="output_folder", required=True)
    p.add_argument(
        "--lang", "--tgt-lang", "--tgt_lang", dest="lang", default=None, help="language of an AV2AV container"
    )
    p.add_argument(
        "--dur-prediction",
        "--dur_prediction",
        dest="dur_prediction",
        action="store_true",
        help="units are deduplicated: expand them by the predicted durations",
    )
    p.add_argument(
        "--speaker",
        default=None,
        help="speaker for inputs without 'spkr': a .pt embedding, an audio/video file, or an integer id",
    )
    p.add_argument(
        "--speaker-encoder",
        "--speaker_encoder",
        dest="speaker_encoder",
        default=None,
        help="GE2E weights for --speaker audio (default: resemblyzer's)",
    )
    p.add_argument(
        "--output_format",
        "--output-format",
        choices=["int16", "float"],
        default="int16",
        help="16-bit PCM (default) or 32-bit float wav",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="inference path: auto = the fastest of eager/folded/torch on this machine (timed once, cached); "
        "compile = torch.compile; onnx = ONNX Runtime (CPU); eager = the plain modules",
    )


def run(args: argparse.Namespace) -> int:
    from ..pipeline.speaker import resolve_speaker
    from ..runtime.fast import fast_vocoder
    from ..vocoder.checkpoint import load_vocoder
    from ..vocoder.synth import collect_inputs, synth_files

    inputs = collect_inputs(args.input_file)
    model = fast_vocoder(load_vocoder(args.checkpoint, args.config, lang=args.lang, device=args.device), args.backend)
    speaker = resolve_speaker(model, args.speaker, args.speaker_encoder)  # for inputs without their own 'spkr'
    written = synth_files(
        model,
        inputs,
        args.output_folder,
        step=model.step,
        speaker=speaker,
        dur_prediction=args.dur_prediction,
        output_format=args.output_format,
    )
    for path in written:
        print(path)
    print(f"wrote {len(written)} wav file(s) to {args.output_folder}")
    return 0
