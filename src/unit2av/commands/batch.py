"""Run many jobs (render, synth, ...) from a JSON-lines job file, resumably, on this machine or a Ray cluster.

Example:
  unit2av batch --example > jobs.jsonl          # a commented job file to edit
  unit2av batch jobs.jsonl --out-dir out/       # local worker processes
  unit2av batch jobs.jsonl --out-dir /shared/out --engine ray --ray-address auto

Rerunning the same command skips finished jobs; --retry-failed runs the failed ones again.
Exit code: 0 when every job is done or skipped, 1 when some failed, 2 for a bad job file.
"""

from __future__ import annotations

import argparse

from ..batch.jobs import EXAMPLE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("jobs", nargs="?", help='job file: JSON lines, one {"command": ..., ...} per line')
    parser.add_argument("--out-dir", "--out_dir", dest="out_dir", help="output folder (outputs and report.jsonl)")
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: worker processes here (default); ray: Ray actors on a cluster",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="workers (default: one per GPU, else one per 2 cores within 2 GiB of free memory "
        "each; at most one per job; Ray: one per GPU / per 2 cluster CPUs)",
    )
    parser.add_argument(
        "--ray-address",
        "--ray_address",
        dest="ray_address",
        default=None,
        help="Ray cluster: auto, ray://HEAD:10001, ... (default: start a local Ray instance)",
    )
    parser.add_argument(
        "--max-retries",
        "--max_retries",
        dest="max_retries",
        type=int,
        default=2,
        help="times a job is run again after its worker died (default 2)",
    )
    parser.add_argument(
        "--retry-failed",
        "--retry_failed",
        dest="retry_failed",
        action="store_true",
        help="run jobs that failed in an earlier run again (default: they stay failed)",
    )
    parser.add_argument("--example", action="store_true", help="print a commented example job file and exit")


def run(args: argparse.Namespace) -> int:
    from ..batch import run as run_batch
    from ..errors import Unit2AVError

    if args.example:
        print(EXAMPLE, end="")
        return 0
    if not args.jobs or not args.out_dir:
        raise Unit2AVError("give a job file and --out-dir (or --example for a job file to start from)")
    if args.max_retries < 0:
        raise Unit2AVError(f"--max-retries must be 0 or more, got {args.max_retries}")
    result = run_batch(
        args.jobs,
        args.out_dir,
        engine=args.engine,
        workers=args.workers,
        max_retries=args.max_retries,
        retry_failed=args.retry_failed,
        ray_address=args.ray_address,
    )
    for entry in result.entries:
        if entry["status"] == "failed":
            print(f"job {entry['job']} failed: {entry['reason']}")
    print(result.summary)
    return result.exit_code
