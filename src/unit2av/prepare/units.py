"""Discrete units from raw audio: frame features at the code rate, k-means, unit files.

- Features and unit sources come from the registries of ``unit2av.prepare.features`` (``"logmel"``,
  ``"hubert:DIR[:LAYER]"``, ``"mavhubert:CKPT[:MODALITIES]"``); every extractor maps a mono waveform
  ``(T,)`` to ``(T // hop_size, D)`` float32.
- ``fit_kmeans`` standardises the features (mean/std stored in the k-means file) and
  clusters them with scikit-learn; the k-means file is a plain tensor dict written with
  ``save_torch`` and read back with ``load_torch`` (weights only).
- ``extract_units`` / ``extract_folder`` write the seed's unit format
  ``{"code": LongTensor[len(audio) // code_hop_size], "spkr": FloatTensor[256]}``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import Unit2AVError, fail
from ..io.audio import find_audio_files, load_audio
from ..io.safe import load_torch, save_torch
from .features import (
    FEATURES,
    UNIT_SOURCES,
    FeatureExtractor,
    LogMelFeatures,
    UnitSource,
    is_unit_source,
    make_feature_extractor,
    make_unit_source,
    register_feature,
    register_unit_source,
)

log = logging.getLogger(__name__)

KMEANS_FORMAT = "unit2av-kmeans"  # marks our k-means files
KMEANS_VERSION = 1  # bump when the file layout changes
MAX_FRAME_SLACK = 2  # an extractor may return this many frames more/less than len(wav) // hop (fixed up)
STD_FLOOR = 1e-5  # smallest per-dimension std used for standardising


def _features_of(extractor: FeatureExtractor, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(wav (T,), feats (T // hop, D))`` of one file; errors name the file."""
    wav, _ = load_audio(path, extractor.sample_rate)
    try:
        feats = extractor(wav)
    except Unit2AVError as e:
        raise fail(path, str(e)) from e
    n = len(wav) // extractor.hop_size
    if feats.ndim != 2 or abs(feats.shape[0] - n) > MAX_FRAME_SLACK:
        raise fail(path, f"feature {extractor.spec!r} gave shape {feats.shape}, expected ({n}, D)")
    if feats.shape[0] < n:  # a model that drops the last partial frame: repeat the last one
        feats = np.concatenate([feats, np.repeat(feats[-1:], n - feats.shape[0], axis=0)])
    return wav, feats[:n]


def fit_kmeans(
    audio_files: Sequence[str | os.PathLike],
    k: int,
    cfg=None,
    features: str = "logmel",
    max_frames: int = 100_000,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Fit k-means on standardised frame features of ``audio_files``.

    Args:
        audio_files: audio or video files.
        k: number of clusters (units).
        cfg: ``VocoderConfig`` giving ``sampling_rate`` and ``code_hop_size`` (``None`` = bundled).
        features: feature spec (see ``make_feature_extractor``).
        max_frames: frames used for clustering at most (random subset beyond that).
        seed: k-means initialisation and subset seed.
        device: where a neural feature model runs.
        progress: show a tqdm bar.

    Returns:
        The k-means dict (see ``save_kmeans``): ``centers (K, D)``, ``mean (D,)``, ``std (D,)`` ...
    """
    from sklearn.cluster import MiniBatchKMeans
    from tqdm import tqdm

    if k < 2:
        raise Unit2AVError(f"k-means needs k >= 2 (got {k})")
    if not audio_files:
        raise Unit2AVError("k-means: no audio files given")
    extractor = make_feature_extractor(features, cfg, device=device)
    feats = [_features_of(extractor, Path(p))[1] for p in tqdm(audio_files, desc="features", disable=not progress)]
    data = np.concatenate(feats).astype(np.float64)  # (N, D)
    if data.shape[0] < k:
        raise Unit2AVError(f"k-means: only {data.shape[0]} frames for k={k}; give more audio or a smaller k")
    mean, std = data.mean(axis=0), np.maximum(data.std(axis=0), STD_FLOOR)
    rng = np.random.default_rng(seed)
    if data.shape[0] > max_frames:
        data = data[rng.choice(data.shape[0], max_frames, replace=False)]
    data = (data - mean) / std
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=max(1024, 4 * k), max_iter=200).fit(data)
    log.info("k-means: %d clusters on %d frames of %d files (inertia %.1f)", k, data.shape[0], len(feats), km.inertia_)
    return {
        "format": KMEANS_FORMAT,
        "version": KMEANS_VERSION,
        "feature": extractor.spec,
        "feature_params": extractor.params(),
        "sample_rate": extractor.sample_rate,
        "code_hop_size": extractor.hop_size,
        "k": int(k),
        "centers": torch.from_numpy(km.cluster_centers_.astype(np.float32)),
        "mean": torch.from_numpy(mean.astype(np.float32)),
        "std": torch.from_numpy(std.astype(np.float32)),
        "num_files": len(feats),
        "num_frames": int(sum(f.shape[0] for f in feats)),
    }


def save_kmeans(kmeans: dict, path: str | os.PathLike) -> None:
    """Write a k-means dict atomically (plain tensors, strings and numbers only)."""
    save_torch(kmeans, path)


def load_kmeans(path: str | os.PathLike) -> dict:
    """Read and check a k-means file written by ``save_kmeans``.

    Raises:
        Unit2AVError: missing file, pickled objects, or not a unit2av k-means file.
    """
    km = load_torch(path, what="k-means file")
    if not isinstance(km, dict) or km.get("format") != KMEANS_FORMAT:
        raise fail(
            path, f"not a unit2av k-means file (no format={KMEANS_FORMAT!r}; write one with `unit2av units fit`)"
        )
    centers, mean, std = km.get("centers"), km.get("mean"), km.get("std")
    if (
        not all(isinstance(t, torch.Tensor) for t in (centers, mean, std))
        or centers.dim() != 2
        or mean.shape != (centers.shape[1],)
        or std.shape != mean.shape
    ):
        raise fail(path, "k-means file: centers (K, D), mean (D,) and std (D,) tensors expected")
    if not isinstance(km.get("feature"), str) or not isinstance(km.get("code_hop_size"), int):
        raise fail(path, "k-means file: 'feature' (str) and 'code_hop_size' (int) expected")
    return km


def extractor_for(kmeans: dict, features: str | None = None, device: str = "cpu") -> FeatureExtractor:
    """The feature extractor a k-means dict was fitted with (``features`` overrides the spec)."""
    from ..vocoder.config import VocoderConfig

    cfg = VocoderConfig(sampling_rate=int(kmeans["sample_rate"]), code_hop_size=int(kmeans["code_hop_size"]))
    spec = features or kmeans["feature"]
    params = dict(kmeans.get("feature_params") or {}) if spec == kmeans["feature"] else None
    return make_feature_extractor(spec, cfg, params, device)


def assign_units(kmeans: dict, feats: np.ndarray) -> torch.Tensor:
    """Nearest-center ids of ``feats (N, D)`` -> ``LongTensor (N,)``."""
    x = (torch.from_numpy(feats).float() - kmeans["mean"]) / kmeans["std"]  # (N, D)
    centers = kmeans["centers"].float()  # (K, D)
    # squared distance up to a per-row constant: |c|^2 - 2 x.c
    dist = (centers * centers).sum(dim=1)[None, :] - 2.0 * x @ centers.T  # (N, K)
    return dist.argmin(dim=1).long()


def extract_units(
    kmeans: dict | None,
    audio_path: str | os.PathLike,
    speaker_encoder=None,
    extractor: FeatureExtractor | UnitSource | None = None,
) -> dict:
    """Units (and optionally a speaker embedding) of one audio or video file.

    Args:
        kmeans: a dict from ``load_kmeans`` / ``fit_kmeans`` (``None`` with a ``UnitSource``).
        audio_path: the file (resampled to the k-means sample rate).
        speaker_encoder: a ``SpeakerEncoder``; ``None`` = no ``spkr`` entry.
        extractor: reuse a feature extractor (default: built from ``kmeans``), or a ``UnitSource``.

    Returns:
        ``{"code": LongTensor (len(audio) // code_hop_size,)}`` plus ``"spkr": FloatTensor (256,)``.
    """
    if isinstance(extractor, UnitSource):
        path = Path(audio_path)
        wav, _ = load_audio(path, extractor.sample_rate)
        out = {"code": extractor(wav, path).long()}
    else:
        extractor = extractor or extractor_for(kmeans)
        wav, feats = _features_of(extractor, Path(audio_path))
        out = {"code": assign_units(kmeans, feats)}
    if speaker_encoder is not None:
        out["spkr"] = torch.from_numpy(speaker_encoder.embed(wav, extractor.sample_rate)).float()
    return out


WORKER_CHUNK = 16  # files per worker task (each task loads the models once)


def _extract_chunk(
    kmeans_path: str | None,
    jobs: list[tuple[str, str]],
    features: str | None,
    encoder_path: str | None,
    speaker: bool,
    device: str,
    threads: int,
    source: UnitSource | None = None,
) -> list[str]:
    """Worker task: extract ``(audio, out)`` pairs; models are loaded once per task (or ``source`` reused)."""
    if threads > 0:
        torch.set_num_threads(threads)
    if kmeans_path is None:
        kmeans, extractor = None, source or make_unit_source(features, device)
    else:
        kmeans = load_kmeans(kmeans_path)
        extractor = extractor_for(kmeans, features, device)
    encoder = None
    if speaker:
        from .speaker import SpeakerEncoder

        encoder = SpeakerEncoder.load(encoder_path, device=device)
    for audio, out in jobs:
        save_torch(extract_units(kmeans, audio, encoder, extractor), out)
    return [out for _, out in jobs]


def extract_folder(
    kmeans_path: str | os.PathLike | None,
    audio_root: str | os.PathLike,
    out_root: str | os.PathLike,
    speaker: bool = False,
    speaker_encoder: str | os.PathLike | None = None,
    workers: int = 1,
    features: str | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> list[Path]:
    """Write ``<out_root>/<path relative to audio_root, suffix .pt>`` for every audio file.

    Args:
        kmeans_path: k-means file from ``units fit`` (``None`` when ``features`` names a unit source).
        audio_root: folder searched recursively for audio/video files.
        out_root: output folder (mirrors the input tree).
        speaker: also store a 256-d GE2E embedding under ``"spkr"``.
        speaker_encoder: encoder weights (``None`` = Resemblyzer's GE2E weights, bundled with unit2av).
        workers: processes (``<= 1`` = in this process).
        features: override the k-means file's feature spec (e.g. a moved HuBERT folder), or a unit
            source (``mavhubert:CKPT[:MODALITIES]``: units from the model itself, no k-means).
        device: device of the speaker encoder / feature model.
        progress: show a tqdm bar.

    Returns:
        The written unit files, in input order.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from tqdm import tqdm

    source = None
    if is_unit_source(features):
        if kmeans_path is not None:
            raise Unit2AVError(
                f"{features.partition(':')[0]} units come from the model's own label heads; drop the k-means file"
            )
        source = make_unit_source(features, device) if workers <= 1 else None  # loaded once here; workers load theirs
        if workers > 1:
            make_unit_source(features, "cpu")  # fail early on a bad checkpoint
    elif kmeans_path is None:
        raise Unit2AVError("unit extraction needs a k-means file (units fit), or --features mavhubert:CKPT")
    else:
        load_kmeans(kmeans_path)  # fail early on a bad file
    kmeans_path = None if kmeans_path is None else str(kmeans_path)
    audio_root, out_root = Path(audio_root), Path(out_root)
    files = [f for f in find_audio_files(audio_root) if not f.name.endswith(".lip.mp4")]  # mouth crops: no speech
    if not files:
        raise fail(audio_root, "only mouth-crop videos (.lip.mp4) found, no speech")
    jobs = [(str(f), str((out_root / f.relative_to(audio_root)).with_suffix(".pt"))) for f in files]
    enc = None if speaker_encoder is None else str(speaker_encoder)
    chunks = [jobs[i : i + WORKER_CHUNK] for i in range(0, len(jobs), WORKER_CHUNK)]
    bar = tqdm(total=len(jobs), desc="units", unit="file", disable=not progress)
    if workers <= 1:
        for chunk in chunks:
            _extract_chunk(kmeans_path, chunk, features, enc, speaker, device, 0, source)
            bar.update(len(chunk))
    else:
        # "spawn": forked children of a process that already ran torch can deadlock
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_extract_chunk, kmeans_path, c, features, enc, speaker, device, 1) for c in chunks]
            for fut in futures:
                bar.update(len(fut.result()))
    bar.close()
    log.info("wrote %d unit files under %s", len(jobs), out_root)
    return [Path(out) for _, out in jobs]


__all__ = [
    "FEATURES",
    "UNIT_SOURCES",
    "FeatureExtractor",
    "LogMelFeatures",
    "UnitSource",
    "assign_units",
    "extract_folder",
    "extract_units",
    "extractor_for",
    "fit_kmeans",
    "is_unit_source",
    "load_kmeans",
    "make_feature_extractor",
    "make_unit_source",
    "register_feature",
    "register_unit_source",
    "save_kmeans",
]
