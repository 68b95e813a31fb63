"""Pseudo-queries from a corpus alone (cropping, inverse cloze), the consistency filter, and
``rankwise adapt`` training on them without reading a qrels file."""

import json
import shutil

import pytest

from rankwise.data.beir import Document
from rankwise.data.pseudo import consistent, crop_queries
from rankwise.errors import ConfigError
from tests.conftest import make_tiny_causal_lm, run_cli

CORPUS = {
    "a": Document("The river runs to the ocean. Salmon swim up the river in autumn. Bears wait by the falls."),
    "b": Document("Python parses source code into a tree. The tree is compiled to bytecode."),
    "c": Document("short"),
}


def test_crop_spans_are_words_of_their_document_and_seeded():
    ex = crop_queries(CORPUS, per_doc=3, min_words=2, max_words=5, seed=1)
    assert {e.positives[0][0] for e in ex} == {"a", "b"}  # "short" is too short to crop
    for e in ex:
        text = CORPUS[e.positives[0][0]].full_text
        assert 2 <= len(e.query.split()) <= 5 and e.query in " ".join(text.split())
    assert [e.query for e in ex] == [e.query for e in crop_queries(CORPUS, per_doc=3, min_words=2, max_words=5, seed=1)]
    assert [e.query for e in ex] != [e.query for e in crop_queries(CORPUS, per_doc=3, min_words=2, max_words=5, seed=2)]
    with pytest.raises(ConfigError, match="method"):
        crop_queries(CORPUS, method="generate")


def test_inverse_cloze_removes_the_query_sentence():
    ex = crop_queries(CORPUS, method="ict", seed=0)
    assert {e.positives[0][0].split(":")[1] for e in ex} == {"a", "b"}
    for e in ex:
        assert e.query not in e.positives[0][1] and e.query in CORPUS[e.positives[0][0].split(":")[1]].full_text


def test_crop_out_removes_the_span_from_its_positive():
    from rankwise.data.pseudo import pseudo_dataset, source_id

    corpus = CORPUS | {"doc:7": Document("one two three four five six seven eight nine ten")}
    ex = crop_queries(corpus, method="crop-out", min_words=2, max_words=4, seed=3)
    plain = crop_queries(corpus, method="crop", min_words=2, max_words=4, seed=3)
    assert [e.query for e in ex] == [e.query for e in plain]  # the same spans as crop
    for e, p in zip(ex, plain):
        (pid, rest), words = e.positives[0], corpus[source_id(e)].full_text.split()
        start, n = int(pid.rsplit(":", 1)[1]), len(e.query.split())
        assert rest.split() == words[:start] + words[start + n :] and source_id(e) == p.positives[0][0]
    assert {source_id(e) for e in ex} == {"a", "b", "doc:7"}
    assert pseudo_dataset(corpus, ex).qrels == {e.query_id: {source_id(e): 1} for e in ex}


def test_consistency_keeps_what_the_model_finds(tiny_model_dir):
    import rankwise as rw

    model = rw.BiEncoder.load(tiny_model_dir)
    ex = crop_queries(CORPUS, per_doc=2, min_words=2, max_words=4)
    assert consistent(ex, model, CORPUS, k=3) == ex  # top 3 of 3 documents: everything is found
    kept = consistent(ex, model, CORPUS, k=1)
    assert set(map(id, kept)) <= set(map(id, ex))
    from rankwise.index.retrieve import DenseRetriever

    retriever = DenseRetriever(model, list(CORPUS), [d.full_text for d in CORPUS.values()])
    for e in kept:
        rows, _, _ = retriever.search([e.query], 1, states=False)
        assert list(CORPUS)[int(rows[0][0])] == e.positives[0][0]


def test_the_hybrid_filter_keeps_what_bm25_finds_first(tiny_model_dir):
    """``by="hybrid"`` fuses BM25 and the model (CombSUM over each one's min-max top k). At k = 2 a
    source BM25 ranks first of two hits scores at least 1, which only the model's first document can
    tie, so it is kept whatever the model does; a source in neither top 2 is in no list, never kept."""
    import rankwise as rw
    from rankwise.index.retrieve import BM25Retriever, DenseRetriever

    corpus = {
        f"d{i}": Document(text)
        for i, text in enumerate([
            "Glaciers carve valleys as the ice moves slowly downhill over centuries.",
            "Compilers translate source programs into machine instructions before running.",
            "Bees gather nectar and pollen, and the hive turns nectar into honey.",
            "Volcanoes erupt when magma pressure breaks through the crust of the earth.",
            "Chess openings fight for the centre while pieces develop toward safe squares.",
            "Bread dough rises because yeast ferments sugar and releases carbon dioxide gas.",
        ])
    }  # fmt: skip
    model = rw.BiEncoder.load(tiny_model_dir)
    ex = crop_queries(corpus, per_doc=4, min_words=1, max_words=2, seed=4)
    ids, texts = list(corpus), [d.full_text for d in corpus.values()]
    queries = [e.query for e in ex]
    bm25, _, _ = BM25Retriever(ids, texts).search(queries, 2, states=False)
    dense, _, _ = DenseRetriever(model, ids, texts).search(queries, 2, states=False)
    hybrid = consistent(ex, model, corpus, k=2, by="hybrid")
    for e, b, d in zip(ex, bm25, dense):
        src = e.positives[0][0]
        if ids[b[0]] == src and b[1] >= 0:  # (one hit alone min-max-normalises to 0, as in ranx)
            assert e in hybrid
        if src not in {ids[j] for j in (*b, *d)}:
            assert e not in hybrid
    by_model = consistent(ex, model, corpus, k=2)
    assert [e for e in hybrid if e not in by_model]  # queries the model misses and BM25 finds
    with pytest.raises(ConfigError, match="consistency filter 'teacher'"):
        consistent(ex, model, corpus, by="teacher")


def test_consistency_with_the_cache_encodes_the_corpus_once_and_keeps_the_same(tiny_model_dir, monkeypatch, tmp_path):
    import rankwise as rw
    from rankwise.data.beir import Dataset
    from rankwise.index.retrieve import dense_run

    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path))
    model = rw.BiEncoder.load(tiny_model_dir)
    ex = crop_queries(CORPUS, per_doc=2, min_words=2, max_words=4)
    plain = consistent(ex, model, CORPUS, k=1)
    assert consistent(ex, model, CORPUS, k=1, cache=True) == plain
    calls = []
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda texts, side, **kw: calls.append(side) or encode(texts, side, **kw))
    assert consistent(ex, model, CORPUS, k=1, cache=True) == plain
    dense_run(model, Dataset(dict(CORPUS), {"q": "sorting"}, {"q": {"a": 1}}), 2, show_progress=False, cache=True)
    assert "doc" not in calls  # the filter's and the evaluation's corpus come from the cache


def test_adapt_trains_without_reading_qrels(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    shutil.rmtree(toy_beir / "qrels")  # the corpus alone
    out = tmp_path / "adapted"
    code, text = run_cli(
        monkeypatch, capsys, "adapt", "--data", toy_beir, "--out", out, "--model", tiny_model_dir, "--steps", 2,
        "--batch-size", 2, "--filter-k", 0, "--query-max-length", 16, "--doc-max-length", 16,
    )  # fmt: skip
    assert code == 0, text
    summary = json.loads((out / "metrics.json").read_text())
    lines = (out / "pseudo_queries.jsonl").read_text().splitlines()
    assert (
        summary["kept"] == summary["pseudo_queries"] == len(lines) == 4 and summary["steps"] == 2
    )  # the 4 titled texts have 5+ words
    assert (out / "model").is_dir() and "adapt" in (out / "config.toml").read_text()


@pytest.mark.slow
def test_the_documented_example_runs_as_written(tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "adapt.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("pseudo-queries kept") and int(out.stdout.split()[-3]) > 0


def test_adapt_mines_hard_negatives_for_the_pseudo_queries(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    """The negatives strategy mines the corpus for each pseudo-query (never its source document) and a
    teacher labels them for Margin-MSE, as GPL does."""
    shutil.rmtree(toy_beir / "qrels")
    out = tmp_path / "adapted"
    code, text = run_cli(
        monkeypatch, capsys, "adapt", "--data", toy_beir, "--out", out, "--model", tiny_model_dir, "--steps", 1,
        "--batch-size", 2, "--filter-k", 0, "--query-max-length", 16, "--doc-max-length", 16,
        "--negatives", f"dense:k=2,window=1-8,model={tiny_model_dir},max_length=16,teacher={tiny_model_dir}",
        "--loss", "margin_mse",
    )  # fmt: skip
    assert code == 0, text
    mined = [json.loads(line) for line in (out / "negatives.jsonl").read_text().splitlines()]
    pseudo = {json.loads(line)["query"] for line in (out / "pseudo_queries.jsonl").read_text().splitlines()}
    assert len(mined) == len(pseudo) == 4
    for row in mined:  # GPL's labels: the teacher scored each pseudo-query's positive and negatives
        assert len(row["negative_ids"]) == 2 and not set(row["negative_ids"]) & set(row["positive_ids"])
        assert len(row["scores"]["positives"]) == 1 and len(row["scores"]["negatives"]) == 2


def _tiny_causal_lm(folder):
    make_tiny_causal_lm(folder)
    return folder


def test_generated_queries_are_the_lms_greedy_continuations(tmp_path):
    """doc2query with a causal LM: a batch (left-padded) gives each document's greedy continuation
    of the prompt, as generating it alone does; sampling is seeded."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rankwise.data.pseudo import PROMPT, generate_queries

    lm_dir = _tiny_causal_lm(tmp_path / "lm")
    corpus = {f"d{i}": Document(t) for i, t in enumerate(["sorting a list in place", "open a file", "rain today"])}
    got = generate_queries(corpus, lm_dir, sample=False, max_new_tokens=6, batch_size=3)
    tok, lm = AutoTokenizer.from_pretrained(str(lm_dir)), AutoModelForCausalLM.from_pretrained(str(lm_dir)).eval()
    by_hand = {}
    for did, doc in corpus.items():
        ids = torch.tensor([tok(PROMPT.format(doc=doc.text), add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            out = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)
        text = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip().split("\n")[0].strip()
        if text:
            by_hand[did] = text
    assert {ex.positives[0][0]: ex.query for ex in got} == by_hand and by_hand
    first = generate_queries(corpus, lm_dir, per_doc=2, seed=1)
    assert [ex.query for ex in first] == [ex.query for ex in generate_queries(corpus, lm_dir, per_doc=2, seed=1)]
    assert {ex.query_id for ex in first} <= {f"gen:d{i}:{j}" for i in range(3) for j in range(2)}


def test_adapt_with_a_generator(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    shutil.rmtree(toy_beir / "qrels")
    lm_dir = _tiny_causal_lm(tmp_path / "lm")
    out = tmp_path / "adapted"
    code, text = run_cli(
        monkeypatch, capsys, "adapt", "--data", toy_beir, "--out", out, "--model", tiny_model_dir, "--steps", 1,
        "--batch-size", 2, "--filter-k", 0, "--query-max-length", 16, "--doc-max-length", 16,
        "--method", "generate", "--generator", lm_dir,
    )  # fmt: skip
    assert code == 0, text
    made = [json.loads(line) for line in (out / "pseudo_queries.jsonl").read_text().splitlines()]
    assert made and all(row["query"].strip() for row in made) and "generate" in (out / "config.toml").read_text()
    code, text = run_cli(
        monkeypatch, capsys, "adapt", "--data", toy_beir, "--out", tmp_path / "x", "--method", "generate"
    )
    assert code != 0 and "--generator" in text


def test_adapted_model_folder_has_a_model_card_matching_metrics_json(
    monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path
):
    import re

    out = tmp_path / "adapted"
    code, text = run_cli(
        monkeypatch, capsys, "adapt", "--data", toy_beir, "--out", out, "--model", tiny_model_dir, "--steps", 2,
        "--batch-size", 2, "--filter-k", 3, "--filter-by", "hybrid", "--query-max-length", 16, "--doc-max-length", 16,
        "--eval-split", "test",
    )  # fmt: skip
    assert code == 0, text
    card = (out / "model" / "README.md").read_text()
    summary = json.loads((out / "metrics.json").read_text())
    rows = {line.split("|")[1].strip(): line for line in card.splitlines() if line.startswith("| ") and "[" in line}
    for row, side in (("starting model (baseline)", "before"), ("fine-tuned", "after")):
        means = [float(m) for m in re.findall(r"\| (\d\.\d{4}) \[", rows[row])]
        assert means == pytest.approx([summary[side][m] for m in ("ndcg@10", "mrr@10", "recall@100", "map")], abs=6e-5)
    assert "rankwise adapt --out NEW_RUN --data" in card and "--filter-k 3 --filter-by hybrid" in card
    assert 0 < summary["kept"] <= summary["pseudo_queries"] and "pseudo_queries" in card
    code, text = run_cli(
        monkeypatch, capsys, "adapt", "--data", toy_beir, "--out", tmp_path / "x", "--filter-by", "bm25"
    )
    assert code != 0 and "--filter-by 'bm25': expected one of model, hybrid" in text


def test_a_teacher_mining_crop_out_queries_scores_the_positive_they_train_on(tmp_path):
    """The source holds the query word for word; the teacher must score the source less the
    query, as the student sees it, and still never offer the source as a negative."""
    from rankwise.data.pseudo import pseudo_dataset, source_id
    from rankwise.negatives.mining import MineOptions, mine
    from rankwise.negatives.teacher import load_teacher

    corpus = CORPUS | {f"n{i}": Document(f"river salmon note {i} about autumn and bears") for i in range(6)}
    ex = crop_queries(corpus, method="crop-out", min_words=3, max_words=4, seed=0)
    ds = pseudo_dataset(corpus, ex)
    assert ds.positive_texts == {e.query_id: {source_id(e): e.positives[0][1]} for e in ex}
    assert pseudo_dataset(corpus, crop_queries(corpus, method="crop")).positive_texts == {}
    mine(ds, MineOptions(method="bm25", k=2, window=(1, 8), teacher="bm25"), tmp_path / "n.jsonl", show_progress=False)
    bm25 = load_teacher("bm25")
    bm25.prepare(ds)
    rows = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
    by_id = {e.query_id: e for e in ex}
    for row in rows:
        e = by_id[row["query_id"]]
        rest, source = bm25.score(e.query, [e.positives[0][1], corpus[source_id(e)].full_text])
        assert row["scores"]["positives"] == pytest.approx([rest], rel=1e-6) and rest < source
        assert source_id(e) not in row["negative_ids"]
