"""``stdlib-code``: the built-in code-search benchmark, built from the running Python's standard library.

How it is made (the README repeats this):

* Source: every ``.py`` file under ``sysconfig.get_paths()["stdlib"]``, walked in sorted order,
  parsed with :mod:`ast` (nothing is imported), skipping test suites, IDLE, demos, vendored
  packages and site-packages (:data:`SKIP_DIRS`).
* Units: public functions and methods (no leading underscore) defined at module level or in a
  public class at module level. Nested functions are skipped.
* Query: the first sentence of the docstring (first paragraph, lines joined, cut after the first
  ``.``, ``!`` or ``?`` followed by a space), kept when it has 3 to 40 words and does not start
  with a call signature. A query text that occurs twice (e.g. "Return self.") is ambiguous:
  its functions become distractors instead.
* Document: the qualified name (``module.Class.method``) on the first line, then the function's
  source with its docstring lines removed, dedented, cut at :data:`MAX_DOC_CHARS` characters.
  Functions whose body is only a docstring are skipped.
* Distractors: public functions without a usable docstring are in the corpus with no query.
* Split by top-level module (a package and its submodules count as one): modules, largest first,
  go to whichever of test (15 %), dev (10 %) or train (75 %) is furthest below its share of
  queries (:func:`assign_splits`), so no module is in two splits and the shares hold. Each
  corpus record carries its ``module`` and ``split``.
* Deterministic for a given Python version; cached under ``$RANKWISE_CACHE`` (default
  ``~/.cache/rankwise``) keyed by Python version and :data:`BUILD_VERSION`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import sysconfig
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rankwise.io import atomic_path, cache_dir

BUILD_VERSION = 1
MAX_DOC_CHARS = 3000
SPLIT_FRACTIONS = (("test", 0.15), ("dev", 0.10), ("train", 0.75))
SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "turtledemo",
    "lib2to3",
    "ensurepip",
    "site-packages",
    "dist-packages",
    "pydoc_data",
    "__pycache__",
    "__phello__",
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass
class Function:
    qualname: str
    module: str  # top-level module: the split unit
    query: str | None
    document: str


def assign_splits(query_counts: dict[str, int]) -> dict[str, str]:
    """Split top-level modules so each split's share of queries is close to its target fraction.

    Largest modules first (ties by the sha256 of the name), each to the split furthest below its
    target: deterministic, and one huge package cannot skew a small split.
    """
    order = sorted(query_counts, key=lambda m: (-query_counts[m], hashlib.sha256(m.encode()).hexdigest()))
    filled = {name: 0 for name, _ in SPLIT_FRACTIONS}
    target = dict(SPLIT_FRACTIONS)
    out = {}
    for module in order:
        # ties go to the largest split, listed last in SPLIT_FRACTIONS
        split = min(reversed(list(filled)), key=lambda s: filled[s] / target[s])
        out[module] = split
        filled[split] += query_counts[module]
    return out


def first_sentence(docstring: str, name: str) -> str | None:
    paragraph = docstring.strip().split("\n\n")[0]
    text = " ".join(line.strip() for line in paragraph.splitlines()).strip()
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    if re.match(r"^[\w.]+\(", sentence):
        return None  # a call signature, not a description
    return sentence if 3 <= len(sentence.split()) <= 40 else None


def _module_files(root: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(("config-", ".")))
        rel = Path(dirpath).relative_to(root)
        if rel.parts and not all(p.isidentifier() for p in rel.parts):
            dirnames[:] = []
            continue
        for fn in sorted(filenames):
            if not fn.endswith(".py") or not fn[:-3].isidentifier():
                continue
            parts = list(rel.parts) + ([] if fn == "__init__.py" else [fn[:-3]])
            if parts:
                yield ".".join(parts), Path(dirpath) / fn


def _functions(module: str, source: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            yield f"{module}.{node.name}", node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for sub in node.body:
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_"):
                    yield f"{module}.{node.name}.{sub.name}", sub


def _document(qualname: str, lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body = node.body
    drop: set[int] = set()
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(getattr(body[0], "value", None), ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        drop = set(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
        if len(body) == 1:
            return None  # only a docstring: nothing to search for
    kept = [lines[i - 1] for i in range(start, (node.end_lineno or node.lineno) + 1) if i not in drop]
    code = textwrap.dedent("\n".join(kept)).strip()
    return f"{qualname}\n{code}"[:MAX_DOC_CHARS]


def extract(root: str | Path | None = None) -> list[Function]:
    """Every usable function of the standard library at ``root`` (default: the running Python's)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    out: list[Function] = []
    seen: set[str] = set()
    for module, path in _module_files(root):
        try:
            source = path.read_text(encoding="utf-8")
            funcs = list(_functions(module, source))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # a few stdlib files are templates or Python 2 leftovers
        lines = source.splitlines()
        for qualname, node in funcs:
            if qualname in seen:  # conditional redefinitions: keep the first
                continue
            doc = _document(qualname, lines, node)
            if doc is None:
                continue
            seen.add(qualname)
            docstring = ast.get_docstring(node)
            query = first_sentence(docstring, node.name) if docstring else None
            out.append(Function(qualname, module.split(".")[0], query, doc))
    counts = Counter(f.query.lower() for f in out if f.query)
    for f in out:
        if f.query and counts[f.query.lower()] > 1:
            f.query = None  # ambiguous query: keep the function as a distractor
    return out


def build(out_dir: str | Path, root: str | Path | None = None) -> Path:
    """Write the dataset in BEIR layout to ``out_dir`` (atomically) and return it."""
    out_dir = Path(out_dir)
    functions = extract(root)
    counts: Counter[str] = Counter({f.module: 0 for f in functions})
    counts.update(f.module for f in functions if f.query)
    splits = assign_splits(dict(counts))
    with atomic_path(out_dir, is_dir=True) as tmp:
        (tmp / "qrels").mkdir()
        qrels = {name: [] for name, _ in SPLIT_FRACTIONS}
        with (
            open(tmp / "corpus.jsonl", "w", encoding="utf-8") as corpus,
            open(tmp / "queries.jsonl", "w", encoding="utf-8") as queries,
        ):
            n = 0
            for f in functions:
                split = splits[f.module]
                corpus.write(
                    json.dumps({"_id": f.qualname, "title": "", "text": f.document, "module": f.module, "split": split})
                    + "\n"
                )
                if f.query:
                    n += 1
                    qid = f"q{n}"
                    queries.write(json.dumps({"_id": qid, "text": f.query, "module": f.module}) + "\n")
                    qrels[split].append((qid, f.qualname))
        for split, rows in qrels.items():
            with open(tmp / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fh:
                fh.write("query-id\tcorpus-id\tscore\n")
                fh.writelines(f"{q}\t{d}\t1\n" for q, d in rows)
        (tmp / "BUILD.json").write_text(
            json.dumps(
                {
                    "name": "stdlib-code",
                    "split_field": "split",  # each corpus record names its split: own_split() keeps its own
                    "build_version": BUILD_VERSION,
                    "python": sys.version.split()[0],
                    "documents": len(functions),
                    "queries": sum(len(r) for r in qrels.values()),
                    "splits": {k: len(v) for k, v in qrels.items()},
                },
                indent=2,
            )
        )
    return out_dir


def ensure_built(out_dir: str | Path | None = None) -> Path:
    """The cached build for this Python (built on first use)."""
    version = ".".join(map(str, sys.version_info[:3]))
    target = Path(out_dir) if out_dir else cache_dir() / f"stdlib-code-py{version}-v{BUILD_VERSION}"
    if not (target / "BUILD.json").is_file():
        build(target)
    return target
