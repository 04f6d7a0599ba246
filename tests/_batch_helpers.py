"""What the batch tests share: running a single command as a batch worker would, and its one-line error."""

from __future__ import annotations

import torch

from unit2av.cli import main as cli_main


def run_single(argv: list[str], workers: int = 2) -> None:
    """Run a single command with the torch threads a batch worker of ``workers`` had (float sums depend on them)."""
    from unit2av.batch.engine_local import worker_threads

    before = torch.get_num_threads()
    torch.set_num_threads(worker_threads(workers))
    try:
        assert cli_main(argv) == 0
    finally:
        torch.set_num_threads(before)


def cli_error(argv: list[str], capsys) -> str:
    """A command that must fail: exit code 2 and one line on stderr; returns the line after the prefix."""
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    prefix = f"unit2av {argv[0]}: error: "
    assert err.startswith(prefix) and "\n" not in err, err
    return err[len(prefix) :]
