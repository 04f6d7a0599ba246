"""``unit2av dub`` end to end on a 10 s clip, per stage: our paths against the straightforward ones (not a test).

    python benchmarks/bench_dub.py                  # 10 s clip, 2 threads, one run each
    python benchmarks/bench_dub.py --seconds 4 --repeats 2

The clip is the sample clip (``../shared/fixtures/av2av_sample``, 224x224, 2.8 s) ping-ponged to the
length asked for (frames 0..69, 68..0, 1..69, ...), its audio track looped. Models: mAV-HuBERT and
UTUT are the **fixture** checkpoints (tiny: 2 layers, width 64; written by the fixtures'
``materialise.py``); the AV2AV container has **released-size random weights** (the bundled 512-channel
vocoder config, the 36 M-parameter face renderer), as ``bench_render_memory.make_checkpoint`` writes it.
Boxes and mouth crops are made by ``dub`` itself (detector and landmark model as installed).

Two ways to run the same ``dub`` call, alternately, after one untimed run of each:
- ``ours``: as shipped (fused mAV-HuBERT, the key/value-cached decoder, ``--backend auto``, render's
  overlapped decode / model / encode);
- ``plain``: mAV-HuBERT as built (no folding, written-out attention, whole-input passes), UTUT without
  the cache, ``--backend eager`` and a one-thread render loop.
Before the timed runs the renderer is loaded once with ``backend="auto"``, so that its one-time
calibration (``unit2av.runtime.calibrate``; cached) is not counted as a dub's model loading; that
first load's seconds are printed. Reported: seconds per stage (model loading, then ``dub``'s five
stages, timed from its log lines),
the ratio, whether the source and target units are identical and max |Δ| of the speech and frames.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("UNIT2AV_SHARED", ROOT.parent / "shared"))
SAMPLE = SHARED / "fixtures" / "av2av_sample" / "TRajLqEaWhQ_00002.mp4"
STAGE_RE = re.compile(r"^\[(\d+)/\d+\] (.+)$")
sys.path.insert(0, str(HERE))


def make_clip(out: Path, seconds: float) -> Path:
    """The sample clip ping-ponged to ``seconds`` (25 fps), its audio looped; returns the path."""
    from unit2av.io.media import iter_frames, read_audio_track
    from unit2av.io.video_writer import VideoWriter
    from unit2av.pipeline.timeline import ping_pong

    frames = list(iter_frames(SAMPLE))
    wav, rate = read_audio_track(SAMPLE, 16000, trim=True)
    n = int(round(seconds * 25))
    audio = np.tile(wav, -(-int(seconds * rate) // len(wav)))[: int(seconds * rate)]
    with VideoWriter(out, frames[0].shape[1], frames[0].shape[0], audio=audio, audio_rate=rate) as w:
        for i in ping_pong(np.arange(n), len(frames)):
            w.write(frames[int(i)])
    return out


def make_models(d: Path) -> dict[str, Path]:
    """Fixture mAV-HuBERT and UTUT checkpoints, and a released-size random AV2AV container ("es")."""
    from bench_render_memory import make_checkpoint

    for fixture in ("av2unit", "utut"):
        subprocess.run(
            [sys.executable, str(SHARED / "fixtures" / fixture / "materialise.py"), str(d)],
            check=True,
            capture_output=True,
        )
    make_checkpoint(d / "unit_av_renderer.pt", lang="es")
    return {
        "av2unit_path": d / "mavhubert_tiny.pt",
        "utut_path": d / "utut_tiny.pt",
        "unit2av_path": d / "unit_av_renderer.pt",
    }


@contextlib.contextmanager
def plain_paths():
    """Within: ``dub`` loads mAV-HuBERT unfused, decodes UTUT without the cache and renders in one thread."""
    from unit2av.av2unit.api import AV2Unit, build_model
    from unit2av.devices import resolve_device
    from unit2av.io.fairseq import load_fairseq_checkpoint
    from unit2av.pipeline import dub as dub_mod

    def load_av2unit(path, device="auto", **_):
        ck = load_fairseq_checkpoint(Path(path), what="mAV-HuBERT checkpoint")
        dev = resolve_device(device)
        return AV2Unit(
            build_model(ck, manual_attention=True).to(dev), ck.dictionaries, dev, frame_batch=None, max_frames=None
        )

    def load_translator(*args, **kwargs):
        tr = real_translator(*args, **kwargs)
        tr.translate = functools.partial(tr.translate, use_cache=False)
        return tr

    saved = {k: getattr(dub_mod, k) for k in ("load_av2unit", "load_translator", "render")}
    real_translator = saved["load_translator"]
    dub_mod.load_av2unit, dub_mod.load_translator = load_av2unit, load_translator
    dub_mod.render = functools.partial(saved["render"], overlap=False)
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(dub_mod, k, v)


class _StageClock(logging.Handler):
    """Timestamps of ``dub``'s ``[i/5] stage`` log lines."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.marks: list[tuple[str, float]] = []

    def emit(self, record):
        m = STAGE_RE.match(record.getMessage())
        if m:
            self.marks.append((m.group(2), time.perf_counter()))


def run_dub(clip: Path, out: Path, models: dict[str, Path], plain: bool) -> tuple[dict[str, float], object]:
    """One ``dub`` call; returns (seconds per stage, ``DubResult``)."""
    from unit2av.pipeline.dub import dub

    logger = logging.getLogger("unit2av.pipeline.dub")
    clock, level = _StageClock(), logger.level
    logger.addHandler(clock)
    logger.setLevel(logging.INFO)
    try:
        with plain_paths() if plain else contextlib.nullcontext():
            t0 = time.perf_counter()
            res = dub(clip, out, "en", "es", device="cpu", backend="eager" if plain else "auto", **models)
            t1 = time.perf_counter()
    finally:
        logger.removeHandler(clock)
        logger.setLevel(level)
    names = ["loading models"] + [n for n, _ in clock.marks]
    times = [t0] + [t for _, t in clock.marks] + [t1]
    return {n: b - a for n, a, b in zip(names, times, times[1:])}, res


def _frames_max_diff(a: Path, b: Path) -> float:
    from unit2av.io.media import iter_frames

    return max(
        (float(np.abs(x.astype(np.int16) - y).max()) for x, y in zip(iter_frames(a), iter_frames(b))), default=0.0
    )


def bench_dub(seconds: float = 10.0, repeats: int = 1, threads: int = 2) -> dict:
    """``ours`` and ``plain`` ``dub`` runs alternately; per stage the median seconds of ``repeats``.

    Returns:
        ``{"stages": {stage: {"ours": s, "plain": s}}, "total": {...}, "same_source_units", "same_target_units",
        "max_diff_wav", "max_diff_frames" (0-255), "frames", "seconds", "repeats", "threads", "calibration_s"}``.
    """
    from unit2av.pipeline.render import load_renderer

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", seconds)
        models = make_models(tmp)
        t0 = time.perf_counter()  # backend="auto" times its paths once per machine: not part of a dub's cost
        load_renderer(models["unit2av_path"], None, "es", "cpu", "auto")
        calibration = time.perf_counter() - t0
        for kind in ("ours", "plain"):  # untimed: first imports, detector and model set-up, allocator
            run_dub(clip, tmp / f"warm_{kind}.mp4", models, kind == "plain")
        times: dict[str, dict[str, list[float]]] = {}
        results = {}
        for r in range(repeats):
            for kind in ("ours", "plain") if r % 2 == 0 else ("plain", "ours"):
                stage_s, results[kind] = run_dub(clip, tmp / f"{kind}.mp4", models, kind == "plain")
                stage_s["total"] = sum(stage_s.values())
                for name, s in stage_s.items():
                    times.setdefault(name, {"ours": [], "plain": []})[kind].append(s)
        ours, plain = results["ours"], results["plain"]
        wav_diff = (
            float(np.abs(ours.render.wav - plain.render.wav).max())
            if ours.render.wav.shape == plain.render.wav.shape
            else float("inf")
        )
        out = {
            "stages": {n: {k: statistics.median(v) for k, v in t.items()} for n, t in times.items()},
            "same_source_units": ours.source_units == plain.source_units,
            "same_target_units": ours.target_units == plain.target_units,
            "max_diff_wav": wav_diff,
            "max_diff_frames": _frames_max_diff(ours.path, plain.path),
            "frames": ours.render.num_frames,
            "seconds": seconds,
            "repeats": repeats,
            "threads": threads,
            "calibration_s": calibration,
        }
    out["total"] = out["stages"].pop("total")
    return out


def format_rows(r: dict, prefix: str = "") -> list[str]:
    """One line per stage and a total line."""
    lines = []
    for name, t in [*r["stages"].items(), ("total", r["total"])]:
        lines.append(
            f"{prefix}{name:<15} | plain {t['plain']:7.2f} s | ours {t['ours']:7.2f} s | "
            f"x{t['plain'] / max(t['ours'], 1e-9):.2f}"
        )
    lines.append(
        f"{prefix}same source units: {r['same_source_units']} | same target units: {r['same_target_units']} "
        f"| max|Δ| speech {r['max_diff_wav']:.1e} | max|Δ| frames {r['max_diff_frames']:.0f}/255 | "
        f"{r['frames']} frames | loading the renderer the first time (calibrating backend auto, "
        f"or reading its cache) took {r['calibration_s']:.1f} s before these runs"
    )
    return lines


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (default: 10)")
    p.add_argument("--repeats", type=int, default=1, help="runs per way, alternating (default: 1)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    a = p.parse_args(argv)
    r = bench_dub(a.seconds, a.repeats, a.threads)
    print(
        f"dub, {a.seconds:g} s clip, {a.threads} threads, medians of {a.repeats}; load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print("\n".join(format_rows(r)))
    return r


if __name__ == "__main__":
    main()
