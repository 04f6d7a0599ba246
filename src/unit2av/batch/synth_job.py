"""One ``synth`` job: a units file -> one wav, with a given (or the worker's cached) vocoder.

``unit2av synth`` writes ``<folder>/<stem>_<step>step.wav`` for a file or a folder; a batch job
names its one output instead, so that the output folder can tell which jobs are done.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SynthResult:
    """What ``synth_one`` wrote."""

    path: Path
    num_samples: int
    sample_rate: int


def synth_one(
    input_file: str | os.PathLike,
    output_file: str | os.PathLike,
    checkpoint: str | os.PathLike,
    config: str | os.PathLike | None = None,
    lang: str | None = None,
    speaker=None,
    speaker_encoder=None,
    dur_prediction: bool = False,
    output_format: str = "int16",
    device: str = "auto",
    backend: str = "auto",
    model=None,
) -> SynthResult:
    """Synthesise one units file into ``output_file`` (written atomically).

    Args:
        input_file: ``.pt`` (``{"code", "spkr"}`` or a tensor) or ``.txt`` of unit ids.
        output_file: the ``.wav`` to write.
        checkpoint: ``g_*``, ``{"generator": sd}`` or an AV2AV container (with ``lang``).
        config: vocoder config JSON (default: embedded / beside the checkpoint / AV2AV's).
        speaker: for units without ``spkr``: an integer id, a ``.pt`` embedding, or audio to embed.
        speaker_encoder: GE2E weights (or a loaded encoder) for audio ``speaker``s.
        dur_prediction: units are deduplicated: expand them by predicted durations.
        output_format: ``"int16"`` or ``"float"`` wav samples.
        model: an already loaded vocoder (skips loading ``checkpoint``).

    Raises:
        Unit2AVError: bad units, checkpoint, or speaker (one line naming the file).
    """
    from ..io.audio import save_wav
    from ..io.units import read_units
    from ..pipeline.speaker import resolve_speaker
    from ..vocoder.synth import speaker_tensor, synthesize

    if model is None:
        from ..runtime.fast import fast_vocoder
        from ..vocoder.checkpoint import load_vocoder

        model = fast_vocoder(load_vocoder(checkpoint, config, lang=lang, device=device), backend)
    units = read_units(input_file, model.dict.num_embeddings, deduplicate=dur_prediction)
    spkr = units.spkr  # as `unit2av synth --speaker`: the job's speaker only for units without their own
    if spkr is None:
        spkr = resolve_speaker(model, speaker, speaker_encoder, next(model.parameters()).device)
    wav, _ = synthesize(model, units.code, speaker_tensor(model, spkr, units.path), dur_prediction)
    rate = int(model.config.sampling_rate) if model.config else 16000
    save_wav(output_file, wav, rate, output_format)
    return SynthResult(Path(output_file), len(wav), rate)


__all__ = ["SynthResult", "synth_one"]
