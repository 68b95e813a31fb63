import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankwise.errors import ConfigError, DataError
from rankwise.metrics import evaluate, evaluate_per_query, parse_metric, rank

pytrec_eval = pytest.importorskip("pytrec_eval")

PAIRS = {  # rankwise name -> trec_eval measure
    "ndcg@10": "ndcg_cut_10",
    "ndcg@3": "ndcg_cut_3",
    "ndcg": "ndcg",
    "recall@5": "recall_5",
    "recall@100": "recall_100",
    "p@5": "P_5",
    "p@10": "P_10",
    "map": "map",
    "map@10": "map_cut_10",
    "rprec": "Rprec",
    "mrr": "recip_rank",
    "success@1": "success_1",
    "success@5": "success_5",
    "success@10": "success_10",
}


def test_hand_computed_values():
    qrels = {"q": {"a": 3, "b": 0, "c": 1, "z": 2}}  # z is never retrieved
    run = {"q": {"a": 0.2, "b": 0.9, "c": 0.5, "x": 0.1}}  # ranking: b, c, a, x
    got = evaluate(qrels, run, ["ndcg@3", "mrr@10", "recall@2", "p@2", "map"])
    dcg = 0 / math.log2(2) + 1 / math.log2(3) + 3 / math.log2(4)
    idcg = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    assert got["ndcg@3"] == pytest.approx(dcg / idcg, abs=1e-12)
    assert got["mrr@10"] == pytest.approx(1 / 2)
    assert got["recall@2"] == pytest.approx(1 / 3)
    assert got["p@2"] == pytest.approx(1 / 2)
    assert got["map"] == pytest.approx((1 / 2 + 2 / 3) / 3)


def test_ties_break_by_docid_descending():
    assert rank({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]
    # with all scores tied, only the docid decides: the relevant "a" is last
    assert evaluate({"q": {"a": 1}}, {"q": {"a": 0.0, "b": 0.0, "c": 0.0}}, ["mrr@10"])["mrr@10"] == pytest.approx(
        1 / 3
    )


def test_scores_compare_as_float32_like_trec_eval():
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0 + 1e-9, "b": 1.0}}  # equal in float32: the tie goes to docid "b"
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"]
    assert evaluate(qrels, run, ["mrr"])["mrr"] == pytest.approx(ref) == pytest.approx(0.5)
    assert evaluate(qrels, run, ["mrr"], float32=False)["mrr"] == 1.0


def test_query_counting_rules():
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {"c": 1}}
    run = {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q9": {"a": 1.0}}  # q3 missing from the run, q9 not judged
    per = evaluate_per_query(qrels, run, ["ndcg@10"])["ndcg@10"]
    assert per == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    assert evaluate(qrels, run, ["ndcg@10"])["ndcg@10"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("bad", ["ndcg@0", "recall", "foo@3", "p", "rprec@5", "judged"])
def test_bad_metric_names(bad):
    with pytest.raises(ConfigError):
        parse_metric(bad)


doc_ids = st.sampled_from([f"d{i:02d}" for i in range(40)] + ["D1", "d1", "a", "zz", "é"])


@st.composite
def qrels_and_run(draw):
    qrels, run = {}, {}
    for q in range(draw(st.integers(1, 4))):
        qid = f"q{q}"
        # up to 30 judged: queries with more than 8 retrieved judged take the sorting path of the kernel
        judged = draw(st.dictionaries(doc_ids, st.integers(0, 3), min_size=1, max_size=30))
        qrels[qid] = judged
        if draw(st.booleans()) or q == 0:
            # coarse scores make ties frequent; some retrieved documents are unjudged
            run[qid] = draw(
                st.dictionaries(
                    doc_ids,
                    st.integers(-3, 3).map(lambda x: x / 2) | st.sampled_from([1 + 1e-9, 1 - 1e-9, 1e-12]),
                    min_size=1,
                    max_size=40,
                )
            )
    if draw(st.booleans()):
        run["not-judged"] = {"d01": 1.0}  # a run query the qrels lack is ignored
    return qrels, run


def _brute_force(kind, k, qrels_q, run_q):
    """Reference for the two metrics trec_eval lacks, from the full trec_eval-ordered ranking."""
    ranked = rank(run_q)[:k]
    if kind == "judged":
        return sum(d in qrels_q for d in ranked) / k
    if not any(g >= 1 for g in qrels_q.values()):
        return 0.0
    dcg = sum((2 ** qrels_q.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked))
    ideal = sorted(qrels_q.values(), reverse=True)[:k]
    return dcg / sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(qrels_and_run())
def test_equals_trec_eval(data):
    qrels, run = data
    ref = pytrec_eval.RelevanceEvaluator(qrels, set(PAIRS.values())).evaluate(run)
    ours = evaluate_per_query(qrels, run, list(PAIRS) + ["mrr@10"])
    for qid, measures in ref.items():
        for name, trec_name in PAIRS.items():
            assert ours[name][qid] == pytest.approx(measures[trec_name], abs=1e-6), (qid, name)
    # MRR@10 is trec_eval's recip_rank on the run cut at 10 (trec_eval order)
    cut = {q: {d: r[d] for d in rank(r)[:10]} for q, r in run.items()}
    ref_rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    for qid, measures in ref_rr.items():
        assert ours["mrr@10"][qid] == pytest.approx(measures["recip_rank"], abs=1e-6)
    extra = evaluate_per_query(qrels, run, ["ndcg_exp@5", "judged@10"])
    for qid in qrels:
        assert extra["ndcg_exp@5"][qid] == pytest.approx(
            _brute_force("ndcg_exp", 5, qrels[qid], run.get(qid, {})), abs=1e-9
        )
        assert extra["judged@10"][qid] == pytest.approx(
            _brute_force("judged", 10, qrels[qid], run.get(qid, {})), abs=1e-12
        )


def test_no_relevant_and_missing_queries_are_counted_as_stated():
    qrels = {"q1": {"a": 0, "b": 0}, "q2": {"c": 1}}
    run = {"q1": {"a": 1.0, "x": 0.5}}  # q2 missing from the run
    per = evaluate_per_query(qrels, run, ["ndcg@10", "map", "rprec", "judged@2"])
    assert per["ndcg@10"] == {"q1": 0.0, "q2": 0.0} and per["map"] == {"q1": 0.0, "q2": 0.0}
    assert per["judged@2"] == {"q1": 0.5, "q2": 0.0}  # judged@k is counted even without a relevant document


def test_non_finite_score_names_query_and_document():
    with pytest.raises(DataError, match=r"query 'q2', document 'b'.*nan"):
        evaluate({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": {"a": 1.0}, "q2": {"a": 0.3, "b": float("nan")}})


def test_large_run_matches_trec_eval_on_the_sorting_path():
    rng = np.random.default_rng(3)
    qrels = {f"q{i}": {f"d{j}": int(rng.integers(0, 3)) for j in rng.choice(500, 60, replace=False)} for i in range(20)}
    run = {f"q{i}": {f"d{j}": float(s) for j, s in enumerate(np.round(rng.normal(size=500), 2))} for i in range(20)}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_10", "map", "P_100"}).evaluate(run)
    ours = evaluate_per_query(qrels, run, ["ndcg@10", "map", "p@100"])
    for qid, m in ref.items():
        assert ours["ndcg@10"][qid] == pytest.approx(m["ndcg_cut_10"], abs=1e-9)
        assert ours["map"][qid] == pytest.approx(m["map"], abs=1e-9)
        assert ours["p@100"][qid] == pytest.approx(m["P_100"], abs=1e-9)


def test_metrics_leave_torchs_thread_count_as_they_found_it():
    """numba's OpenMP pool resets the process's OpenMP thread count on its first run after torch's;
    a fresh process shows it (in this one the pool may be running already)."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "torch.ones(1000, 1000) @ torch.ones(1000, 1000)\n"
        "from rankwise.metrics import evaluate_per_query\n"
        "run = {f'q{i}': {f'd{j}': float(j % 7) for j in range(50)} for i in range(40)}\n"
        "qrels = {q: {f'd{j}': 1 for j in range(12)} for q in run}\n"
        "evaluate_per_query(qrels, run, ['ndcg@10'])\n"
        "print(torch.get_num_threads())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
