import json
import textwrap

import pytest

from rankwise.data import load_beir
from rankwise.data.stdlib_code import SPLIT_FRACTIONS, assign_splits, build, extract, first_sentence


@pytest.fixture()
def fake_stdlib(tmp_path):
    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "alpha.py").write_text(
        textwrap.dedent('''
        def add(a, b):
            """Add two numbers. Returns their sum.

            Longer text.
            """
            return a + b

        def _private():
            """Hidden helper function here."""
            return 1

        def bare(x):
            return x * 2

        def stub():
            """Only a docstring in this one."""

        class Box:
            def open(self):
                """Return self."""
                return self

            def close(self):
                """Return self."""
                return None
        ''')
    )
    (root / "pkg" / "__init__.py").write_text(
        'def pkg_fn():\n    """Compute the package value quickly."""\n    return 42\n'
    )
    (root / "pkg" / "sub.py").write_text('def sig(a):\n    """sig(a) -> int"""\n    return a\n')
    (root / "test" / "test_x.py").write_text('def test_it():\n    """A test that should be skipped."""\n    pass\n')
    return root


def test_extract_queries_documents_and_distractors(fake_stdlib):
    fns = {f.qualname: f for f in extract(fake_stdlib)}
    assert set(fns) == {"alpha.add", "alpha.bare", "alpha.Box.open", "alpha.Box.close", "pkg.pkg_fn", "pkg.sub.sig"}
    assert fns["alpha.add"].query == "Add two numbers."
    assert fns["alpha.add"].document == "alpha.add\ndef add(a, b):\n    return a + b"  # docstring removed
    assert fns["alpha.bare"].query is None  # distractor: no docstring
    assert fns["alpha.Box.open"].query is None and fns["alpha.Box.close"].query is None  # duplicate query text
    assert fns["pkg.sub.sig"].query is None  # a signature, not a description
    assert fns["pkg.sub.sig"].module == "pkg"


def test_first_sentence_rules():
    assert first_sentence("Open the file.  Then read it.", "f") == "Open the file."
    assert first_sentence("Open the\n    file for reading\n\nMore.", "f") == "Open the file for reading"
    assert first_sentence("Hi.", "f") is None  # too short
    assert first_sentence("f(x) -> y", "f") is None


def test_assign_splits_follows_fractions_and_is_deterministic():
    counts = {f"m{i}": (i % 7) + 1 for i in range(300)}
    a, b = assign_splits(counts), assign_splits(dict(reversed(list(counts.items()))))
    assert a == b
    total = sum(counts.values())
    for name, frac in SPLIT_FRACTIONS:
        share = sum(c for m, c in counts.items() if a[m] == name) / total
        assert abs(share - frac) < 0.02


def test_real_build_is_deterministic_and_module_disjoint(tmp_path):
    one, two = build(tmp_path / "a"), build(tmp_path / "b")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"):
        assert (one / name).read_bytes() == (two / name).read_bytes()
    info = json.loads((one / "BUILD.json").read_text())
    assert info["queries"] > 1000 and info["documents"] > info["queries"]
    split_of_module = {}
    for line in (one / "corpus.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert split_of_module.setdefault(rec["module"], rec["split"]) == rec["split"]
    splits = {s: load_beir(one, s) for s in ("train", "dev", "test")}
    for s, ds in splits.items():
        for qid, judged in ds.qrels.items():
            (did,) = judged
            assert ds.corpus[did].meta["split"] == s
            assert ds.queries[qid] not in ds.corpus[did].text  # the docstring was removed
    assert not set(splits["train"].qrels) & set(splits["test"].qrels)
