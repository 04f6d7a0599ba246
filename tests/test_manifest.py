"""Manifests: built from a zeroth-like espeak-ng corpus with suffixed unit names; legacy lines; safety."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _unit2a_helpers import UNIT_SUFFIX, make_unit_corpus

from unit2av.cli import main
from unit2av.demo.corpus import espeak_available
from unit2av.errors import Unit2AVError
from unit2av.vocoder.manifest import build_manifest, find_audio, read_manifest, split_manifest, write_manifest

pytestmark = pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest_corpus")
    data = make_unit_corpus(root, sentences_per_voice=3)
    # A unit file whose audio does not exist (speaker 999 was never recorded).
    torch.save({"code": torch.arange(10)}, data["unit_root"] / f"999_001_0001{UNIT_SUFFIX}.pt")
    return data


def test_build_finds_suffixed_units_and_reports_missing(corpus):
    result = build_manifest(corpus["audio_root"], corpus["unit_root"])
    records = {r["utt_id"]: r for r in corpus["records"]}
    assert len(records) == 12 and {r["lang"] for r in records.values()} == {"ko", "en"}
    assert len({r["speaker"] for r in records.values()}) >= 4
    assert len(result.entries) == 12
    for e in result.entries:
        utt = Path(e.audio).stem
        r = records[utt]
        assert e.audio == r["path"]
        assert Path(e.unit_path).name == f"{utt}{UNIT_SUFFIX}.pt"
        assert e.speaker == r["speaker"]
        assert e.duration == pytest.approx(r["num_samples"] / 16000, abs=1e-3)
    assert result.missing == [
        (
            str(corpus["unit_root"] / f"999_001_0001{UNIT_SUFFIX}.pt"),
            str(corpus["audio_root"] / "999" / "999_001_0001.wav"),
        )
    ]


def test_longest_matching_utterance_id_wins(tmp_path):
    (tmp_path / "a" / "200").mkdir(parents=True)
    for name in ("200_001.wav", "200_001_0002.wav"):
        shutil.copy(Path(__file__), tmp_path / "a" / "200" / name)  # content is irrelevant to the lookup
    found, _ = find_audio(tmp_path / "u" / "200_001_0002_hubert.pt", tmp_path / "a")
    assert found == tmp_path / "a" / "200" / "200_001_0002.wav"
    found, _ = find_audio(tmp_path / "u" / "200_001_9999_hubert.pt", tmp_path / "a")
    assert found == tmp_path / "a" / "200" / "200_001.wav"  # only the shorter id exists
    # An explicit suffix is removed exactly (with or without its leading underscore).
    for suffix in ("_hubert", "hubert"):
        found, expected = find_audio(tmp_path / "u" / "200_001_9999_hubert.pt", tmp_path / "a", suffix)
        assert found is None and expected == tmp_path / "a" / "200" / "200_001_9999.wav"


def test_cli_writes_train_and_speaker_disjoint_valid(corpus, tmp_path, capsys):
    out = tmp_path / "train.jsonl"
    rc = main(
        [
            "manifest",
            "--audio_root",
            str(corpus["audio_root"]),
            "--unit_root",
            str(corpus["unit_root"]),
            "--output_file",
            str(out),
            "--unit_suffix",
            UNIT_SUFFIX,
            "--valid_count",
            "1",
            "--split_by",
            "speaker",
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "found 12 utterances" in printed and "1 unit files without audio" in printed
    assert str(corpus["audio_root"] / "999" / "999_001_0001.wav") in printed
    train, valid = read_manifest(out), read_manifest(tmp_path / "train_valid.jsonl")
    assert len(train) == 9 and len(valid) == 3
    assert len({e.speaker for e in valid}) == 1 and not {e.speaker for e in valid} & {e.speaker for e in train}
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert set(lines[0]) == {"audio", "unit_path", "speaker", "duration"}


def test_utterance_split_fraction_is_reproducible(corpus):
    entries = build_manifest(corpus["audio_root"], corpus["unit_root"]).entries
    train, valid = split_manifest(entries, valid_fraction=0.25, seed=7)
    train2, valid2 = split_manifest(entries, valid_fraction=0.25, seed=7)
    assert len(valid) == 3 and len(train) == 9
    assert [e.audio for e in valid] == [e.audio for e in valid2]
    assert {e.audio for e in train} | {e.audio for e in valid} == {e.audio for e in entries}
    with pytest.raises(Unit2AVError, match="cannot hold out"):
        split_manifest(entries, valid_count=12)


def test_round_trip_and_legacy_lines(tmp_path):
    legacy = tmp_path / "legacy.txt"
    legacy.write_text(
        "{'audio': '/d/113/113_003_0012.wav', 'unit_path': '/u/113_003_0012.pt'}\n"
        "\n"
        "{'audio': '/d/LJ001-0001.wav', 'hubert': '5 5 7 1', 'duration': 1.5}\n"
        '{"audio": "/d/124_001_0001.wav", "codes": [3, 4, 4]}\n'
        "{'audio': '/d/x_1.wav', 'cpc_km100': '9 8'}\n"
    )
    entries = read_manifest(legacy)
    assert [e.audio for e in entries] == [
        "/d/113/113_003_0012.wav",
        "/d/LJ001-0001.wav",
        "/d/124_001_0001.wav",
        "/d/x_1.wav",
    ]
    assert entries[0].unit_path == "/u/113_003_0012.pt" and entries[0].speaker == "113"
    assert entries[1].codes.tolist() == [5, 5, 7, 1] and entries[1].duration == 1.5
    assert entries[2].codes.tolist() == [3, 4, 4] and entries[2].speaker == "124"
    assert entries[3].codes.tolist() == [9, 8]
    ours = tmp_path / "ours.jsonl"
    write_manifest(entries, ours)
    again = read_manifest(ours)
    assert [(e.audio, e.unit_path, e.speaker) for e in again] == [(e.audio, e.unit_path, e.speaker) for e in entries]
    assert np.array_equal(again[1].codes, entries[1].codes)


@pytest.mark.parametrize(
    "line",
    [
        "__import__('os').system('touch {flag}')",
        "{'audio': __import__('os').system('touch {flag}'), 'hubert': '1'}",
        "{'audio': 'a.wav', 'hubert': open('{flag}', 'w')}",
    ],
)
def test_malicious_lines_are_refused_without_running(tmp_path, line):
    flag = tmp_path / "PWNED"
    bad = tmp_path / "evil.txt"
    bad.write_text("{'audio': 'a.wav', 'hubert': '1 2'}\n" + line.replace("{flag}", str(flag)) + "\n")
    with pytest.raises(Unit2AVError) as err:
        read_manifest(bad)
    assert f"{bad}:2" in str(err.value) and "\n" not in str(err.value)
    assert not flag.exists()


@pytest.mark.parametrize(
    "line, problem",
    [
        ("{'unit_path': 'u.pt'}", "no 'audio'"),
        ("{'audio': 'a.wav'}", "neither 'unit_path' nor inline codes"),
        ("{'audio': 'a.wav', 'hubert': '1 x 3'}", "space-separated integers"),
        ("[1, 2, 3]", "expected a dict"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, problem):
    bad = tmp_path / "bad.txt"
    bad.write_text("# comment\n" + line + "\n")
    with pytest.raises(Unit2AVError, match=problem) as err:
        read_manifest(bad)
    assert str(err.value).startswith(f"{bad}:2:")


def test_cli_bad_roots_exit_2(tmp_path, capsys):
    rc = main(
        [
            "manifest",
            "--audio_root",
            str(tmp_path / "nope"),
            "--unit_root",
            str(tmp_path),
            "--output_file",
            str(tmp_path / "m.jsonl"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "not a directory" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.jsonl").exists()
