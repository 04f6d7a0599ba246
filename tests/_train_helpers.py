"""Shared by the train-unit2a tests: a tiny espeak-ng unit corpus with manifests, configs and options for it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from _unit2a_helpers import TINY_DISC_WIDTH, make_unit_corpus, write_config

from unit2av.vocoder.config import load_config
from unit2av.vocoder.manifest import build_manifest, write_manifest
from unit2av.vocoder.state import TrainOptions


@pytest.fixture(scope="session", name="data")
def unit2a_data(tmp_path_factory):
    """12 utterances of 4 voices (ko + en): the last sentence of each speaker is held out."""
    root = tmp_path_factory.mktemp("train_corpus")
    corpus = make_unit_corpus(root, sentences_per_voice=3)
    entries = build_manifest(corpus["audio_root"], corpus["unit_root"]).entries
    held = [e for e in entries if Path(e.audio).stem.endswith("_0003")]
    write_manifest([e for e in entries if e not in held], root / "train.jsonl")
    write_manifest(held, root / "valid.jsonl")
    return {
        "root": root,
        "config": write_config(root / "tiny.json"),
        "train": root / "train.jsonl",
        "valid": root / "valid.jsonl",
    }


def train_cfg(data, **kw):
    """The tiny config with the corpus' manifests (and ``kw``)."""
    kw = {"input_training_file": str(data["train"]), "input_validation_file": str(data["valid"]), **kw}
    return dataclasses.replace(load_config(data["config"]), **kw)


def train_opts(folder, **kw) -> TrainOptions:
    """Short-run options: 6 steps, checkpoints every 3, no validation, tiny discriminators (and ``kw``)."""
    base = dict(
        training_steps=6,
        checkpoint_interval=3,
        validation_interval=0,
        disc_width=TINY_DISC_WIDTH,
        num_workers=0,
        stdout_interval=100,
        summary_interval=1,
    )
    return TrainOptions(str(folder), **{**base, **kw})


def tb_scalars(logdir: Path) -> tuple[dict[str, dict[int, float]], dict]:
    """TensorBoard scalars ``{tag: {step: value}}`` and all tags of a log folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "audio": 0, "images": 0})
    ea.Reload()
    tags = ea.Tags()
    return {t: {e.step: e.value for e in ea.Scalars(t)} for t in tags["scalars"]}, tags
