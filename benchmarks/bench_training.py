"""``train-unit2a`` steps: the reference's data path against ours (row 5 of ``bench_speed.py``; not a test).

    python benchmarks/bench_training.py            # 12 timed steps per data path, in alternating blocks

Small config (64 channels, batch 4, discriminators at 1/8 width) on espeak-ng speech: the reference's
data path (each item read, resampled and featurised in the training process, nothing cached) against
ours (``make_loaders``: decoded items cached; the config's one prefetching worker, which
``training.data_workers`` keeps in the training process when torch's threads use every core);
median seconds per step and the share of step time spent waiting for the next batch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TRAIN_STEPS = 12  # timed steps per data path (after WARMUP_STEPS), in ROUNDS alternating blocks
ROUNDS = 4  # blocks per path: reference, ours, ours, reference, ...
WARMUP_STEPS = 2  # untimed first steps (allocations, worker start-up)
TRAIN_DISC_WIDTH = 0.125  # discriminators at 1/8 of HiFi-GAN's channels
# The small vocoder (the fields that differ from the bundled AV2AV config).
SMALL_CONFIG = {
    "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "num_embeddings": 100,
    "embedding_dim": 32,
    "model_in_dim": 64,
    "segment_size": 6400,
    "batch_size": 4,
    "num_workers": 1,
    "dur_predictor_params": {
        "encoder_embed_dim": 32,
        "var_pred_hidden_dim": 32,
        "var_pred_kernel_size": 3,
        "var_pred_dropout": 0.1,
    },
}


class _Path:
    """One data path's training loop, resumable: ``run(n)`` times ``n`` more steps."""

    def __init__(self, state, loader):
        self.state, self.loader, self.it = state, loader, iter(loader)
        self.waits: list[float] = []
        self.totals: list[float] = []

    def _next(self):
        batch = next(self.it, None)
        if batch is None:  # epoch end: start the next one
            self.it = iter(self.loader)
            batch = next(self.it)
        return batch

    def run(self, n: int, timed: bool = True) -> None:
        """``n`` steps (wait for the batch + ``train_step``); recorded when ``timed``."""
        from unit2av.vocoder.step import train_step

        for _ in range(n):
            t0 = time.perf_counter()
            batch = self._next()
            t1 = time.perf_counter()
            train_step(self.state, batch)
            if timed:
                self.waits.append(t1 - t0)
                self.totals.append(time.perf_counter() - t0)


def _small_corpus(root: Path) -> Path:
    """espeak-ng speech with random unit files (training speed does not depend on the ids); the manifest."""
    from unit2av.demo.corpus import make_corpus
    from unit2av.io.safe import save_torch
    from unit2av.vocoder.manifest import ManifestEntry, write_manifest

    rng = np.random.default_rng(0)
    entries = []
    for r in make_corpus(root / "audio", sentences_per_voice=4):
        unit = root / "units" / f"{r['utt_id']}.pt"
        save_torch(
            {
                "code": torch.from_numpy(rng.integers(0, SMALL_CONFIG["num_embeddings"], r["num_samples"] // 320)),
                "spkr": torch.from_numpy(rng.standard_normal(256).astype(np.float32)),
            },
            unit,
        )
        entries.append(ManifestEntry(audio=str(r["path"]), unit_path=str(unit), speaker=r["speaker"]))
    write_manifest(entries, root / "train.jsonl")
    return root / "train.jsonl"


def row_training(threads: int, steps: int = TRAIN_STEPS) -> list[str]:
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

        paths = {}
        for name, make in (("reference", reference), ("ours", ours)):
            opts = TrainOptions(
                checkpoint_path=str(Path(tmp) / name), device="cpu", validation_interval=0, disc_width=TRAIN_DISC_WIDTH
            )
            state = build_state(cfg, opts, Dist())
            paths[name] = _Path(state, make(state))
            paths[name].run(WARMUP_STEPS, timed=False)
        names = list(paths)
        for r in range(ROUNDS):  # alternate blocks of steps, the order rotated: load drift hits both paths
            for name in names[r % 2 :] + names[: r % 2]:
                paths[name].run(max(1, steps // ROUNDS))
        out = {n: (statistics.median(p.totals), sum(p.waits) / sum(p.totals)) for n, p in paths.items()}
        workers = paths["ours"].loader.num_workers
        k = max(1, steps // ROUNDS)

        def block(name, i):
            return statistics.median(paths[name].totals[i * k : (i + 1) * k])

        ratios = [block("reference", i) / block("ours", i) for i in range(ROUNDS)]
    (tr, wr), (to, wo) = out["reference"], out["ours"]
    return [
        f"5 train-unit2a step (64 ch, batch {cfg.batch_size}, disc x{TRAIN_DISC_WIDTH}) | reference data path "
        f"{tr:.3f} s/step, {100 * wr:.0f}% waiting | ours ({workers} of the config's {cfg.num_workers} worker, cache) "
        f"{to:.3f} s/step, "
        f"{100 * wo:.0f}% waiting | x{tr / to:.2f} (per block: {', '.join(f'{x:.2f}' for x in ratios)}) | "
        f"no slower: {_ok(to <= tr)}"
    ]


def _ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=TRAIN_STEPS, help="timed steps per data path")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(row_training(args.threads, args.steps)[0])
