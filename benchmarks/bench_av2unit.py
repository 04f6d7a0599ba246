"""mAV-HuBERT unit extraction speed at the released size (AV2AV's ``mavhubert_large_noise.pt`` shapes).

    python benchmarks/bench_av2unit.py                       # 10 s of input, 2 threads, medians of 3
    python benchmarks/bench_av2unit.py --only av --repeats 5 --json out.json

The model has the released shapes (24 layers, width 1024, 16 heads, FFN 4096, pre-LN, ResNet-18
PReLU video front end, concat fusion, two 1004-class cosine heads) with random weights: speed does
not depend on their values. For 10 s (250 frames at 25 fps) of audio+video, audio only and video
only, two implementations of the same function run alternately on the same inputs:

- ``eager``: ``AVHubert`` as built (BatchNorm, weight norm, separate q/k/v projections, the 3-D stem
  and 3-D max pool on the whole clip, written-out softmax attention) under ``torch.no_grad``;
- ``fast``: what ``load_av2unit`` runs (``fuse_for_inference``: folded BatchNorm and weight norm,
  q/k/v as one product, channels-last 2-D convolutions, the stem as a 2-D convolution over 5 stacked
  frames max-pooled before its PReLU, 128-frame batches; on the CPU the products on prepacked oneDNN
  weights and attention as two batched products) under ``torch.inference_mode``.

Timed: encoder + label heads + argmax from prepared model inputs (what the reference's 1.8-1.9 s
covers); the feature computation (filterbank, crops) is timed separately. Reported per row: median
wall seconds, median process CPU seconds, the speed-up, max |Δ| of the encoder outputs and logits, and
how many of the 2T units differ. The speed-up is the median of the per-pair ratios (each eager run
against the fast run right after it). The machine's load average is printed: other processes on the same
cores inflate every wall-clock figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

TARGET_AV_SECONDS = 1.5  # issue 17: <= 1.5 s per 10 s of audio+video (2 threads)
REFERENCE_SECONDS = {"av": "1.8-1.9", "a": "1.0", "v": "1.9"}  # fairseq reference, issue 17 (Intel Xeon, 2 threads)
LARGE = dict(
    encoder_layers=24,
    encoder_embed_dim=1024,
    encoder_ffn_embed_dim=4096,
    encoder_attention_heads=16,
    layer_norm_first=True,
    final_dim=256,
    untie_final_proj=True,
    audio_feat_dim=104,
    stack_order_audio=4,
    normalize=True,
    num_classes=(1004, 1004),
)
MODES = {"av": ("audio", "video"), "a": ("audio",), "v": ("video",)}


def make_models(seed: int = 0, **sizes):
    """``(eager, fast)`` ``AVHubert`` pair with the same random weights (``sizes`` override ``LARGE``)."""
    from unit2av.av2unit.model import AVHubert, AVHubertConfig

    cfg = AVHubertConfig(**{**LARGE, **sizes})
    torch.manual_seed(seed)
    eager = AVHubert(cfg, manual_attention=True).eval()
    with torch.no_grad():
        for name, p in eager.named_parameters():
            if p.dim() > 1:  # conv / linear weights, N(0, 1/fan_in)
                p.normal_(0.0, p[0].numel() ** -0.5)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.02)
            else:  # norm scales, weight-norm magnitudes
                p.uniform_(0.8, 1.2)
        for m in eager.modules():
            if isinstance(m, torch.nn.PReLU):
                m.weight.uniform_(0.1, 0.3)
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_var.uniform_(0.5, 1.5)
                m.running_mean.normal_(0.0, 0.05)
    fast = AVHubert(cfg).eval()
    fast.load_state_dict(eager.state_dict())
    return eager, fast.fuse_for_inference(channels_last=True)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _run(model, audio, video, frame_batch, fast: bool):
    ctx = torch.inference_mode() if fast else torch.no_grad()
    with ctx:
        x = model.encode(audio, video, frame_batch)
        logits = model.head_logits(x)
        pred = torch.stack([h[0].argmax(-1) for h in logits], dim=1).reshape(-1)
    return x, logits, pred


def _timed(fn) -> tuple[float, float, object]:
    w, c = time.perf_counter(), _cpu_seconds()
    out = fn()
    return time.perf_counter() - w, _cpu_seconds() - c, out


def feature_seconds(seconds: float = 10.0, seed: int = 0) -> float:
    """Seconds to compute the model inputs of ``seconds`` of 16 kHz audio and 96x96 crops (median of 3)."""
    from unit2av.av2unit import features as F

    rng = np.random.default_rng(seed)
    wav = rng.integers(-3000, 3000, int(seconds * 16000)).astype(np.float64)
    gray = rng.integers(0, 256, (int(seconds * 25), 96, 96), dtype=np.uint8)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        F.audio_rows(wav, len(gray))
        F.image_transform(gray, 0.421, 0.165)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_av2unit(
    seconds: float = 10.0,
    repeats: int = 3,
    threads: int = 2,
    modes: tuple[str, ...] = ("av", "a", "v"),
    frame_batch: int = 128,
    seed: int = 0,
    **sizes,
) -> dict:
    """Eager vs fast mAV-HuBERT on ``seconds`` of random input, interleaved, medians of ``repeats``.

    Returns:
        ``{"rows": {mode: {...}}, "features_s", "threads", "cpu", "load_average", "target_av_s", "meets_target"}``.
    """
    torch.set_num_threads(threads)
    eager, fast = make_models(seed, **sizes)
    t = int(round(seconds * 25))
    gen = torch.Generator().manual_seed(seed)
    audio = torch.nn.functional.layer_norm(torch.randn(1, t, 104, generator=gen), (104,)).transpose(1, 2)
    video = torch.randn(1, 1, t, 88, 88, generator=gen)
    rows = {}
    for mode in modes:
        a = audio if "audio" in MODES[mode] else None
        v = video if "video" in MODES[mode] else None
        runs = {
            "eager": lambda a=a, v=v: _run(eager, a, v, None, False),
            "fast": lambda a=a, v=v: _run(fast, a, v, frame_batch, True),
        }
        for fn in runs.values():  # warm-up: oneDNN primitives, allocator
            fn()
        wall, cpu, outs = {k: [] for k in runs}, {k: [] for k in runs}, {}
        for _ in range(repeats):
            for name, fn in runs.items():
                w, c, outs[name] = _timed(fn)
                wall[name].append(w)
                cpu[name].append(c)
        (xe, le, pe), (xf, lf, pf) = outs["eager"], outs["fast"]
        we, wf = statistics.median(wall["eager"]), statistics.median(wall["fast"])
        ratios = [e / f for e, f in zip(wall["eager"], wall["fast"])]  # per interleaved pair: robust to load drift
        rows[mode] = {
            "eager_s": we,
            "fast_s": wf,
            "speedup": statistics.median(ratios),
            "eager_cpu_s": statistics.median(cpu["eager"]),
            "fast_cpu_s": statistics.median(cpu["fast"]),
            "max_diff_x": float((xe - xf).abs().max()),
            "max_diff_logits": max(float((a_ - b_).abs().max()) for a_, b_ in zip(le, lf)),
            "units": int(pe.numel()),
            "units_differ": int((pe != pf).sum()),
            "reference_s": REFERENCE_SECONDS[mode],
        }
    av = rows.get("av", {}).get("fast_s")
    return {
        "rows": rows,
        "seconds": seconds,
        "threads": threads,
        "repeats": repeats,
        "features_s": feature_seconds(seconds, seed),
        "cpu": _cpu_name(),
        "load_average": os.getloadavg(),
        "target_av_s": TARGET_AV_SECONDS,
        "meets_target": None if av is None else av <= TARGET_AV_SECONDS,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="input length (default: 10)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per implementation (default: 3)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--only", default="av,a,v", help="rows: av (audio+video), a (audio), v (video); default: all")
    p.add_argument("--frame-batch", type=int, default=128, help="video frames per front-end pass (default: 128)")
    p.add_argument("--json", default=None, help="also write the result here")
    args = p.parse_args(argv)
    res = bench_av2unit(args.seconds, args.repeats, args.threads, tuple(args.only.split(",")), args.frame_batch)
    print(
        f"mAV-HuBERT large, {args.seconds:g} s of input, {args.threads} threads, medians of {args.repeats}; "
        f"CPU {res['cpu']}; load average {', '.join(f'{x:.1f}' for x in res['load_average'])}"
    )
    print(
        f"{'row':<4} {'eager s':>8} {'fast s':>7} {'speed-up':>8} {'eager cpu':>9} {'fast cpu':>8} "
        f"{'max|dx|':>9} {'max|dlogit|':>11} {'units differ':>12} {'fairseq s':>9}"
    )
    for mode, r in res["rows"].items():
        print(
            f"{mode:<4} {r['eager_s']:8.2f} {r['fast_s']:7.2f} {r['speedup']:7.2f}x {r['eager_cpu_s']:9.2f} "
            f"{r['fast_cpu_s']:8.2f} {r['max_diff_x']:9.1e} {r['max_diff_logits']:11.1e} "
            f"{r['units_differ']:>5}/{r['units']:<6} {r['reference_s']:>9}"
        )
    print(
        f"features (filterbank + crops) for {args.seconds:g} s: {res['features_s']:.3f} s; target for av: "
        f"<= {TARGET_AV_SECONDS} s -> {'met' if res['meets_target'] else 'NOT met'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
