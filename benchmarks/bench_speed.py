"""Speed and memory of unit2av on this machine: one table, every figure measured in this run.

    python benchmarks/bench_speed.py                 # the whole table (about 11 minutes on 2 idle cores)
    python benchmarks/bench_speed.py --only 1 2      # some rows
    python benchmarks/bench_speed.py --quick         # every row at small sizes (a smoke run, a few minutes)
    python benchmarks/bench_speed.py --repeats 5 --threads 4

Rows (issues 6 and 17); every row runs the straightforward implementation of the same function too
and prints the ratio and max |Δ|:
1. vocoder, bundled AV2AV config (512 channels), 10 s of units: eager (weight norm removed,
   ``torch.inference_mode``) vs the folded paths (``"folded"``: eager layout, ``"torch"``:
   channels-last) and what ``backend="auto"`` chose on this machine (calibrated in this run).
2. face renderer (released size), 250 frames in render's batches: the same paths.
3. ``render`` on a 10 s 1280x720 clip: the one-thread loop vs decode / model / encode overlapped:
   totals, CPU seconds, time inside the models (forward hooks), total / models, identical frames, and
   which of the two ``render`` runs by default on this machine (``overlap_pays``); both with the
   default encoder preset, and the one-thread loop once more with ``ultrafast``.
4. peak RSS of the overlapped ``render`` for 10 s and 60 s 1280x720 clips (each in its own process).
5. ``train-unit2a`` steps at a small config: the reference's data path vs ours (``bench_training``).
6. mAV-HuBERT large unit extraction, audio-only and audio-visual: eager vs fused (``bench_av2unit``).
7. UTUT mBART-large beam-5 decoding: plain (no cache) vs the default (cache + prepacked oneDNN) (``bench_utut``).
8. ``dub`` end to end on a 10 s clip, per stage: plain vs ours (``bench_dub``).
Compared paths run alternately (round by round, the order rotated) and each figure is a median over
``--repeats`` rounds; ratios are medians of the per-round ratios. Weights are random (released layouts):
speed and memory do not depend on their values. Other work on the machine inflates every time: the
load average is printed with each row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_render_memory import UNITS_PER_SECOND, make_checkpoint, make_clip  # noqa: E402

from unit2av.io.video_writer import DEFAULT_PRESET  # noqa: E402

FAST_PRESET = "ultrafast"  # row 3 also renders one batch after another with the fastest x264 preset

CLIP_SIZE = (1280, 720)  # rows 3-4: width, height
# Sizes per mode: seconds of speech (1), frames (2), clip seconds (3-4), training steps (5), mAV-HuBERT
# input seconds (6), UTUT max_len_b (7), dub clip seconds (8).
SIZES = {
    "full": {"speech": 10.0, "face": 250, "clips": (10.0, 60.0), "train": 10, "av2unit": 10.0, "utut": 50, "dub": 10.0},
    "quick": {"speech": 2.0, "face": 40, "clips": (4.0, 8.0), "train": 3, "av2unit": 2.0, "utut": 8, "dub": 2.0},
}
TARGETS = {"rtf": 0.13, "default_vs_eager": 1.0, "fps": 13.0, "face_speedup": 1.5, "overhead": 1.15, "memory": 1.3}


def _load() -> str:
    return "load avg " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def _ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


def interleaved(paths: dict, repeats: int) -> dict:
    """Run every path once per round (order rotated each round) after a warm-up call of each.

    Args:
        paths: name -> call returning a tensor; the first is the reference the others are compared to.
        repeats: rounds.

    Returns:
        ``{"s": {name: median seconds}, "x": {name: median over rounds of reference s / name s},
        "diff": {name: max |Δ| of its output vs the reference's}}``.
    """
    names = list(paths)
    times = {n: [] for n in names}
    diff = dict.fromkeys(names, 0.0)
    with torch.inference_mode():
        for n in names:
            paths[n]()
        for r in range(repeats):
            outs = {}
            for n in names[r % len(names) :] + names[: r % len(names)]:
                t0 = time.perf_counter()
                outs[n] = paths[n]()
                times[n].append(time.perf_counter() - t0)
            for n in names:
                diff[n] = max(diff[n], float((outs[n] - outs[names[0]]).abs().max()))
    ref = times[names[0]]
    return {
        "s": {n: statistics.median(t) for n, t in times.items()},
        "x": {n: statistics.median(a / b for a, b in zip(ref, t)) for n, t in times.items()},
        "diff": diff,
    }


def _paths_line(res: dict, chosen: str, unit=None) -> str:
    parts = [f"{n} {unit(s) if unit else f'{s:.2f} s'} x{res['x'][n]:.2f}" for n, s in res["s"].items()]
    return " | ".join(parts) + f" | auto -> {chosen}: x{res['x'][chosen]:.2f} vs eager"


def row_vocoder(size: dict, repeats: int) -> list[str]:
    from unit2av.runtime.fast import fast_vocoder
    from unit2av.vocoder.config import load_config
    from unit2av.vocoder.model import UnitVocoder

    cfg = load_config(None)
    torch.manual_seed(0)
    model = UnitVocoder.from_config(cfg).eval()
    model.remove_weight_norm()
    auto = fast_vocoder(model)  # calibrates now (this run's cache folder) or reads the cache
    chosen = "eager" if auto is model else "torch" if auto.body.channels_last else "folded"
    paths = {"eager": model, "folded": fast_vocoder(model, "folded"), "torch": fast_vocoder(model, "torch")}
    seconds = size["speech"]
    n = int(seconds * cfg.sampling_rate / cfg.code_hop_size)
    code, spkr = torch.randint(0, cfg.num_embeddings, (1, n)), torch.randn(1, 1, cfg.embedder_dim)
    res = interleaved({k: (lambda m=m: m(code=code, spkr=spkr)[0]) for k, m in paths.items()}, repeats)
    rtf = res["s"][chosen] / seconds
    return [
        f"1 vocoder {seconds:g} s (AV2AV, 512 ch) | "
        + _paths_line(res, chosen, lambda s: f"{s:.2f} s (RTF {s / seconds:.3f})")
        + f" | max|Δ| {max(res['diff'].values()):.1e} | default >= eager: "
        f"{_ok(res['x'][chosen] >= TARGETS['default_vs_eager'])}, RTF<={TARGETS['rtf']}: "
        f"{_ok(rtf <= TARGETS['rtf'])}"
    ]


def row_face(size: dict, repeats: int) -> list[str]:
    from unit2av.face.model import FRAMES_PER_WINDOW, UNITS_PER_WINDOW, FaceRenderer
    from unit2av.pipeline.render import DEFAULT_BATCH_FRAMES
    from unit2av.runtime.fast import fast_face_renderer

    torch.manual_seed(0)
    model = FaceRenderer().eval()
    auto = fast_face_renderer(model)
    chosen = "eager" if auto is model else "torch" if auto.channels_last else "folded"
    paths = {"eager": model, "folded": fast_face_renderer(model, "folded"), "torch": fast_face_renderer(model, "torch")}
    frames = size["face"]
    windows = frames // FRAMES_PER_WINDOW
    units = torch.randint(0, model.num_embeddings, (windows, UNITS_PER_WINDOW))
    faces = torch.rand(frames, 6, 96, 96)
    per = DEFAULT_BATCH_FRAMES // FRAMES_PER_WINDOW  # windows per forward, as render batches them

    def run(m):
        return torch.cat(
            [
                m(units[w : w + per], faces[w * FRAMES_PER_WINDOW : (w + per) * FRAMES_PER_WINDOW])
                for w in range(0, windows, per)
            ]
        )

    res = interleaved({k: (lambda m=m: run(m)) for k, m in paths.items()}, repeats)
    fps = frames / res["s"][chosen]
    return [
        f"2 face renderer {frames} frames (batch {per * FRAMES_PER_WINDOW}) | "
        + _paths_line(res, chosen, lambda s: f"{frames / s:.1f} fps")
        + f" | max|Δ| {max(res['diff'].values()):.1e} | fps>={TARGETS['fps']:g}: {_ok(fps >= TARGETS['fps'])}, "
        f"x>={TARGETS['face_speedup']}: {_ok(res['x'][chosen] >= TARGETS['face_speedup'])}"
    ]


def render_child(args: argparse.Namespace) -> None:
    """Render one clip with the default models; print total / model seconds and peak RSS as JSON."""
    from unit2av import load_renderer, render
    from unit2av.pipeline.render import overlap_pays

    torch.set_num_threads(args.threads)
    vocoder, face = load_renderer(args.ckpt, None, "en", device="cpu")
    spent = {"vocoder": 0.0, "face": 0.0}

    def clock(name):
        def pre(module, inputs):
            module._bench_t0 = time.perf_counter()

        def post(module, inputs, output):
            spent[name] += time.perf_counter() - module._bench_t0

        return pre, post

    for name, module in (("vocoder", vocoder), ("face", face)):
        pre, post = clock(name)
        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    res = render(
        args.units,
        args.video,
        args.boxes,
        args.out,
        "en",
        args.ckpt,
        dur_prediction=False,
        models=(vocoder, face),
        overlap=not args.one_thread,
        preset=args.encoder_preset,
    )
    total, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB
    print(
        json.dumps(
            {
                "total": total,
                "cpu": cpu,
                "peak_mib": peak,
                "frames": res.num_frames,
                "default_overlaps": int(overlap_pays(face)),
                **spent,
            }
        )
    )


def _cpu_seconds() -> float:
    """CPU seconds of this process so far, all threads (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _render(tmp: Path, seconds: float, threads: int, one_thread: bool, out: Path, preset: str | None = None) -> dict:
    cmd = (
        [
            sys.executable,
            __file__,
            "--render-child",
            "--threads",
            str(threads),
            "--ckpt",
            str(tmp / "ckpt.pt"),
            "--units",
            str(tmp / f"units{seconds:g}.pt"),
            "--video",
            str(tmp / f"clip{seconds:g}.mp4"),
            "--boxes",
            str(tmp / f"clip{seconds:g}.pkl"),
            "--out",
            str(out),
        ]
        + (["--one-thread"] if one_thread else [])
        + (["--encoder-preset", preset] if preset else [])
    )
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"render of the {seconds:g} s clip failed:\n{proc.stderr[-3000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["models"] = r["vocoder"] + r["face"]
    print(
        f"  ({'one thread' if one_thread else 'overlapped'} render of the {seconds:g} s clip: "
        f"{json.dumps({k: round(v, 2) for k, v in r.items()})}; {_load()})",
        flush=True,
    )
    return r


def rows_render(threads: int, size: dict, repeats: int) -> list[str]:
    from unit2av.io.media import iter_frames
    from unit2av.io.safe import dump_plain_pickle, save_torch

    short_s, long_s = size["clips"]
    runs: dict[str, list[dict]] = {"one": [], "overlap": [], "fast": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_checkpoint(tmp / "ckpt.pt")
        for seconds in (short_s, long_s):
            boxes = make_clip(tmp / f"clip{seconds:g}.mp4", seconds, *CLIP_SIZE)
            dump_plain_pickle(boxes, tmp / f"clip{seconds:g}.pkl")
            rng = np.random.default_rng(0)
            save_torch(
                {
                    "code": torch.from_numpy(rng.integers(0, 1000, int(seconds * UNITS_PER_SECOND))),
                    "spkr": torch.from_numpy(rng.standard_normal(256).astype(np.float32)),
                },
                tmp / f"units{seconds:g}.pt",
            )
        for r in range(repeats):  # one-thread, overlapped and fast-preset renders of the short clip alternate
            kinds = ("one", "overlap", "fast")
            for kind in kinds[r % 3 :] + kinds[: r % 3]:
                preset = FAST_PRESET if kind == "fast" else None
                runs[kind].append(_render(tmp, short_s, threads, kind != "overlap", tmp / f"{kind}.mp4", preset))
        frame_diff = max(
            (
                int(np.abs(a.astype(np.int16) - b).max())
                for a, b in zip(iter_frames(tmp / "one.mp4"), iter_frames(tmp / "overlap.mp4"))
            ),
            default=0,
        )
        same_bytes = (tmp / "one.mp4").read_bytes() == (tmp / "overlap.mp4").read_bytes()
        long = _render(tmp, long_s, threads, False, tmp / "long.mp4")
    med = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
    one, ov, fast = med["one"], med["overlap"], med["fast"]
    speedup = statistics.median(a["total"] / b["total"] for a, b in zip(runs["one"], runs["overlap"]))
    ratio = ov["total"] / ov["models"]
    default = "overlapped" if ov["default_overlaps"] else "one thread"  # render's overlap=None on this machine
    default_ratio = ratio if ov["default_overlaps"] else one["total"] / one["models"]
    mem = long["peak_mib"] / ov["peak_mib"]
    size_s = f"{CLIP_SIZE[0]}x{CLIP_SIZE[1]}"
    return [
        f"3 render {short_s:g} s {size_s} ({int(ov['frames'])} frames) | one thread: total {one['total']:.1f} s, "
        f"models {one['models']:.1f} s ({one['total'] / one['models']:.2f}), CPU {one['cpu']:.1f} s | overlapped: "
        f"total {ov['total']:.1f} s, CPU {ov['cpu']:.1f} s, "
        f"models {ov['models']:.1f} s (vocoder {ov['vocoder']:.1f}, face {ov['face']:.1f}) | x{speedup:.2f} | "
        f"overlapped total/models {ratio:.2f} | overlapped total / one-thread models "
        f"{ov['total'] / one['models']:.2f} | default here: {default} -> total/models {default_ratio:.2f} <= "
        f"{TARGETS['overhead']}: {_ok(default_ratio <= TARGETS['overhead'])} | max|Δ| frames {frame_diff} "
        f"(same file: {same_bytes}) | preset {DEFAULT_PRESET}; with {FAST_PRESET}: total {fast['total']:.1f} s, "
        f"total / one-thread models {fast['total'] / one['models']:.2f}",
        f"4 render peak RSS {size_s} (overlapped) | {short_s:g} s: {ov['peak_mib']:.0f} MiB | {long_s:g} s: "
        f"{long['peak_mib']:.0f} MiB | ratio {mem:.2f} | <= {TARGETS['memory']}: {_ok(mem <= TARGETS['memory'])}",
    ]


def row_training(threads: int, size: dict) -> list[str]:
    from bench_training import row_training as run

    return run(threads, size["train"])


def rows_av2unit(threads: int, size: dict, repeats: int) -> list[str]:
    from bench_av2unit import REFERENCE_SECONDS, TARGET_AV_SECONDS, bench_av2unit

    seconds = size["av2unit"]
    res = bench_av2unit(seconds, repeats, threads, modes=("a", "av"))
    lines = []
    for mode, name in (("a", "audio-only"), ("av", "audio-visual")):
        r = res["rows"][mode]
        per10 = r["fast_s"] * 10.0 / seconds
        target = f" | <= {TARGET_AV_SECONDS} s per 10 s: {_ok(per10 <= TARGET_AV_SECONDS)}" if mode == "av" else ""
        lines.append(
            f"6 mAV-HuBERT large {name}, {seconds:g} s | eager {r['eager_s']:.2f} s "
            f"({r['eager_s'] / seconds:.3f} s/s) | ours {r['fast_s']:.2f} s ({r['fast_s'] / seconds:.3f} s/s, "
            f"{per10:.2f} s per 10 s; fairseq {REFERENCE_SECONDS[mode]} s) | x{r['speedup']:.2f} | max|Δ| "
            f"logits {r['max_diff_logits']:.1e} | units differ {r['units_differ']}/{r['units']}{target}"
        )
    lines.append(f"6 (features: filterbank + crops for {seconds:g} s: {res['features_s']:.3f} s, not in the above)")
    return lines


def row_utut(threads: int, size: dict, repeats: int) -> list[str]:
    from bench_utut import bench_utut, format_row

    r = bench_utut(units=100, beam=5, max_len_b=size["utut"], repeats=repeats, threads=threads)
    return ["7 " + format_row(r)]


def rows_dub(threads: int, size: dict, repeats: int) -> list[str]:
    from bench_dub import bench_dub, format_rows

    r = bench_dub(size["dub"], max(1, repeats - 1), threads)
    return [
        f"8 dub {size['dub']:g} s clip, per stage (fixture mAV-HuBERT and UTUT, released-size renderer; "
        f"plain = unfused, no cache, eager, one-thread render)"
    ] + format_rows(r, "8   ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        type=int,
        nargs="+",
        default=list(range(1, 9)),
        help="rows to run (3 and 4 come from the same renders)",
    )
    parser.add_argument("--quick", action="store_true", help="every row at small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per path (default 3; --quick 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--user-cache",
        action="store_true",
        help="use the calibration cache in the user's cache "
        "folder (default: a fresh one, so backend='auto' is calibrated in this run)",
    )
    parser.add_argument("--render-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-thread", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--encoder-preset", default=DEFAULT_PRESET, help=argparse.SUPPRESS)
    for name in ("units", "video", "boxes", "out", "ckpt"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_child:
        return render_child(args)
    repeats = args.repeats or (2 if args.quick else 3)
    size = SIZES["quick" if args.quick else "full"]
    torch.set_num_threads(args.threads)
    cache = None if args.user_cache else tempfile.TemporaryDirectory(prefix="unit2av_bench_cache_")
    if cache is not None:
        os.environ["XDG_CACHE_HOME"] = cache.name  # the render children inherit it (and the calibration)
    from unit2av.runtime.calibrate import device_name

    cpu = device_name(torch.device("cpu"))
    start_load, t0, table = _load(), time.perf_counter(), []
    steps = [
        (1, lambda: row_vocoder(size, repeats)),
        (2, lambda: row_face(size, repeats)),
        (3, lambda: rows_render(args.threads, size, max(1, repeats - 1))),
        (5, lambda: row_training(args.threads, size)),
        (6, lambda: rows_av2unit(args.threads, size, repeats)),
        (7, lambda: row_utut(args.threads, size, repeats)),
        (8, lambda: rows_dub(args.threads, size, repeats)),
    ]
    for row, fn in steps:
        if row in args.only or (row == 3 and 4 in args.only):
            print(f"row {row} ... ({_load()})", flush=True)
            lines = fn()
            table += lines
            print("\n".join(lines) + f"\n  ({_load()})", flush=True)
    print(
        f"\nunit2av speed and memory | CPU {cpu} | {args.threads} threads | torch {torch.__version__} | medians of "
        f"{repeats}{' | QUICK sizes' if args.quick else ''} | {time.perf_counter() - t0:.0f} s in all | "
        f"{start_load} at the start, {_load()} at the end"
    )
    for line in table:
        print(line)


if __name__ == "__main__":
    main()
