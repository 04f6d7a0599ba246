"""``unit2av demo``: the whole Unit2A loop on speech generated here, in a few minutes on a CPU.

1. a small zeroth-like corpus spoken by espeak-ng voices (Korean and English);
2. log-mel k-means units and GE2E speaker embeddings for it;
3. train / held-out manifests (one held-out sentence per speaker);
4. a small vocoder trained for a fixed wall-clock budget (default two minutes);
5. speech for the held-out sentences: from their own units, and from deduplicated units with
   predicted durations, each in the speaker's own voice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..vocoder.config import config_from_dict, save_config

log = logging.getLogger(__name__)

DEMO_K = 100  # units (k-means clusters); the bundled demo config has num_embeddings = 100
DEMO_SENTENCES = 8  # sentences per speaker (one of them held out)
DEMO_DISC_WIDTH = 0.125  # discriminator channel multiplier: full HiFi-GAN discriminators cost ~10x more per CPU step


@dataclass
class DemoResult:
    """Where the demo put things."""

    out_dir: Path
    wavs: list[Path] = field(default_factory=list)
    checkpoint: Path | None = None
    steps: int = 0
    val_error_start: float | None = None
    val_error_end: float | None = None


def demo_config(out_dir: Path, k: int = DEMO_K):
    """The bundled small vocoder config, with its manifests pointing into ``out_dir``."""
    data = json.loads(resources.files("unit2av.configs").joinpath("demo.json").read_text())
    data.update(
        num_embeddings=k,
        input_training_file=str(out_dir / "train.jsonl"),
        input_validation_file=str(out_dir / "valid.jsonl"),
    )
    return config_from_dict(data, "demo.json (bundled)")


def _prepare_data(out_dir: Path, sentences: int, k: int, seed: int, device: str) -> list[dict]:
    """Corpus, k-means, unit files and manifests. Returns the held-out corpus records."""
    from ..prepare.units import extract_folder, fit_kmeans, save_kmeans
    from ..vocoder.manifest import build_manifest, write_manifest
    from .corpus import make_corpus

    corpus_dir, unit_dir = out_dir / "corpus", out_dir / "units"
    records = make_corpus(corpus_dir, sentences_per_voice=sentences, seed=seed)
    last = {}
    for r in records:  # the last utterance of each speaker is held out
        last[r["speaker"]] = r
    held = {r["utt_id"] for r in last.values()}
    train_wavs = [r["path"] for r in records if r["utt_id"] not in held]
    km_path = out_dir / "km.pt"
    save_kmeans(fit_kmeans(train_wavs, k, seed=seed), km_path)
    extract_folder(km_path, corpus_dir, unit_dir, speaker=True, device=device)
    built = build_manifest(corpus_dir, unit_dir)
    write_manifest([e for e in built.entries if Path(e.audio).stem not in held], out_dir / "train.jsonl")
    write_manifest([e for e in built.entries if Path(e.audio).stem in held], out_dir / "valid.jsonl")
    return list(last.values())


def run_demo(
    out_dir: str | os.PathLike = "demo",
    train_seconds: float = 120.0,
    device: str = "auto",
    sentences: int = DEMO_SENTENCES,
    k: int = DEMO_K,
    seed: int = 0,
    max_steps: int = 1_000_000,
    validation_interval: int = 100,
) -> DemoResult:
    """Run the demo; see the module docstring.

    Args:
        out_dir: everything goes here (corpus, units, checkpoints, wavs).
        train_seconds: wall-clock training budget.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        sentences: sentences per speaker (the last one of each speaker is held out).
        k: number of units.
        seed: corpus, k-means and training seed.
        max_steps: also stop after this many updates.
        validation_interval: validate on the held-out sentences every N updates (and at step 0).
    """
    from ..vocoder.checkpoint import load_vocoder
    from ..vocoder.state import TrainOptions
    from ..vocoder.synth import synth_files
    from ..vocoder.train import train

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    held = _prepare_data(out, sentences, k, seed, "cpu")
    log.info("data ready in %.0f s", time.time() - t0)
    cfg = demo_config(out, k)
    cfg.seed = seed
    save_config(cfg, out / "config.json")
    ckpt = out / "checkpoints"
    opts = TrainOptions(
        checkpoint_path=str(ckpt),
        training_steps=max_steps,
        max_seconds=train_seconds,
        validation_interval=validation_interval,
        checkpoint_interval=1_000_000,
        stdout_interval=25,
        summary_interval=25,
        device=device,
        num_workers=0,
        disc_width=DEMO_DISC_WIDTH,
    )
    state = train(cfg, opts)
    best = ckpt / "g_best" if (ckpt / "g_best").is_file() else max(ckpt.glob("g_[0-9]*"))
    model = load_vocoder(best, out / "config.json", device=device).remove_weight_norm()
    units = [out / "units" / r["speaker"] / f"{r['utt_id']}.pt" for r in held]
    wav_dir = out / "wavs"
    result = DemoResult(
        out,
        checkpoint=best,
        steps=state.step,
        val_error_start=state.first_val_error,
        val_error_end=state.best_val_error,
    )
    result.wavs += synth_files(model, units, wav_dir / "own_durations", step=state.step)
    result.wavs += synth_files(model, units, wav_dir / "predicted_durations", step=state.step, dur_prediction=True)
    return result
