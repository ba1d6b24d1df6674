"""The service stays readable: no function in serve/ over 60 lines, and no module imports app.py."""

from __future__ import annotations

import ast
from pathlib import Path

SERVE = Path(__file__).resolve().parents[2] / "src" / "groundwork" / "serve"


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_in_serve_is_over_60_lines() -> None:
    long = []
    for path in SERVE.rglob("*.py"):
        for fn in _functions(ast.parse(path.read_text())):
            lines = fn.end_lineno - fn.lineno + 1
            if lines > 60:
                long.append(f"{path.relative_to(SERVE)}:{fn.name} ({lines} lines)")
    assert long == []


def test_nothing_imports_back_from_app() -> None:
    offenders = []
    for path in SERVE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "groundwork.serve.app":
                offenders.append(str(path.relative_to(SERVE)))
    assert offenders == []
