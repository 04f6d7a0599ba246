"""Peak memory of ``unit2av render`` for a short and a long synthetic HD clip (not a test).

    python benchmarks/bench_render_memory.py            # 10 s and 60 s, 1280x720
    python benchmarks/bench_render_memory.py --seconds 4 24 --device cpu

Each clip is rendered in its own subprocess and the RSS high-water mark
(``ru_maxrss``) of that process is reported. Rendering streams frames a window batch at a
time, so the ratio long/short should stay under 1.3 (the reference decodes the whole video
into RAM and grows linearly). Weights are random (the released AV2AV layout and config):
memory and speed do not depend on their values.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

FPS = 25  # frames per second of the synthetic clip (and of the output)
UNITS_PER_SECOND = 50  # HuBERT unit rate
TARGET_RATIO = 1.3  # long/short peak-memory ratio the issue asks for


def make_clip(path: Path, seconds: float, width: int, height: int) -> list:
    """A moving-gradient clip with a drawn face, no audio; returns its boxes (one per frame)."""
    from unit2av.io.video_writer import VideoWriter

    n = int(round(seconds * FPS))
    yy, xx = np.mgrid[0:height, 0:width]
    box_w, box_h = width // 5, int(width // 5 * 1.3)  # tall RetinaFace-like box
    boxes = []
    with VideoWriter(path, width, height, fps=FPS) as w:
        for i in range(n):
            frame = np.empty((height, width, 3), np.uint8)
            frame[..., 0] = (xx + 3 * i) % 256
            frame[..., 1] = (yy + 2 * i) % 256
            frame[..., 2] = 128
            cx, cy = width // 2 + int(40 * np.sin(i / 20)), height // 2
            cv2.ellipse(frame, (cx, cy), (box_w // 2 - 10, box_h // 2 - 10), 0, 0, 360, (140, 170, 220), -1)
            cv2.ellipse(frame, (cx, cy + box_h // 4), (box_w // 6, box_h // 16), 0, 0, 360, (60, 60, 160), -1)
            w.write(frame)
            boxes.append(np.array([cx - box_w / 2, cy - box_h / 2, cx + box_w / 2, cy + box_h / 2], np.float32))
    return boxes


def make_checkpoint(path: Path, lang: str = "en") -> None:
    """Random weights in the AV2AV container layout with the bundled AV2AV config (one vocoder, ``lang``)."""
    from unit2av.face.model import FaceRenderer
    from unit2av.io.safe import save_torch
    from unit2av.vocoder.checkpoint import generator_state
    from unit2av.vocoder.config import load_config
    from unit2av.vocoder.model import UnitVocoder

    vocoder = UnitVocoder.from_config(load_config(None))
    face = FaceRenderer()
    save_torch({"audio": {lang: generator_state(vocoder)}, "video": face.state_dict()}, path)


def child(args: argparse.Namespace) -> None:
    """Render one clip and print the peak RSS (MiB) and the wall time as JSON."""
    from unit2av.pipeline.render import render

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    res = render(
        args.units,
        args.video,
        args.boxes,
        args.out,
        "en",
        args.ckpt,
        dur_prediction=False,
        device=args.device,
        batch_size=args.batch_size,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB
    print(json.dumps({"peak_mib": peak, "seconds": time.perf_counter() - t0, "frames": res.num_frames}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs=2, default=[10.0, 60.0], help="short and long clip")
    parser.add_argument("--size", type=int, nargs=2, default=[1280, 720], help="width height")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--batch-size", type=int, default=80, help="frames per renderer forward")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads in the child")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("units", "video", "boxes", "out", "ckpt"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    from unit2av.io.safe import dump_plain_pickle, save_torch

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_checkpoint(tmp / "ckpt.pt")
        for seconds in args.seconds:
            clip = tmp / f"clip{seconds:g}.mp4"
            t0 = time.perf_counter()
            boxes = make_clip(clip, seconds, *args.size)
            dump_plain_pickle(boxes, tmp / f"clip{seconds:g}.pkl")
            n_units = int(seconds * UNITS_PER_SECOND)
            rng = np.random.default_rng(0)
            save_torch(
                {
                    "code": torch.from_numpy(rng.integers(0, 1000, n_units)),
                    "spkr": torch.from_numpy(rng.standard_normal(256).astype(np.float32)),
                },
                tmp / f"units{seconds:g}.pt",
            )
            print(
                f"made {seconds:g} s clip {args.size[0]}x{args.size[1]} in {time.perf_counter() - t0:.1f} s", flush=True
            )
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--units",
                str(tmp / f"units{seconds:g}.pt"),
                "--video",
                str(clip),
                "--boxes",
                str(tmp / f"clip{seconds:g}.pkl"),
                "--out",
                str(tmp / f"out{seconds:g}.mp4"),
                "--ckpt",
                str(tmp / "ckpt.pt"),
                "--device",
                args.device,
                "--batch-size",
                str(args.batch_size),
                "--threads",
                str(args.threads),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"render of the {seconds:g} s clip failed:\n{proc.stderr[-3000:]}")
            results[seconds] = json.loads(proc.stdout.strip().splitlines()[-1])
            r = results[seconds]
            print(
                f"{seconds:6g} s: {r['frames']} frames, peak RSS {r['peak_mib']:.0f} MiB, "
                f"render {r['seconds']:.1f} s ({r['frames'] / r['seconds']:.1f} fps)",
                flush=True,
            )
    short, long = (results[s]["peak_mib"] for s in args.seconds)
    ratio = long / short
    verdict = "OK" if ratio < TARGET_RATIO else "TOO HIGH"
    print(
        f"peak memory ratio {args.seconds[1]:g} s / {args.seconds[0]:g} s = {ratio:.3f} "
        f"(target < {TARGET_RATIO}): {verdict}"
    )


if __name__ == "__main__":
    main()
