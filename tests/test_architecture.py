"""The layout's promises, checked on the source: one place per model family, short functions, a
thin command line, negatives below training."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rankwise"
MODEL_CLASSES = {"BiEncoder", "CrossEncoder", "FeatureScorer", "PreferenceModel", "DLAModel", "Pipeline"}


def _modules():
    for path in sorted(SRC.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_no_isinstance_on_a_model_class_outside_the_family_modules_and_models():
    found = []
    for path, tree in _modules():
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("families/", "models/")):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                if names & MODEL_CLASSES:
                    found.append(f"{rel}:{node.lineno}")
    assert not found, found


def _code_lines(fn: ast.FunctionDef, source: list[str]) -> int:
    """Non-blank lines from ``def`` to the end, its docstring and comments counted too (the strict count)."""
    return sum(1 for n in range(fn.lineno, fn.end_lineno + 1) if source[n - 1].strip())


def test_every_function_reads_at_once_and_the_cli_stays_thin():
    long = []
    for path, tree in _modules():
        source = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node, source) > 80:
                long.append(f"{path.relative_to(SRC)}:{node.name} ({_code_lines(node, source)})")
    assert not long, long
    assert len((SRC / "cli.py").read_text(encoding="utf-8").splitlines()) <= 450


def test_negatives_never_import_training():
    for path, tree in _modules():
        if path.parent.name != "negatives":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rankwise.training"):
                raise AssertionError(f"{path.name}:{node.lineno} imports {node.module}")
