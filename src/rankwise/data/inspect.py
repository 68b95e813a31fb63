"""``rankwise data inspect``: counts, lengths, label distribution and the problems found."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rankwise.data.beir import available_splits, load_beir, load_corpus, load_queries
from rankwise.data.jsonl import find_file
from rankwise.errors import DataError


@dataclass
class SplitReport:
    split: str
    queries: int
    judgements: int
    queries_without_positive: int
    labels: dict[int, int]
    positives_per_query: dict[str, float]


@dataclass
class InspectReport:
    path: str
    documents: int
    queries: int
    doc_words: dict[str, float]
    query_words: dict[str, float]
    splits: list[SplitReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _stats(values: list[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    a = np.asarray(values)
    return {
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def inspect_dataset(
    folder: str | Path, *, model: str | Path | None = None, max_length: int | None = 256
) -> InspectReport:
    """Load every split leniently and describe it; problems are listed, not raised, where possible.
    Documents longer than ``max_length`` tokens of ``model``'s tokenizer (default: the packaged
    all-MiniLM-L6-v2) are counted: an encoder sees only their beginning (None: not counted)."""
    folder = Path(folder)
    splits = available_splits(folder)
    if not splits:
        raise DataError("no qrels/<split>.tsv found", path=folder)
    corpus = load_corpus(find_file(folder, "corpus.jsonl"))
    queries = load_queries(find_file(folder, "queries.jsonl"))
    report = InspectReport(
        path=str(folder),
        documents=len(corpus),
        queries=len(queries),
        doc_words=_stats([len(d.full_text.split()) for d in corpus.values()]),
        query_words=_stats([len(q.split()) for q in queries.values()]),
    )
    if max_length:
        from transformers import AutoTokenizer

        from rankwise.models.bi_encoder import count_truncated, default_model_path

        tokenizer = AutoTokenizer.from_pretrained(str(model or default_model_path()))
        texts = [d.full_text for d in corpus.values()]
        cut = count_truncated(tokenizer, texts, max_length)
        if cut:
            report.problems.append(
                f"{cut} of {len(texts)} documents are longer than {max_length} tokens "
                f"({Path(str(model)).name if model else 'all-MiniLM-L6-v2'}'s tokenizer): encoders see only their beginning"
            )
    by_text: dict[str, list[str]] = {}
    for did, doc in corpus.items():
        if doc.full_text.strip():
            by_text.setdefault(doc.full_text, []).append(did)
    groups = [ids for ids in by_text.values() if len(ids) > 1]
    if groups:
        examples = "; ".join(" = ".join(repr(d) for d in g[:3]) for g in groups[:3])
        report.problems.append(
            f"{sum(len(g) - 1 for g in groups)} documents repeat another document's text exactly ({len(groups)} texts, "
            f"e.g. {examples}): in training one is a false negative for the other's queries; "
            "same_text_same_doc=True treats them as one document"
        )
    for split in splits:
        try:
            ds = load_beir(folder, split, allow_missing=True, corpus=corpus, queries=queries)
        except DataError as exc:  # e.g. a qrels file with only its header
            report.problems.append(f"{split}: {exc}")
            continue
        report.problems.extend(f"{split}: {w}" for w in ds.warnings)
        labels = Counter(r for j in ds.qrels.values() for r in j.values())
        npos = [sum(1 for r in j.values() if r > 0) for j in ds.qrels.values()]
        no_pos = sum(1 for n in npos if n == 0)
        if no_pos:
            report.problems.append(
                f"{split}: {no_pos} queries have no relevant document (they score 0 on every metric)"
            )
        report.splits.append(
            SplitReport(split, len(ds.qrels), sum(labels.values()), no_pos, dict(sorted(labels.items())), _stats(npos))
        )
    return report
