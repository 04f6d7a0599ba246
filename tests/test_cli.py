"""The console script: every subcommand is reachable, documents itself, and fails in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unit2av.cli import COMMANDS, main


def test_console_script_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "unit2av.cli", "-h"], capture_output=True, text=True, check=True)
    for name, _, _ in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "-h"])
    assert done.value.code == 0
    assert "usage: unit2av" in capsys.readouterr().out


def test_unit2av_error_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope.pt"
    rc = main(
        ["synth", "--checkpoint", str(missing), "--input_file", str(missing), "--output_folder", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "nope.pt" in err and "not found" in err


def test_no_subcommand_prints_help(capsys):
    assert main([]) == 1
    assert "COMMAND" in capsys.readouterr().out
