"""Throughput of ``unit2av batch`` against the ``render`` command in a loop (not a test).

    python benchmarks/bench_batch.py                    # 16 short jobs, the bundled demo models
    python benchmarks/bench_batch.py --models reference # released-size face renderer (36 M parameters)
    python benchmarks/bench_batch.py --jobs 8 --units 20

Every job dubs the sample clip (``../shared/fixtures/av2av_sample``) with its own short units file,
alternating two languages of one AV2AV container. Four ways of running the same jobs:

1. ``unit2av render`` in a shell loop: one process per job, so models (and Python, torch) load per job;
2. ``render()`` in one process without ``models=``: models load per job, imports once;
3. ``unit2av batch --workers 1``: one worker, models loaded once and reused;
4. ``unit2av batch --workers 2``.

Prints jobs per minute for each, the ratio batch (1 worker) / command loop, and the model loads.
Wall-clock figures: run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("UNIT2AV_SHARED", ROOT.parent / "shared")) / "fixtures" / "av2av_sample"
VIDEO, BBOX = SAMPLE / "TRajLqEaWhQ_00002.mp4", SAMPLE / "TRajLqEaWhQ_00002.bbox.pkl"
REFERENCE = SAMPLE.parent / "reference"


def make_inputs(d: Path, models: str, jobs: int, units: int) -> tuple[list[dict], list[str]]:
    """The container, config and unit files; returns the job dicts and the two languages."""
    import torch

    from unit2av.demo.video import asset

    if models == "demo":
        from unit2av.io.checkpoints import open_container
        from unit2av.pipeline.pack import pack

        (d / "vocoder.json").write_text(json.dumps(open_container(asset("vocoder.pt"))["config"]))
        pack({"aa": asset("vocoder.pt"), "bb": asset("vocoder.pt")}, asset("face_renderer.pt"), d / "av.pt")
        langs, vocab = ["aa", "bb"], 100
    else:
        subprocess.run([sys.executable, str(REFERENCE / "materialise.py"), str(d)], check=True, capture_output=True)
        (d / "av.pt").symlink_to(d / "unit2av_ref.pt")
        (d / "vocoder.json").write_text((REFERENCE / "config.json").read_text())
        langs, vocab = sorted(torch.load(d / "av.pt", weights_only=True)["audio"]), 1000
    gen = torch.Generator().manual_seed(0)
    out = []
    for i in range(jobs):
        (d / f"u{i}.txt").write_text(" ".join(map(str, torch.randint(0, vocab, (units,), generator=gen).tolist())))
        out.append(
            {
                "command": "render",
                "in_unit_path": f"u{i}.txt",
                "in_vid_path": str(VIDEO),
                "in_bbox_path": str(BBOX),
                "tgt_lang": langs[i % 2],
                "unit2av_path": "av.pt",
                "config": "vocoder.json",
                "device": "cpu",
                "out_vid_path": f"job{i:02d}.mp4",
            }
        )
    (d / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in out))
    return out, langs


def command_loop(d: Path, jobs: list[dict], out: Path) -> float:
    """Seconds for ``unit2av render`` run once per job (a new process each time)."""
    t0 = time.perf_counter()
    for j in jobs:
        argv = [
            sys.executable,
            "-m",
            "unit2av.cli",
            "-q",
            "render",
            "--in-unit-path",
            str(d / j["in_unit_path"]),
            "--in-vid-path",
            j["in_vid_path"],
            "--in-bbox-path",
            j["in_bbox_path"],
            "--tgt-lang",
            j["tgt_lang"],
            "--unit2av-path",
            str(d / "av.pt"),
            "--config",
            str(d / "vocoder.json"),
            "--device",
            "cpu",
            "--out-vid-path",
            str(out / j["out_vid_path"]),
        ]
        subprocess.run(argv, check=True, capture_output=True, env=dict(os.environ, TQDM_DISABLE="1"))
    return time.perf_counter() - t0


def function_loop(d: Path, jobs: list[dict], out: Path) -> float:
    """Seconds for ``render()`` per job in this process, loading the models every time."""
    from unit2av.pipeline.render import render

    t0 = time.perf_counter()
    for j in jobs:
        render(
            d / j["in_unit_path"],
            j["in_vid_path"],
            j["in_bbox_path"],
            out / j["out_vid_path"],
            j["tgt_lang"],
            d / "av.pt",
            config=d / "vocoder.json",
            device="cpu",
        )
    return time.perf_counter() - t0


def batch(d: Path, out: Path, workers: int) -> float:
    """Seconds for ``unit2av batch`` with ``workers`` local workers (worker start-up included)."""
    from unit2av.batch import run

    t0 = time.perf_counter()
    result = run(d / "jobs.jsonl", out, workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    assert result.counts["done"] == len(result.entries), result.summary
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models",
        choices=("demo", "reference"),
        default="demo",
        help="demo: bundled demo models (small); reference: the fixture's released-size face renderer",
    )
    p.add_argument("--jobs", type=int, default=16)
    p.add_argument("--units", type=int, default=15, help="units per job (50 per second of speech)")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the loops (batch: cores / workers)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TQDM_DISABLE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        jobs, langs = make_inputs(d, args.models, args.jobs, args.units)
        rows = [
            ("render command in a loop (process + model load per job)", command_loop(d, jobs, d / "loop")),
            ("render() in a loop (model load per job, one process)", function_loop(d, jobs, d / "func")),
            ("unit2av batch --workers 1 (models loaded once)", batch(d, d / "b1", 1)),
            ("unit2av batch --workers 2", batch(d, d / "b2", 2)),
        ]
    n = len(jobs)
    print(f"{n} jobs, {args.units} units each, {args.models} models, languages {langs}, {os.cpu_count()} cores")
    for name, seconds in rows:
        print(f"  {name:58s} {seconds:7.1f} s  {60 * n / seconds:6.1f} jobs/min")
    loop, _, one, two = (s for _, s in rows)
    print(f"batch (1 worker) / command loop: {loop / one:.2f}x jobs per minute")
    print(f"batch (1 worker) / render() loop: {rows[1][1] / one:.2f}x; 2 workers / 1 worker: {one / two:.2f}x")


if __name__ == "__main__":
    main()
