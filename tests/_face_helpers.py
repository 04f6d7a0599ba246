"""A tiny generated talking-face dataset shared by the train-face / train-sync / pack / demo tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from unit2av.demo.corpus import DEFAULT_VOICES, make_corpus
from unit2av.demo.talking_face import make_talking_faces
from unit2av.prepare.units import fit_kmeans, save_kmeans

K = 16  # units of the tiny k-means


@pytest.fixture(scope="session")
def face_dataset(tmp_path_factory) -> dict:
    """Two espeak-ng voices x 4 sentences -> drawn-face clips: 6 training clips, 2 held-out clips."""
    out: Path = tmp_path_factory.mktemp("faces")
    records = make_corpus(out / "corpus", voices=[DEFAULT_VOICES[0], DEFAULT_VOICES[2]], sentences_per_voice=4)
    held = [records[3], records[7]]
    train = [r for r in records if r not in held]
    save_kmeans(fit_kmeans([r["path"] for r in train], K, progress=False), out / "km.pt")
    train_clips = make_talking_faces(
        [r["path"] for r in train], out / "train", out / "km.pt", face="drawn", progress=False
    )
    valid_clips = make_talking_faces(
        [r["path"] for r in held], out / "valid", out / "km.pt", face="drawn", seed=100, progress=False
    )
    return {
        "root": out,
        "k": K,
        "train": out / "train" / "manifest.jsonl",
        "valid": out / "valid" / "manifest.jsonl",
        "train_clips": train_clips,
        "valid_clips": valid_clips,
        "records": records,
    }
