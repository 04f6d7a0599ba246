"""Speed and memory of unit2av on this machine: one table, every figure measured in this run.

    python benchmarks/bench_speed.py                 # the whole table (about 6-9 minutes on 2 idle cores)
    python benchmarks/bench_speed.py --only 1 2      # some rows
    python benchmarks/bench_speed.py --repeats 5 --threads 4

Rows (GitHub issue 6):
1. vocoder, bundled AV2AV config (512 channels), 10 s of units: eager (weight norm removed,
   ``torch.inference_mode``) vs ``unit2av.runtime.fast.fast_vocoder``; seconds, RTF, speed-up, max |Δ|.
2. face renderer (released size), 250 frames in render's batches: eager vs ``fast_face_renderer``.
3. ``render`` end-to-end on a 10 s 1280x720 clip: total seconds vs the time spent inside the models.
4. peak RSS of ``render`` for 10 s and 60 s 1280x720 clips (each in its own process).
5. ``train-unit2a`` steps at a small config: the reference's data path (items loaded and featurised
   in the training process, no cache) vs ours (``make_loaders``: cached items, a prefetching worker);
   seconds per step and the share of it spent waiting for the next batch.
Eager and fast runs are interleaved and each figure is the median over ``--repeats`` runs.
Weights are random (released layouts): speed and memory do not depend on their values.
"""

from __future__ import annotations

import argparse
import json
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

SPEECH_SECONDS = 10.0  # row 1: seconds of speech voiced
FACE_FRAMES = 250  # row 2: frames rendered (10 s at 25 fps)
CLIP_SECONDS = (10.0, 60.0)  # rows 3-4: synthetic clip lengths
CLIP_SIZE = (1280, 720)  # rows 3-4: width, height
TRAIN_STEPS = 10  # row 5: timed steps per data path (after WARMUP_STEPS)
WARMUP_STEPS = 2  # row 5: untimed first steps (allocations, worker start-up)
TRAIN_DISC_WIDTH = 0.125  # row 5: discriminators at 1/8 of HiFi-GAN's channels
# Row 5's small vocoder (the fields that differ from the bundled AV2AV config).
SMALL_CONFIG = {"upsample_initial_channel": 64, "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3]],
                "num_embeddings": 100, "embedding_dim": 32, "model_in_dim": 64, "segment_size": 6400,
                "batch_size": 4, "num_workers": 1,
                "dur_predictor_params": {"encoder_embed_dim": 32, "var_pred_hidden_dim": 32,
                                         "var_pred_kernel_size": 3, "var_pred_dropout": 0.1}}
TARGETS = {"rtf": 0.13, "voc_speedup": 2.0, "fps": 13.0, "face_speedup": 1.5, "overhead": 1.15, "memory": 1.3}


def timed(fn, *args) -> tuple[float, object]:
    """(wall seconds, result) of one call under ``torch.inference_mode``."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = fn(*args)
        return time.perf_counter() - t0, out


def interleaved(eager, fast, args: tuple, repeats: int) -> tuple[float, float, float]:
    """Median seconds of ``eager(*args)`` and ``fast(*args)`` run alternately, and max |Δ| of their outputs."""
    timed(eager, *args), timed(fast, *args)  # warm-up: oneDNN primitive caches, allocator
    te, tf, diff = [], [], 0.0
    for _ in range(repeats):
        t, a = timed(eager, *args)
        te.append(t)
        t, b = timed(fast, *args)
        tf.append(t)
        diff = max(diff, float((a - b).abs().max()))
    return statistics.median(te), statistics.median(tf), diff


def row_vocoder(repeats: int) -> list[str]:
    from unit2av.runtime.fast import fast_vocoder
    from unit2av.vocoder.config import load_config
    from unit2av.vocoder.model import UnitVocoder

    cfg = load_config(None)
    torch.manual_seed(0)
    model = UnitVocoder.from_config(cfg).eval()
    model.remove_weight_norm()
    fast = fast_vocoder(model)
    n = int(SPEECH_SECONDS * cfg.sampling_rate / cfg.code_hop_size)
    code, spkr = torch.randint(0, cfg.num_embeddings, (1, n)), torch.randn(1, 1, cfg.embedder_dim)
    te, tf, diff = interleaved(lambda: model(code=code, spkr=spkr)[0], lambda: fast(code=code, spkr=spkr)[0], (),
                               repeats)
    rtf = tf / SPEECH_SECONDS
    return [f"1 vocoder 10 s (AV2AV, 512 ch) | eager {te:.2f} s (RTF {te / SPEECH_SECONDS:.3f}) | fast {tf:.2f} s "
            f"(RTF {rtf:.3f}) | x{te / tf:.2f} | max|Δ| {diff:.1e} | "
            f"RTF<={TARGETS['rtf']}: {_ok(rtf <= TARGETS['rtf'])}, x>={TARGETS['voc_speedup']}: "
            f"{_ok(te / tf >= TARGETS['voc_speedup'])}"]


def row_face(repeats: int) -> list[str]:
    from unit2av.face.model import FRAMES_PER_WINDOW, UNITS_PER_WINDOW, FaceRenderer
    from unit2av.pipeline.render import DEFAULT_BATCH_FRAMES
    from unit2av.runtime.fast import fast_face_renderer

    torch.manual_seed(0)
    model = FaceRenderer().eval()
    fast = fast_face_renderer(model)
    windows = FACE_FRAMES // FRAMES_PER_WINDOW
    units = torch.randint(0, model.num_embeddings, (windows, UNITS_PER_WINDOW))
    faces = torch.rand(FACE_FRAMES, 6, 96, 96)
    per = DEFAULT_BATCH_FRAMES // FRAMES_PER_WINDOW  # windows per forward, as render batches them

    def run(m):
        return torch.cat([m(units[w:w + per], faces[w * FRAMES_PER_WINDOW:(w + per) * FRAMES_PER_WINDOW])
                          for w in range(0, windows, per)])

    te, tf, diff = interleaved(lambda: run(model), lambda: run(fast), (), repeats)
    fe, ff = FACE_FRAMES / te, FACE_FRAMES / tf
    return [f"2 face renderer {FACE_FRAMES} frames (batch {per * FRAMES_PER_WINDOW}) | eager {fe:.1f} fps | "
            f"fast {ff:.1f} fps | x{te / tf:.2f} | max|Δ| {diff:.1e} | fps>={TARGETS['fps']:g}: "
            f"{_ok(ff >= TARGETS['fps'])}, x>={TARGETS['face_speedup']}: {_ok(te / tf >= TARGETS['face_speedup'])}"]


def render_child(args: argparse.Namespace) -> None:
    """Render one clip with the fast models; print total / model seconds and peak RSS as JSON."""
    from unit2av import load_renderer, render
    from unit2av.runtime.fast import FastFaceRenderer, FastVocoder, fast_face_renderer, fast_vocoder

    torch.set_num_threads(args.threads)
    vocoder, face = load_renderer(args.ckpt, None, "en", device="cpu")
    vocoder = vocoder if isinstance(vocoder, FastVocoder) else fast_vocoder(vocoder)
    face = face if isinstance(face, FastFaceRenderer) else fast_face_renderer(face)
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
    t0 = time.perf_counter()
    res = render(args.units, args.video, args.boxes, args.out, "en", args.ckpt, dur_prediction=False,
                 models=(vocoder, face))
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB -> MiB
    print(json.dumps({"total": total, "peak_mib": peak, "frames": res.num_frames, **spent}))


def rows_render(threads: int, clips: tuple[float, float] = CLIP_SECONDS) -> list[str]:
    from unit2av.io.safe import dump_plain_pickle, save_torch

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_checkpoint(tmp / "ckpt.pt")
        for seconds in clips:
            boxes = make_clip(tmp / f"clip{seconds:g}.mp4", seconds, *CLIP_SIZE)
            dump_plain_pickle(boxes, tmp / f"clip{seconds:g}.pkl")
            rng = np.random.default_rng(0)
            save_torch({"code": torch.from_numpy(rng.integers(0, 1000, int(seconds * UNITS_PER_SECOND))),
                        "spkr": torch.from_numpy(rng.standard_normal(256).astype(np.float32))},
                       tmp / f"units{seconds:g}.pt")
            cmd = [sys.executable, __file__, "--render-child", "--threads", str(threads), "--ckpt",
                   str(tmp / "ckpt.pt"), "--units", str(tmp / f"units{seconds:g}.pt"), "--video",
                   str(tmp / f"clip{seconds:g}.mp4"), "--boxes", str(tmp / f"clip{seconds:g}.pkl"), "--out",
                   str(tmp / f"out{seconds:g}.mp4")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"render of the {seconds:g} s clip failed:\n{proc.stderr[-3000:]}")
            results[seconds] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  (rendered the {seconds:g} s clip: {results[seconds]})", flush=True)
    short, long = (results[s] for s in clips)
    models = short["vocoder"] + short["face"]
    ratio = short["total"] / models
    mem = long["peak_mib"] / short["peak_mib"]
    size = f"{CLIP_SIZE[0]}x{CLIP_SIZE[1]}"
    return [f"3 render {clips[0]:g} s {size} ({short['frames']} frames) | total {short['total']:.1f} s | "
            f"models {models:.1f} s (vocoder {short['vocoder']:.1f}, face {short['face']:.1f}) | "
            f"total/models {ratio:.2f} | <= {TARGETS['overhead']}: {_ok(ratio <= TARGETS['overhead'])}",
            f"4 render peak RSS {size} | {clips[0]:g} s: {short['peak_mib']:.0f} MiB | "
            f"{clips[1]:g} s: {long['peak_mib']:.0f} MiB | ratio {mem:.2f} | <= {TARGETS['memory']}: "
            f"{_ok(mem <= TARGETS['memory'])}"]


def _steps(state, loader, n: int) -> tuple[list[float], list[float]]:
    """Seconds waiting for each batch and seconds per whole step (wait + ``train_step``), after a warm-up."""
    from unit2av.vocoder.train import train_step

    it, waits, totals = iter(loader), [], []
    for i in range(WARMUP_STEPS + n):
        t0 = time.perf_counter()
        batch = next(it, None)
        if batch is None:  # epoch end: start the next one
            it = iter(loader)
            batch = next(it)
        t1 = time.perf_counter()
        train_step(state, batch)
        if i >= WARMUP_STEPS:
            waits.append(t1 - t0)
            totals.append(time.perf_counter() - t0)
    return waits, totals


def _small_corpus(root: Path) -> Path:
    """espeak-ng speech with random unit files (training speed does not depend on the ids); the manifest."""
    from unit2av.demo.corpus import make_corpus
    from unit2av.io.safe import save_torch
    from unit2av.vocoder.manifest import ManifestEntry, write_manifest

    rng = np.random.default_rng(0)
    entries = []
    for r in make_corpus(root / "audio", sentences_per_voice=4):
        unit = root / "units" / f"{r['utt_id']}.pt"
        save_torch({"code": torch.from_numpy(rng.integers(0, SMALL_CONFIG["num_embeddings"], r["num_samples"] // 320)),
                    "spkr": torch.from_numpy(rng.standard_normal(256).astype(np.float32))}, unit)
        entries.append(ManifestEntry(audio=str(r["path"]), unit_path=str(unit), speaker=r["speaker"]))
    write_manifest(entries, root / "train.jsonl")
    return root / "train.jsonl"


def row_training(threads: int) -> list[str]:
    from torch.utils.data import DataLoader

    from unit2av.vocoder.config import config_from_dict, load_config
    from unit2av.vocoder.data import UnitAudioDataset
    from unit2av.vocoder.manifest import read_manifest
    from unit2av.vocoder.state import Dist, TrainOptions, build_state
    from unit2av.vocoder.train import make_loaders

    cfg = config_from_dict({**load_config(None).to_dict(), **SMALL_CONFIG}, "benchmark small config")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = _small_corpus(Path(tmp))

        def reference(state):  # every item read and featurised in the training process, nothing cached
            data = UnitAudioDataset(read_manifest(manifest), cfg, segment=True, cache_mb=0)
            return DataLoader(data, batch_size=cfg.batch_size, shuffle=True, num_workers=0, drop_last=True)

        def ours(state):
            return make_loaders(state, manifest, None)[0]

        out = {}
        for name, make in (("reference", reference), ("ours", ours)):
            opts = TrainOptions(checkpoint_path=str(Path(tmp) / name), device="cpu", validation_interval=0,
                                disc_width=TRAIN_DISC_WIDTH)
            state = build_state(cfg, opts, Dist())
            waits, totals = _steps(state, make(state), TRAIN_STEPS)
            out[name] = (statistics.median(totals), sum(waits) / sum(totals))
    (tr, wr), (to, wo) = out["reference"], out["ours"]
    return [f"5 train-unit2a step (64 ch, batch {cfg.batch_size}, disc x{TRAIN_DISC_WIDTH}) | reference data path "
            f"{tr:.3f} s/step, {100 * wr:.0f}% waiting | ours ({cfg.num_workers} worker, cache) {to:.3f} s/step, "
            f"{100 * wo:.0f}% waiting | x{tr / to:.2f} | no slower: {_ok(to <= tr)}"]


def _ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, nargs="+", default=[1, 2, 3, 4, 5], help="rows to run (3 and 4 "
                        "come from the same renders)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (medians)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--clips", type=float, nargs=2, default=list(CLIP_SECONDS), help="rows 3-4: short and "
                        "long clip seconds")
    parser.add_argument("--render-child", action="store_true", help=argparse.SUPPRESS)
    for name in ("units", "video", "boxes", "out", "ckpt"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render_child:
        return render_child(args)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    table = []
    steps = [(1, lambda: row_vocoder(args.repeats)), (2, lambda: row_face(args.repeats)),
             (3, lambda: rows_render(args.threads, tuple(args.clips))), (5, lambda: row_training(args.threads))]
    for row, fn in steps:
        if row in args.only or (row == 3 and 4 in args.only):
            print(f"row {row} ...", flush=True)
            table += fn()
            print(table[-1], flush=True)
    print(f"\nunit2av speed and memory ({args.threads} threads, medians of {args.repeats}; "
          f"{time.perf_counter() - t0:.0f} s in all)")
    for line in table:
        print(line)


if __name__ == "__main__":
    main()
