"""Reproduce the bundled default vocoder and k-means (``src/unit2av/assets``).

    python scripts/train_default_vocoder.py --out build/vocoder            # 55 min on 2 threads
    python scripts/bundle_default_models.py --vocoder_dir build/vocoder --face_dir build/face

1. a multi-speaker Korean + English corpus spoken by espeak-ng (6 voices x 20 sentences);
2. log-mel k-means units (k = 100) fitted on the training sentences;
3. train / held-out manifests (the last 2 sentences of every voice are held out);
4. the bundled recipe (``--minutes``, in ``nsf/``), run by the product's own trainer
   (``unit2av.vocoder.train.train``, i.e. ``train-unit2a``) with the config ``recipe_config`` makes:
   the small vocoder config (``unit2av/configs/demo.json``) with ``f0_source`` on, trained from
   scratch on mel L1 + duration + ``pitch_loss`` x 30 + the f0 predictor's loss. ``lambda_fm`` and
   ``lambda_adv`` are 0, so the discriminators sit out; ``lr_decay`` 1 keeps the learning rate
   constant. The excitation runs at the real f0 in training and at the predicted f0 in validation,
   as in inference. ``nsf/g_best`` (best validation objective, mel L1 + pitch x 30/45, on whole
   held-out utterances) is what ``bundle_default_models.py`` ships. GE2E is not used in training:
   it only measures (``scripts/evaluate_default_models.py``).
   Comparisons (the model card's tables):
   - ``--baseline_minutes``: a plain generator (mel L1 + duration only) in ``--out`` itself. It
     whispers low voices, or buzzes at periods of its upsampling grid (125 Hz): the coarse units
     leave their pitch open, and a mel loss is best served by no pitch at all;
   - ``--gan_minutes``: adversarial fine-tuning of the baseline with ``train-unit2a --init``
     (HiFi-GAN losses, discriminators at 1/8 width) in ``gan/``. 1,000 steps (20 min on one
     core) changed nothing measurable.
   The model card's "previous recipe" (the baseline fine-tuned with a GE2E speaker-consistency
   term) is not rerun here: ``train-unit2a`` has no GE2E term, and a second training loop in
   this script is what the bundled models must not depend on.
   An f0_source generator started from the baseline (``init``) did not learn to use its source:
   the body kept its 125 Hz buzz, and training turned the source's merge layer down to ~0.
Everything is seeded; the wall-clock budgets make the step counts depend on the machine. Rerunning
continues each run from its newest ``do_`` checkpoint, as ``train-unit2a`` does.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import torch

from unit2av.demo.corpus import DEFAULT_VOICES, EXTRA_VOICES, SENTENCES
from unit2av.demo.train import demo_config
from unit2av.vocoder.config import VocoderConfig
from unit2av.vocoder.state import TrainOptions
from unit2av.vocoder.train import train

HELD_OUT_PER_VOICE = 2  # the last sentences of every voice, never trained on
K = 100  # units

# More sentences (written for this project) so that every voice reads 20.
EXTRA_SENTENCES = {
    "ko": (
        "점심으로 김치찌개를 먹었어요.",
        "지하철 이 호선으로 갈아타세요.",
        "창문을 조금만 열어 주시겠어요?",
        "어제 본 영화는 아주 재미있었어요.",
        "우체국은 은행 옆에 있습니다.",
        "아이들이 운동장에서 축구를 합니다.",
        "이번 겨울은 눈이 많이 내렸어요.",
        "저녁에는 가족과 함께 식사를 합니다.",
    ),
    "en": (
        "She painted the old fence bright blue.",
        "Our flight leaves early on Monday morning.",
        "Could you open the window a little?",
        "The soup needs a pinch more salt.",
        "He forgot his umbrella at the station.",
        "Children are playing football in the yard.",
        "It snowed heavily all through the night.",
        "We usually eat dinner together at seven.",
    ),
}


def prepare(out: Path, seed: int) -> tuple[list[dict], list[dict]]:
    """Corpus, k-means, units and manifests under ``out``. Returns (train records, held-out records)."""
    from unit2av.demo.corpus import make_corpus
    from unit2av.prepare.units import extract_folder, fit_kmeans, save_kmeans
    from unit2av.vocoder.manifest import build_manifest, write_manifest

    sentences = {lang: list(SENTENCES[lang]) + list(EXTRA_SENTENCES[lang]) for lang in SENTENCES}
    voices = list(DEFAULT_VOICES) + list(EXTRA_VOICES)
    records = make_corpus(out / "corpus", voices=voices, sentences_per_voice=20, seed=seed, sentences=sentences)
    by_spk: dict[str, list[dict]] = {}
    for r in records:
        by_spk.setdefault(r["speaker"], []).append(r)
    held = [r for rs in by_spk.values() for r in rs[-HELD_OUT_PER_VOICE:]]
    held_ids = {r["utt_id"] for r in held}
    train = [r for r in records if r["utt_id"] not in held_ids]
    save_kmeans(fit_kmeans([r["path"] for r in train], K, seed=seed), out / "km.pt")
    extract_folder(out / "km.pt", out / "corpus", out / "units", speaker=True)
    built = build_manifest(out / "corpus", out / "units")
    write_manifest([e for e in built.entries if Path(e.audio).stem not in held_ids], out / "train.jsonl")
    write_manifest([e for e in built.entries if Path(e.audio).stem in held_ids], out / "valid.jsonl")
    (out / "records.json").write_text(json.dumps({"train": train, "held_out": held}, indent=1))
    return train, held


RECIPE_DISC_WIDTH = 0.125  # the idle discriminators of a generator-only run: built and saved, never run
RECIPE_CHECKPOINT_INTERVAL = 2000  # g_/do_ every N steps (a rerun continues from the newest)


def recipe_config(
    base: VocoderConfig, seed: int, batch_size: int, lambda_pitch: float = 0.0, f0_source: bool = False
) -> VocoderConfig:
    """The bundled recipe as a ``train-unit2a`` config: ``base`` trained as a generator alone.

    Args:
        base: the model config (``demo_config``: ``configs/demo.json`` with the manifests of ``--out``).
        seed / batch_size: the run's seed and batch size.
        lambda_pitch: weight of ``pitch_loss`` (30 in the bundled recipe; 0: mel + duration only).
        f0_source: the harmonic excitation and f0 predictor (the bundled recipe) or a plain generator.
    """
    return dataclasses.replace(
        base,
        seed=seed,
        batch_size=batch_size,
        f0_source=f0_source,
        lambda_pitch=lambda_pitch,
        lambda_fm=0.0,
        lambda_adv=0.0,
        lr_decay=1.0,
    ).validate()


def recipe_options(
    work: Path, minutes: float, validation_interval: int, lambda_pitch: float = 0.0, steps: int = 10**9
) -> TrainOptions:
    """``train-unit2a`` run options of a recipe stage: a wall-clock budget, ``g_best`` by the validation
    objective (mel L1, plus the pitch term when it is trained), CPU."""
    return TrainOptions(
        str(work),
        training_steps=steps,
        training_epochs=10**9,
        max_seconds=minutes * 60,
        validation_interval=validation_interval,
        checkpoint_interval=RECIPE_CHECKPOINT_INTERVAL,
        stdout_interval=validation_interval,
        summary_interval=50,
        device="cpu",
        num_workers=0,
        disc_width=RECIPE_DISC_WIDTH,
        audio_samples=2,
        validation_terms=("mel", "pitch") if lambda_pitch else ("mel",),
    )


def train_generator(
    base: VocoderConfig,
    work: Path,
    minutes: float,
    seed: int,
    batch_size: int,
    validation_interval: int,
    lambda_pitch: float = 0.0,
    f0_source: bool = False,
    steps: int = 10**9,
) -> dict:
    """One recipe stage with ``train-unit2a``'s ``train``; writes ``work/g_best``. Returns a summary."""
    cfg = recipe_config(base, seed, batch_size, lambda_pitch, f0_source)
    t0 = time.time()
    state = train(cfg, recipe_options(work, minutes, validation_interval, lambda_pitch, steps))
    losses = (
        "mel L1 x lambda_mel + duration MSE"
        + (f" + pitch x {lambda_pitch}" if lambda_pitch else "")
        + (" + f0 predictor (log-f0 MSE + voicing BCE)" if f0_source else "")
    )
    return {
        "steps": state.step,
        "train_seconds": round(time.time() - t0),
        "first_val_objective": state.first_val_error,
        "best_val_objective": state.best_val_error,
        "batch_size": batch_size,
        "lambda_pitch": lambda_pitch,
        "f0_source": f0_source,
        "losses": losses,
        "trainer": "unit2av.vocoder.train.train (train-unit2a)",
    }


def train_adversarial(out: Path, minutes: float, disc_width: float) -> dict:
    """Comparison: ``train-unit2a`` from ``out/g_best`` for ``minutes`` (continues an earlier run in ``out/gan``)."""
    from unit2av.io.checkpoints import checkpoint_step
    from unit2av.io.safe import load_torch
    from unit2av.vocoder.config import load_config

    cfg = load_config(out / "config.json")
    opts = TrainOptions(
        str(out / "gan"),
        training_steps=1_000_000,
        validation_interval=500,
        checkpoint_interval=500,
        stdout_interval=100,
        disc_width=disc_width,
        max_seconds=minutes * 60,
        init=str(out / "g_best"),
    )
    t0 = time.time()
    state = train(dataclasses.replace(cfg, lambda_fm=2.0, lambda_adv=1.0, lr_decay=0.999), opts)
    return {
        "init": "g_best",
        "init_steps": checkpoint_step(out / "g_best", load_torch(out / "g_best")),
        "steps": state.step,
        "train_seconds": round(time.time() - t0),
        "disc_width": disc_width,
        "losses": "HiFi-GAN: mel L1 x 45 + feature matching x 2 + adversarial (MPD + MSD) + duration MSE",
        "first_val_mel_error": state.first_val_error,
        "best_val_mel_error": state.best_val_error,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/vocoder", help="work folder (corpus, units, manifests, stages)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--validation_interval", type=int, default=200)
    p.add_argument(
        "--minutes",
        type=float,
        default=55.0,
        help="wall-clock budget of the bundled recipe (f0_source generator from scratch; 0: skip)",
    )
    p.add_argument("--dir", default="nsf", help="its work folder inside --out")
    p.add_argument("--lambda_pitch", type=float, default=30.0, help="its pitch (autocorrelation) loss weight")
    p.add_argument(
        "--baseline_minutes",
        type=float,
        default=0.0,
        help="comparison: a plain generator (mel + duration losses only) in --out itself",
    )
    p.add_argument(
        "--gan_minutes",
        type=float,
        default=0.0,
        help="comparison: adversarial fine-tuning of the baseline in --out/gan",
    )
    p.add_argument("--disc_width", type=float, default=0.125, help="adversarial stage discriminator width")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not (out / "valid.jsonl").is_file():
        prepare(out, args.seed)
    logging.info("data ready in %.0f s", time.time() - t0)
    base = demo_config(out, K)
    runs = [  # (budget, work folder, keyword arguments of train_generator)
        (args.minutes, out / args.dir, dict(lambda_pitch=args.lambda_pitch, f0_source=True)),
        (args.baseline_minutes, out, {}),
    ]
    for minutes, work, kwargs in runs:
        if minutes > 0:
            info = train_generator(base, work, minutes, args.seed, args.batch_size, args.validation_interval, **kwargs)
            info["threads"] = args.threads
            (work / "train_info.json").write_text(json.dumps(info, indent=1, default=str))
            logging.info("%s done: %s", work, info)
    if args.gan_minutes > 0:
        info = train_adversarial(out, args.gan_minutes, args.disc_width)
        info["threads"] = args.threads
        (out / "gan_info.json").write_text(json.dumps(info, indent=1))
        logging.info("adversarial stage done: %s", info)


if __name__ == "__main__":
    main()
