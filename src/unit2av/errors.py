"""The one exception type the CLI turns into a one-line message and exit code 2."""


class Unit2AVError(Exception):
    """A problem with user input (a file, a flag, a config) that the user can fix.

    The message is one line and names the file and the problem.
    """


def fail(path, problem: str) -> "Unit2AVError":
    """Build a ``Unit2AVError`` of the form ``"<path>: <problem>"``.

    Args:
        path: the file at fault (``None`` when no file is involved).
        problem: what is wrong, in one line.
    """
    problem = " ".join(str(problem).split())
    return Unit2AVError(f"{path}: {problem}" if path is not None else problem)
