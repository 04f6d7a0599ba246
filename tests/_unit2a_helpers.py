"""Test data for manifest / dataset / training tests: an espeak-ng corpus with unit files.

The corpus is ``unit2av.demo.corpus.make_corpus`` (zeroth layout, 2 Korean + 2 English voices);
units come from ``unit2av.prepare.units`` (log-mel k-means), and each speaker gets a fixed random
256-d ``spkr`` vector (consistent per speaker, cheaper than the GE2E encoder).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from unit2av.demo.corpus import make_corpus
from unit2av.prepare.units import extract_units, extractor_for, fit_kmeans

UNIT_SUFFIX = "_hubert_l6"  # the suffix the seed's unit files carried
K = 16  # units in the test k-means
EMBEDDER_DIM = 256  # speaker embedding size of the test configs

# A vocoder small enough for a training step well under a second on one CPU core.
TINY_CONFIG = {
    "resblock": "1",
    "batch_size": 4,
    "learning_rate": 0.0005,
    "adam_b1": 0.8,
    "adam_b2": 0.99,
    "lr_decay": 0.999,
    "seed": 1234,
    "upsample_rates": [5, 4, 4, 2, 2],
    "upsample_kernel_sizes": [11, 8, 8, 4, 4],
    "upsample_initial_channel": 64,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "num_embeddings": K,
    "embedding_dim": 32,
    "model_in_dim": 64,
    "multispkr": True,
    "embedder_params": True,
    "embedder_dim": EMBEDDER_DIM,
    "segment_size": 6400,
    "code_hop_size": 320,
    "f0": False,
    "num_mels": 80,
    "num_freq": 513,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "dur_prediction_weight": 1.0,
    "dur_predictor_params": {
        "encoder_embed_dim": 32,
        "var_pred_hidden_dim": 32,
        "var_pred_kernel_size": 3,
        "var_pred_dropout": 0.5,
    },
    "sampling_rate": 16000,
    "fmin": 0,
    "fmax": 8000,
    "fmax_for_loss": None,
    "num_workers": 0,
}
TINY_DISC_WIDTH = 0.0625  # discriminators at 1/16 of HiFi-GAN's channels


def speaker_vectors(speakers) -> dict[str, torch.Tensor]:
    """A fixed unit-norm random vector per speaker."""
    out = {}
    for s in sorted(speakers):
        v = torch.randn(EMBEDDER_DIM, generator=torch.Generator().manual_seed(int(s)))
        out[s] = v / v.norm()
    return out


def make_unit_corpus(root: Path, sentences_per_voice: int = 4, suffix: str = UNIT_SUFFIX) -> dict:
    """Corpus under ``root/audio``, unit files ``root/units/<utt><suffix>.pt``.

    Returns:
        ``{"audio_root", "unit_root", "records", "spkr"}`` (records from ``make_corpus``).
    """
    audio_root, unit_root = root / "audio", root / "units"
    records = make_corpus(audio_root, sentences_per_voice=sentences_per_voice)
    kmeans = fit_kmeans([r["path"] for r in records], K, progress=False)
    extractor = extractor_for(kmeans)
    spkr = speaker_vectors({r["speaker"] for r in records})
    unit_root.mkdir(parents=True, exist_ok=True)
    for r in records:
        units = extract_units(kmeans, r["path"], extractor=extractor)
        units["spkr"] = spkr[r["speaker"]]
        torch.save(units, unit_root / f"{r['utt_id']}{suffix}.pt")
    return {"audio_root": audio_root, "unit_root": unit_root, "records": records, "spkr": spkr}


def write_config(path: Path, **overrides) -> Path:
    """Write ``TINY_CONFIG`` (with overrides) as a JSON config file."""
    path.write_text(json.dumps({**TINY_CONFIG, **overrides}, indent=1))
    return path
