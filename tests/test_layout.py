"""The package stays in rooms a newcomer can read: module and function sizes within the house limits."""

from __future__ import annotations

import ast

from conftest import ROOT

MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 80  # docstrings counted


def test_modules_and_functions_stay_within_the_size_limits():
    too_long = []
    for path in sorted((ROOT / "src" / "unit2av").rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(ROOT / "src")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
    assert not too_long, "\n".join(too_long)
