"""Reproduce the bundled default vocoder and k-means (``src/unit2av/assets``).

    python scripts/train_default_vocoder.py --out build/vocoder            # 55 min on 2 threads
    python scripts/bundle_default_models.py --vocoder_dir build/vocoder --face_dir build/face

1. a multi-speaker Korean + English corpus spoken by espeak-ng (6 voices x 20 sentences);
2. log-mel k-means units (k = 100) fitted on the training sentences;
3. train / held-out manifests (the last 2 sentences of every voice are held out);
4. the bundled recipe (``--minutes``, in ``nsf/``): the small vocoder config
   (``unit2av/configs/demo.json``) with ``f0_source`` on, trained from scratch on mel L1 +
   duration + ``pitch_loss`` x 30 + the f0 predictor's loss. The excitation runs at the real f0
   in training and at the predicted f0 in validation, as in inference. ``nsf/g_best`` (best
   validation objective on whole held-out utterances) is what ``bundle_default_models.py`` ships.
   GE2E is not used in training: it only measures (``scripts/evaluate_default_models.py``).
   Comparisons (the model card's tables):
   - ``--baseline_minutes``: a plain generator (mel L1 + duration only) in ``--out`` itself. It
     whispers low voices, or buzzes at periods of its upsampling grid (125 Hz): the coarse units
     leave their pitch open, and a mel loss is best served by no pitch at all;
   - ``--finetune_minutes``: the previous bundled recipe, fine-tuning the baseline with
     ``pitch_loss`` x 30 and GE2E ``speaker_consistency_loss`` x 30 in ``stage2/``. It is
     voiced, but low voices stay at about 125 Hz;
   - ``--gan_minutes``: adversarial fine-tuning of the baseline with ``train-unit2a --init``
     (HiFi-GAN losses, discriminators at 1/8 width) in ``gan/``. 1,000 steps (20 min on one
     core) changed nothing measurable.
   An f0_source generator started from the baseline (``init``) did not learn to use its source:
   the body kept its 125 Hz buzz, and training turned the source's merge layer down to ~0.
Everything is seeded; the wall-clock budgets make the step counts depend on the machine. Rerunning
continues each run from its ``latest.pt``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from unit2av.demo.corpus import DEFAULT_VOICES, EXTRA_VOICES, SENTENCES
from unit2av.demo.train import demo_config
from unit2av.vocoder.config import save_config

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


class Objective:
    """Generator objective in mel-error units: mel L1 (+ pitch and speaker consistency terms, / lambda_mel)."""

    def __init__(self, cfg, lambda_pitch: float = 0.0, lambda_spk: float = 0.0):
        from unit2av.spectral import mel_for_config

        self.cfg, self.lambda_pitch, self.lambda_spk = cfg, lambda_pitch, lambda_spk
        self.mel = mel_for_config(cfg, for_loss=True)
        self.encoder = None
        if lambda_spk:
            from unit2av.prepare.speaker import SpeakerEncoder

            # frozen; train mode only so that a cuDNN LSTM could backpropagate (it has no dropout)
            self.encoder = SpeakerEncoder.load().train().requires_grad_(False)

    def __call__(self, audio, mel_real, y_hat) -> tuple[torch.Tensor, dict]:
        from unit2av.vocoder.losses import mel_loss, pitch_loss, speaker_consistency_loss

        terms = {"mel": mel_loss(mel_real, self.mel(y_hat[:, 0]))}
        loss = terms["mel"]
        if self.lambda_pitch:
            terms["pitch"] = pitch_loss(audio, y_hat, self.cfg.sampling_rate)
            loss = loss + terms["pitch"] * (self.lambda_pitch / self.cfg.lambda_mel)
        if self.encoder is not None:
            terms["spk"] = speaker_consistency_loss(self.encoder, audio, y_hat)
            loss = loss + terms["spk"] * (self.lambda_spk / self.cfg.lambda_mel)
        return loss, terms

    @torch.no_grad()
    def validate(self, model, valid) -> float:
        """Mean objective over whole held-out utterances."""
        model.eval()
        errors = []
        for item in valid:
            y_hat, _ = model(code=item["code"][None], spkr=item["spkr"][None])
            errors.append(float(self(item["audio"][None], item["mel"][None], y_hat)[0]))
        model.train()
        return sum(errors) / len(errors)


def train_generator(out: Path, work: Path, minutes: float, seed: int, batch_size: int, validation_interval: int,
                    lambda_pitch: float = 0.0, lambda_spk: float = 0.0, init: Path | None = None,
                    f0_source: bool = False) -> dict:
    """Generator-only training; writes ``work/g_best`` (best validation objective). Returns a summary.

    Stage 1 (``work`` = ``out``, ``lambda_spk`` = 0): mel L1 + duration loss from scratch.
    Stage 2 (``work`` = ``out/spk``, ``init`` = stage 1's ``g_best``): + speaker consistency loss.
    With ``f0_source`` the generator gets the harmonic excitation and f0 predictor (the real f0
    drives the excitation in training; validation uses the predicted one, as inference does).
    Rerunning continues from ``work/latest.pt``.
    """
    from torch.utils.data import DataLoader

    from unit2av.io.checkpoints import load_state_checked, open_container, vocoder_state
    from unit2av.io.safe import load_torch, save_torch
    from unit2av.spectral import frame_f0
    from unit2av.vocoder.checkpoint import save_generator
    from unit2av.vocoder.data import UnitAudioDataset
    from unit2av.vocoder.manifest import read_manifest
    from unit2av.vocoder.model import SOURCE_PARTS, UnitVocoder

    work.mkdir(parents=True, exist_ok=True)
    cfg = demo_config(out, K)
    cfg.seed, cfg.batch_size, cfg.f0_source = seed, batch_size, f0_source
    save_config(cfg, work / "config.json")
    torch.manual_seed(seed)
    model = UnitVocoder.from_config(cfg).train()
    optim = torch.optim.AdamW(model.parameters(), cfg.learning_rate, betas=(cfg.adam_b1, cfg.adam_b2))
    trainset = UnitAudioDataset(read_manifest(out / "train.jsonl"), cfg, segment=True)
    valid = UnitAudioDataset(read_manifest(out / "valid.jsonl"), cfg, segment=False)
    loader = DataLoader(trainset, batch_size=batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    objective = Objective(cfg, lambda_pitch, lambda_spk)
    step, t0, init_steps = 0, time.time(), 0
    if init is not None:
        g = open_container(init)
        load_state_checked(model, vocoder_state(g, None, init), init, may_lack=SOURCE_PARTS if f0_source else ())
        init_steps = int(g["steps"])
    best = first = objective.validate(model, valid)
    if init is None:
        best = float("inf")  # from scratch: the untrained model is no candidate
    if (work / "latest.pt").is_file():  # resume (weights, optimiser, step; the batch order restarts)
        latest = load_torch(work / "latest.pt")
        model.load_state_dict(latest["model"])
        optim.load_state_dict(latest["optim"])
        step, best, first = latest["steps"], latest["best"], latest["first"]
        if latest.get("lambdas", [0.0, 0.0]) != [lambda_pitch, lambda_spk]:  # other weights: not comparable
            best = objective.validate(model, valid)
            logging.info("loss weights changed to pitch %g, spk %g: best objective reset to %.4f", lambda_pitch,
                         lambda_spk, best)
    logging.info("step %d: validation objective %.4f", step, first)
    while time.time() - t0 < minutes * 60:
        for batch in loader:
            f0 = frame_f0(batch["audio"], cfg.sampling_rate, cfg.code_hop_size) if f0_source else None
            y_hat, dur_loss = model(code=batch["code"], spkr=batch["spkr"], f0=f0)
            spectral, terms = objective(batch["audio"], batch["mel"], y_hat)
            loss = spectral * cfg.lambda_mel + dur_loss * cfg.dur_prediction_weight
            if f0_source:
                terms["f0"] = model.last_f0_loss
                loss = loss + terms["f0"] * cfg.lambda_f0
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            step += 1
            if step % validation_interval == 0:
                err = objective.validate(model, valid)
                logging.info("step %d: loss %.3f (%s), validation objective %.4f, %.0f s", step, loss.item(),
                             ", ".join(f"{k} {v.item():.3f}" for k, v in terms.items()), err, time.time() - t0)
                if err < best:
                    best = err
                    save_generator(model, work / "g_best", config=cfg, step=init_steps + step)
                save_torch({"model": model.state_dict(), "optim": optim.state_dict(), "steps": step, "best": best,
                            "first": first, "lambdas": [lambda_pitch, lambda_spk]}, work / "latest.pt")
            if time.time() - t0 >= minutes * 60:
                break
    losses = ("mel L1 x lambda_mel + duration MSE" + (f" + pitch x {lambda_pitch}" if lambda_pitch else "")
              + (f" + GE2E speaker consistency x {lambda_spk}" if lambda_spk else "")
              + (" + f0 predictor (log-f0 MSE + voicing BCE)" if f0_source else ""))
    return {"init_steps": init_steps, "steps": step, "train_seconds": round(time.time() - t0),
            "first_val_objective": first, "best_val_objective": best, "batch_size": batch_size,
            "lambda_pitch": lambda_pitch, "lambda_spk": lambda_spk, "f0_source": f0_source, "losses": losses}


def train_adversarial(out: Path, minutes: float, disc_width: float) -> dict:
    """Stage 2: ``train-unit2a`` from ``out/g_best`` for ``minutes`` (continues an earlier run in ``out/gan``)."""
    from unit2av.io.checkpoints import checkpoint_step
    from unit2av.io.safe import load_torch
    from unit2av.vocoder.config import load_config
    from unit2av.vocoder.state import TrainOptions
    from unit2av.vocoder.train import train

    cfg = load_config(out / "config.json")
    opts = TrainOptions(str(out / "gan"), training_steps=1_000_000, validation_interval=500,
                        checkpoint_interval=500, stdout_interval=100, disc_width=disc_width,
                        max_seconds=minutes * 60, init=str(out / "g_best"))
    t0 = time.time()
    state = train(cfg, opts)
    return {"init": "g_best", "init_steps": checkpoint_step(out / "g_best", load_torch(out / "g_best")),
            "steps": state.step, "train_seconds": round(time.time() - t0), "disc_width": disc_width,
            "losses": "HiFi-GAN: mel L1 x 45 + feature matching x 2 + adversarial (MPD + MSD) + duration MSE",
            "first_val_mel_error": state.first_val_error, "best_val_mel_error": state.best_val_error}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/vocoder", help="work folder (corpus, units, manifests, stages)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--validation_interval", type=int, default=200)
    p.add_argument("--minutes", type=float, default=55.0,
                   help="wall-clock budget of the bundled recipe (f0_source generator from scratch; 0: skip)")
    p.add_argument("--dir", default="nsf", help="its work folder inside --out")
    p.add_argument("--lambda_pitch", type=float, default=30.0, help="its pitch (autocorrelation) loss weight")
    p.add_argument("--lambda_spk", type=float, default=0.0,
                   help="its GE2E speaker consistency weight (0: GE2E only measures, as in the model card)")
    p.add_argument("--baseline_minutes", type=float, default=0.0,
                   help="comparison: a plain generator (mel + duration losses only) in --out itself")
    p.add_argument("--finetune_minutes", type=float, default=0.0,
                   help="comparison: the previous recipe, fine-tuning the baseline with pitch x 30 + GE2E x 30 "
                        "in --out/stage2")
    p.add_argument("--gan_minutes", type=float, default=0.0,
                   help="comparison: adversarial fine-tuning of the baseline in --out/gan")
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
    continue_baseline = (out / "g_best").is_file() and not (out / "latest.pt").is_file()
    runs = [  # (budget, work folder, keyword arguments of train_generator)
        (args.minutes, out / args.dir,
         dict(lambda_pitch=args.lambda_pitch, lambda_spk=args.lambda_spk, f0_source=True)),
        (args.baseline_minutes, out, dict(init=out / "g_best" if continue_baseline else None)),
        (args.finetune_minutes, out / "stage2", dict(lambda_pitch=30.0, lambda_spk=30.0, init=out / "g_best")),
    ]
    for minutes, work, kwargs in runs:
        if minutes > 0:
            info = train_generator(out, work, minutes, args.seed, args.batch_size, args.validation_interval, **kwargs)
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
