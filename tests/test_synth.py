"""`unit2av synth` on .pt, .txt and folders, and every bad input of the issue."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from unit2av.cli import main


@pytest.fixture()
def units_dir(tmp_path, reference_expected):
    e = reference_expected
    d = tmp_path / "units"
    d.mkdir()
    code = torch.from_numpy(e["plain__code"][0]).long()
    spkr = torch.from_numpy(e["plain__spkr"]).float().view(256)
    torch.save({"code": code, "spkr": spkr}, d / "113_003_0012.pt")
    (d / "dedup.txt").write_text(" ".join(map(str, e["dur__code"][0].tolist())) + "\n")
    torch.save(spkr, tmp_path / "speaker.pt")
    return d


def _synth(reference_dir, reference_config, *extra):
    return main(
        [
            "synth",
            "--checkpoint",
            str(reference_dir / "g_00000000"),
            "--config",
            str(reference_config),
            "--device",
            "cpu",
            *extra,
        ]
    )


def test_synth_pt_matches_reference(tmp_path, units_dir, reference_dir, reference_config, reference_expected):
    out = tmp_path / "out"
    rc = _synth(
        reference_dir,
        reference_config,
        "--input_file",
        str(units_dir / "113_003_0012.pt"),
        "--output_folder",
        str(out),
        "--output_format",
        "float",
    )
    assert rc == 0
    wav, sr = sf.read(out / "113_003_0012_0step.wav", dtype="float32")
    assert sr == 16000
    assert np.abs(wav - reference_expected["plain__wav"].reshape(-1)).max() <= 1e-4


def test_synth_txt_with_duration_prediction(tmp_path, units_dir, reference_dir, reference_config, reference_expected):
    out = tmp_path / "out"
    rc = _synth(
        reference_dir,
        reference_config,
        "--input_file",
        str(units_dir / "dedup.txt"),
        "--output_folder",
        str(out),
        "--dur-prediction",
        "--speaker",
        str(tmp_path / "speaker.pt"),
    )
    assert rc == 0
    info = sf.info(out / "dedup_0step.wav")
    assert info.subtype == "PCM_16"
    assert info.frames == reference_expected["dur__wav"].size
    wav, _ = sf.read(out / "dedup_0step.wav", dtype="float32")
    assert np.abs(wav - reference_expected["dur__wav"].reshape(-1)).max() <= 1.5 / 32768


def test_synth_folder(tmp_path, units_dir, reference_dir, reference_config, capsys):
    out = tmp_path / "out"
    rc = _synth(
        reference_dir,
        reference_config,
        "--input_file",
        str(units_dir),
        "--output_folder",
        str(out),
        "--speaker",
        str(tmp_path / "speaker.pt"),
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["113_003_0012_0step.wav", "dedup_0step.wav"]
    assert "wrote 2 wav file(s)" in capsys.readouterr().out


def _bad(tmp_path, name, content):
    p = tmp_path / name
    if isinstance(content, str):
        p.write_text(content)
    else:
        torch.save(content, p)
    return p


@pytest.mark.parametrize(
    "name, content, extra, message",
    [
        ("big.txt", "1 2 1000 3", [], "unit id 1000 is out of range"),
        ("empty.txt", "  \n", [], "no valid unit ids"),
        ("neg.txt", "-1 -1 -1", [], "no valid unit ids"),
        ("words.txt", "1 2 three", [], "found 'three'"),
        ("nocode.pt", {"units": torch.tensor([1, 2])}, [], "has no 'code' entry"),
        (
            "badspk.pt",
            {"code": torch.tensor([1, 2, 3]), "spkr": torch.zeros(128)},
            [],
            "speaker embedding has 128 values",
        ),
        ("nospk.txt", "1 2 3", [], "speaker-conditioned but no speaker"),
        ("ok.txt", "1 2 3", ["--speaker", "/nonexistent/voice.wav"], "audio file not found"),
        ("ok.txt", "1 2 3", ["--speaker", "__garbage__"], "unreadable audio"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(
    tmp_path, reference_dir, reference_config, capsys, name, content, extra, message
):
    src = _bad(tmp_path, name, content)
    if "__garbage__" in extra:
        garbage = tmp_path / "voice.wav"
        garbage.write_bytes(bytes(range(256)) * 20)
        extra = [str(garbage) if a == "__garbage__" else a for a in extra]
    out = tmp_path / "out"
    rc = _synth(reference_dir, reference_config, "--input_file", str(src), "--output_folder", str(out), *extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())


def test_negative_ids_dropped_with_warning(tmp_path, reference_dir, reference_config, caplog):
    src = _bad(tmp_path, "mixed.pt", {"code": torch.tensor([5, -1, 6, 7]), "spkr": torch.zeros(256)})
    rc = _synth(reference_dir, reference_config, "--input_file", str(src), "--output_folder", str(tmp_path / "o"))
    assert rc == 0
    assert "dropped 1 negative unit ids" in caplog.text
    assert sf.info(tmp_path / "o" / "mixed_0step.wav").frames == 3 * 320


def test_checkpoint_mismatch_exit_2(tmp_path, units_dir, reference_dir, capsys):
    rc = main(
        [
            "synth",
            "--checkpoint",
            str(reference_dir / "g_00000000"),
            "--input_file",
            str(units_dir / "113_003_0012.pt"),
            "--output_folder",
            str(tmp_path / "o"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit the config" in err and "conv_pre" in err
