"""Reproduce the bundled default face renderer (``src/unit2av/assets/face_renderer.pt``).

    python scripts/train_default_vocoder.py --out build/vocoder      # corpus, k-means, units first
    python scripts/train_default_face.py --vocoder_dir build/vocoder --out build/face --minutes 35

1. a synthetic talking-face clip for every corpus utterance (``unit2av.demo.talking_face``: the
   scikit-image astronaut photograph, mouth opening/shape and jaw driven by the speech, 25 fps,
   moving boxes), with units from the bundled k-means; the vocoder's held-out sentences are the
   held-out clips;
2. ``train-face`` (the product's ``unit2av.face.train.train_face``; no loop of its own) with a small
   renderer (width 64, the AV2AV layout scaled down) for a fixed wall-clock budget; the best
   validation checkpoint (mouth-half L1) is kept.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocoder_dir", default="build/vocoder", help="output of train_default_vocoder.py")
    p.add_argument("--out", default="build/face", help="work folder")
    p.add_argument("--minutes", type=float, default=35.0, help="wall-clock training budget")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--width", type=int, default=64, help="renderer width (512 = AV2AV)")
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--learning_rate", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    from unit2av.demo.talking_face import make_talking_faces
    from unit2av.face.state import FaceTrainConfig, FaceTrainOptions
    from unit2av.face.train import train_face
    from unit2av.io.safe import load_torch

    voc, out = Path(args.vocoder_dir), Path(args.out)
    records = json.loads((voc / "records.json").read_text())
    km = voc / "km.pt"
    t0 = time.time()
    if not (out / "valid" / "manifest.jsonl").is_file():
        make_talking_faces([r["path"] for r in records["train"]], out / "train", km, seed=args.seed)
        make_talking_faces([r["path"] for r in records["held_out"]], out / "valid", km, seed=args.seed + 10_000)
    logging.info("clips ready in %.0f s", time.time() - t0)
    k = int(load_torch(km, "k-means")["k"])
    cfg = FaceTrainConfig(
        width=args.width,
        num_embeddings=k,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        input_training_file=str(out / "train" / "manifest.jsonl"),
        input_validation_file=str(out / "valid" / "manifest.jsonl"),
    )
    opts = FaceTrainOptions(
        checkpoint_path=str(out / "checkpoints"),
        training_steps=1_000_000,
        validation_interval=100,
        checkpoint_interval=500,
        stdout_interval=25,
        summary_interval=25,
        device="cpu",
        max_seconds=args.minutes * 60,
        valid_windows=3,
    )
    t1 = time.time()
    state = train_face(cfg, opts)
    info = {
        "steps": state.step,
        "train_seconds": round(time.time() - t1),
        "first_val_error": state.first_val_error,
        "best_val_error": state.best_val_error,
        "width": args.width,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "threads": args.threads,
        "train_clips": len(records["train"]),
        "valid_clips": len(records["held_out"]),
    }
    (out / "train_info.json").write_text(json.dumps(info, indent=1))
    logging.info("done: %s", info)


if __name__ == "__main__":
    main()
