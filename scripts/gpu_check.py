"""GPU check: the CUDA paths against the CPU, in one run of a few minutes, printed as one table.

    python scripts/gpu_check.py [--out DIR] [--rows synth,render,train,ddp,bench] [--quick]

Rows (each a product command or library function, never a copy of one):
- ``synth``: the bundled vocoder on CUDA in fp32 and under AMP (float16 autocast) vs the CPU.
- ``render``: ``unit2av render`` of the sample clip with the bundled models on CUDA (fp32, AMP)
  vs the CPU: decoded frames and audio.
- ``train``: a few ``train-unit2a`` and ``train-face`` steps with ``--amp`` on CUDA (losses finite,
  checkpoints written).
- ``ddp``: ``torchrun --nproc_per_node 1 ... train-unit2a`` (NCCL on CUDA, gloo on the CPU).
- ``stages``: ``unit2av av2unit`` (audio+video) and ``unit2av translate`` with the fixture
  mAV-HuBERT and UTUT checkpoints on CUDA vs the CPU (the same unit strings).
- ``bench``: the GPU rows of the benchmarks (vocoder RTF; UTUT mBART-large beam-5 ms per step).

Without CUDA every row still runs its CPU half (the references, training and DDP on the CPU), so
the script is exercised by CI; the CUDA halves print ``skipped: no CUDA``. Exit code 1 when a row
that ran failed its tolerance.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("UNIT2AV_SHARED", ROOT.parent / "shared"))
SAMPLE = SHARED / "fixtures" / "av2av_sample"
WAV_TOL = 1e-3  # max |Δ| of fp32 CUDA speech vs the CPU (float32 convolutions in another order)
AMP_SNR_DB = 20.0  # AMP speech must stay this far above its difference from the CPU output
FRAME_TOL = 3.0  # mean |Δ| grey levels of decoded frames (x264 of slightly different pixels)
TRAIN_WIDTH = 64  # upsample_initial_channel of the training rows' vocoder
TRAIN_SEGMENT = 6400  # samples per training segment
TRAIN_DISC_WIDTH = 0.0625  # discriminators at 1/16 of HiFi-GAN's channels
ROWS = ("synth", "render", "train", "ddp", "stages", "bench")


def cli(*args: str, env: dict | None = None, launcher: list[str] | None = None) -> tuple[int, str]:
    """Run ``unit2av ARGS`` in a fresh process; returns (exit code, last lines of output)."""
    cmd = (launcher or [sys.executable, "-m"]) + ["unit2av.cli", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-2:])
    return proc.returncode, tail


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    n = min(len(ref), len(out))
    err = float(np.sum((ref[:n] - out[:n]) ** 2)) + 1e-20
    return 10 * np.log10(float(np.sum(ref[:n] ** 2)) / err)


def amp(device: torch.device, on: bool):
    return torch.autocast(device.type, dtype=torch.float16) if on else nullcontext()


def check_synth(rows: list, cuda: bool) -> None:
    from unit2av.demo.video import load_default_models

    vocoder, _ = load_default_models("cpu")
    code = torch.randint(0, vocoder.config.num_embeddings, (1, 250), generator=torch.Generator().manual_seed(0))
    spkr = torch.nn.functional.normalize(torch.randn(1, 1, vocoder.config.embedder_dim), dim=-1)
    with torch.inference_mode():
        ref = vocoder(code=code, spkr=spkr, dur_prediction=False)[0].flatten().numpy()
    rows.append(("synth", "cpu fp32 (reference)", f"{len(ref)} samples", "ok"))
    if not cuda:
        rows.append(("synth", "cuda fp32 / amp", "-", "skipped: no CUDA"))
        return
    dev = torch.device("cuda")
    model = vocoder.to(dev)
    for label, use_amp in (("cuda fp32", False), ("cuda amp", True)):
        with torch.inference_mode(), amp(dev, use_amp):
            out = model(code=code.to(dev), spkr=spkr.to(dev), dur_prediction=False)[0].float().flatten().cpu().numpy()
        if use_amp:
            snr = snr_db(ref, out)
            rows.append(("synth", label, f"SNR vs cpu {snr:.1f} dB", "ok" if snr >= AMP_SNR_DB else "FAIL"))
        else:
            diff = float(np.abs(ref - out).max())
            rows.append(("synth", label, f"max |Δ| {diff:.2e}", "ok" if diff <= WAV_TOL else "FAIL"))


def _render(out: Path, device: str, use_amp: bool, work: Path) -> tuple[np.ndarray, np.ndarray]:
    from unit2av import render
    from unit2av.demo.video import asset
    from unit2av.io.media import iter_frames, read_audio_track

    units, container = work / "units.txt", work / "demo_av2av.pt"
    if not container.exists():  # the bundled demo models packed as an AV2AV container, by `unit2av pack`
        rng = np.random.default_rng(0)
        units.write_text(" ".join(str(u) for u in rng.integers(0, 100, 120)))
        rc, tail = cli(
            "pack",
            "--vocoder",
            f"en={asset('vocoder.pt')}",
            "--face",
            str(asset("face_renderer.pt")),
            "--out",
            str(container),
        )
        if rc:
            raise RuntimeError(f"unit2av pack failed: {tail}")
    dev = torch.device(device)
    with amp(dev, use_amp):
        render(
            units,
            SAMPLE / "TRajLqEaWhQ_00002.mp4",
            SAMPLE / "TRajLqEaWhQ_00002.bbox.pkl",
            out,
            "en",
            container,
            device=device,
        )
    frames = np.stack([f.astype(np.float32) for f in iter_frames(out)])
    wav, _ = read_audio_track(out, 16000)
    return frames, np.asarray(wav, dtype=np.float32)


def check_render(rows: list, cuda: bool, work: Path) -> None:
    t = time.time()
    ref_frames, ref_wav = _render(work / "cpu.mp4", "cpu", False, work)
    rows.append(("render", "cpu fp32 (reference)", f"{len(ref_frames)} frames in {time.time() - t:.1f} s", "ok"))
    if not cuda:
        rows.append(("render", "cuda fp32 / amp", "-", "skipped: no CUDA"))
        return
    for label, use_amp in (("cuda fp32", False), ("cuda amp", True)):
        t = time.time()
        frames, wav = _render(work / f"{label.replace(' ', '_')}.mp4", "cuda", use_amp, work)
        same = frames.shape == ref_frames.shape
        diff = float(np.abs(frames - ref_frames).mean()) if same else float("inf")
        snr = snr_db(ref_wav, wav)
        ok = same and diff <= FRAME_TOL and snr >= AMP_SNR_DB
        rows.append(
            (
                "render",
                label,
                f"frames mean |Δ| {diff:.2f}, audio SNR {snr:.1f} dB, {time.time() - t:.1f} s",
                "ok" if ok else "FAIL",
            )
        )


def _vocoder_data(work: Path) -> tuple[Path, Path]:
    """A tiny espeak-ng corpus with units and a manifest, through the product's commands."""
    from unit2av.demo.corpus import make_corpus
    from unit2av.demo.train import demo_config
    from unit2av.vocoder.config import save_config

    data = work / "data"
    if (data / "train.jsonl").exists():
        return data / "config.json", data / "train.jsonl"
    make_corpus(data / "corpus", sentences_per_voice=2)
    for args in (
        (
            "units",
            "--no-progress",
            "fit",
            "--audio_root",
            str(data / "corpus"),
            "--k",
            "16",
            "--out",
            str(data / "km.pt"),
        ),
        (
            "units",
            "--no-progress",
            "extract",
            "--kmeans",
            str(data / "km.pt"),
            "--audio_root",
            str(data / "corpus"),
            "--out_root",
            str(data / "units"),
            "--speaker",
        ),
        (
            "manifest",
            "--audio_root",
            str(data / "corpus"),
            "--unit_root",
            str(data / "units"),
            "--output_file",
            str(data / "train.jsonl"),
        ),
    ):
        rc, tail = cli(*args)
        if rc:
            raise RuntimeError(f"unit2av {args[0]} failed: {tail}")
    cfg = demo_config(data, k=16)  # the bundled demo layout, narrowed so that a step takes about a second
    cfg.input_validation_file = str(data / "train.jsonl")
    cfg.batch_size, cfg.upsample_initial_channel, cfg.segment_size = 2, TRAIN_WIDTH, TRAIN_SEGMENT
    save_config(cfg, data / "config.json")
    return data / "config.json", data / "train.jsonl"


def _train_unit2a(work: Path, name: str, device: str, extra: tuple = (), launcher=None) -> tuple[int, str]:
    config, manifest = _vocoder_data(work)
    return cli(
        "train-unit2a",
        "--config",
        str(config),
        "--checkpoint_path",
        str(work / name),
        "--input_training_file",
        str(manifest),
        "--input_validation_file",
        str(manifest),
        "--training_steps",
        "3",
        "--validation_interval",
        "3",
        "--checkpoint_interval",
        "3",
        "--disc_width",
        str(TRAIN_DISC_WIDTH),
        "--device",
        device,
        *extra,
        launcher=launcher,
    )


def check_train(rows: list, cuda: bool, work: Path) -> None:
    device = "cuda" if cuda else "cpu"
    extra = ("--amp",) if cuda else ()
    rc, tail = _train_unit2a(work, f"cp_unit2a_{device}", device, extra)
    label = f"train-unit2a 3 steps {device}{' amp' if cuda else ''}"
    rows.append(
        ("train", label, tail[-90:], "ok" if rc == 0 and list((work / f"cp_unit2a_{device}").glob("g_*")) else "FAIL")
    )
    clips = _face_clips(work)
    rc, tail = cli(
        "train-face",
        "--checkpoint_path",
        str(work / f"cp_face_{device}"),
        "--input_training_file",
        str(clips),
        "--input_validation_file",
        str(clips),
        "--width",
        "32",
        "--training_steps",
        "3",
        "--validation_interval",
        "3",
        "--checkpoint_interval",
        "3",
        "--batch_size",
        "2",
        "--device",
        device,
        *extra,
    )
    label = f"train-face 3 steps {device}{' amp' if cuda else ''}"
    rows.append(("train", label, tail[-90:], "ok" if rc == 0 else "FAIL"))


def _face_clips(work: Path) -> Path:
    from unit2av.demo.talking_face import make_talking_faces

    _vocoder_data(work)
    clips = work / "clips"
    if not (clips / "manifest.jsonl").exists():
        wavs = sorted((work / "data" / "corpus").rglob("*.wav"))[:4]
        make_talking_faces(wavs, clips, work / "data" / "km.pt")
    return clips / "manifest.jsonl"


def check_ddp(rows: list, cuda: bool, work: Path) -> None:
    torchrun = shutil.which("torchrun")
    launcher = [torchrun, "--standalone", "--nproc_per_node", "1", "-m"] if torchrun else None
    if launcher is None:
        rows.append(("ddp", "torchrun 1 process", "-", "FAIL: torchrun not found"))
        return
    device = "cuda" if cuda else "cpu"
    rc, tail = _train_unit2a(work, f"cp_ddp_{device}", device, launcher=launcher)
    rows.append(
        (
            "ddp",
            f"torchrun --nproc_per_node 1 train-unit2a ({'nccl' if cuda else 'gloo'})",
            tail[-90:],
            "ok" if rc == 0 else "FAIL",
        )
    )


def _materialise(fixture: str, work: Path) -> Path:
    """Write a fixture's checkpoint with its own ``materialise.py``; its path."""
    out = work / f"fixture_{fixture}"
    script = SHARED / "fixtures" / fixture / "materialise.py"
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    return next(out.glob("*.pt"))


def check_stages(rows: list, cuda: bool, work: Path) -> None:
    """av2unit and translate on the fixture checkpoints: the CUDA unit strings equal the CPU's."""
    av_ckpt, utut_ckpt = _materialise("av2unit", work), _materialise("utut", work)
    video, lip = SAMPLE / "TRajLqEaWhQ_00002.mp4", SAMPLE / "TRajLqEaWhQ_00002.lip.mp4"
    devices = ("cpu", "cuda") if cuda else ("cpu",)
    outs = {}
    for dev in devices:
        units = work / f"stages_{dev}.units.txt"
        rc, tail = cli(
            "av2unit", "--in-vid-path", str(video), "--in-lip-path", str(lip), "--out-unit-path", str(units),
            "--av2unit-path", str(av_ckpt), "--device", dev,
        )  # fmt: skip
        if rc:
            rows.append(("stages", f"av2unit {dev}", tail[:100], "FAIL"))
            return
        target = work / f"stages_{dev}.es.txt"
        rc, tail = cli(
            "translate", "--in-unit-path", str(units), "--out-unit-path", str(target), "--utut-path", str(utut_ckpt),
            "--utut-dict", str(SHARED / "fixtures" / "utut" / "dict.txt"), "--src-lang", "en", "--tgt-lang", "es",
            "--device", dev,
        )  # fmt: skip
        if rc:
            rows.append(("stages", f"translate {dev}", tail[:100], "FAIL"))
            return
        outs[dev] = (units.read_text().split(), target.read_text().split())
    src, tgt = outs["cpu"]
    rows.append(("stages", "cpu (reference)", f"{len(src)} source units -> {len(tgt)} target units", "ok"))
    if not cuda:
        rows.append(("stages", "cuda av2unit / translate", "-", "skipped: no CUDA"))
        return
    for i, name in enumerate(("av2unit", "translate")):
        a, b = outs["cpu"][i], outs["cuda"][i]
        differ = sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
        rows.append(("stages", f"cuda {name}", f"{differ} of {len(a)} units differ", "ok" if differ == 0 else "FAIL"))


def _utut_ms_per_step(dev: torch.device) -> float:
    """Beam-5 decoding of 100 random units with mBART-large random weights on ``dev``: ms per step."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_utut import make_translator

    tr = make_translator(0, pack_rows=None)
    tr.model.to(dev)
    tr.device = dev
    src = list(range(1, 101))
    times = []
    for _ in range(3):
        torch.cuda.synchronize()
        t = time.perf_counter()
        hyps = tr.translate(src, "en", "es", beam=5, nbest=5, max_len_b=50)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / max(len(h.tokens) for h in hyps))
    return float(np.median(times[1:])) * 1e3


def check_bench(rows: list, cuda: bool) -> None:
    if not cuda:
        rows.append(("bench", "GPU rows", "-", "skipped: no CUDA"))
        return
    from unit2av.demo.video import load_default_models

    dev = torch.device("cuda")
    vocoder, face = load_default_models(dev)
    code = torch.randint(0, vocoder.config.num_embeddings, (1, 500), device=dev)
    spkr = torch.nn.functional.normalize(torch.randn(1, 1, vocoder.config.embedder_dim, device=dev), dim=-1)
    with torch.inference_mode():
        for use_amp in (False, True):
            times = []
            for _ in range(4):
                torch.cuda.synchronize()
                t = time.perf_counter()
                with amp(dev, use_amp):
                    vocoder(code=code, spkr=spkr, dur_prediction=False)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            rtf = float(np.median(times[1:])) / 10.0
            rows.append(("bench", f"vocoder 10 s {'amp' if use_amp else 'fp32'}", f"RTF {rtf:.4f}", "ok"))
    ms = _utut_ms_per_step(dev)
    rows.append(("bench", "UTUT mBART-large beam 5 (incl. encoder)", f"{ms:.1f} ms/step", "ok"))
    rows.append(("bench", "gpu", torch.cuda.get_device_name(0), "ok"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    args = ap.parse_args(argv)
    chosen = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(chosen) - set(ROWS))
    if unknown:
        ap.error(f"unknown rows: {', '.join(unknown)}")
    cuda = torch.cuda.is_available()
    work = Path(args.out or tempfile.mkdtemp(prefix="unit2av_gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str, str]] = []
    checks = {
        "synth": lambda: check_synth(rows, cuda),
        "render": lambda: check_render(rows, cuda, work),
        "train": lambda: check_train(rows, cuda, work),
        "ddp": lambda: check_ddp(rows, cuda, work),
        "stages": lambda: check_stages(rows, cuda, work),
        "bench": lambda: check_bench(rows, cuda),
    }
    t0 = time.time()
    for name in chosen:
        try:
            checks[name]()
        except Exception as e:  # one failing row must not hide the others
            rows.append((name, "error", f"{type(e).__name__}: {e}"[:120], "FAIL"))
    device = torch.cuda.get_device_name(0) if cuda else "no CUDA device"
    print(f"unit2av GPU check on {device}, torch {torch.__version__}, {time.time() - t0:.0f} s")
    widths = [max(len(r[i]) for r in rows + [("row", "check", "result", "status")]) for i in range(4)]
    for r in [("row", "check", "result", "status")] + rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    return 1 if any(r[3].startswith("FAIL") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
