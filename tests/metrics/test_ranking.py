import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankwise.errors import ConfigError
from rankwise.metrics import evaluate, evaluate_per_query, parse_metric, rank

pytrec_eval = pytest.importorskip("pytrec_eval")

PAIRS = {  # rankwise name -> trec_eval measure
    "ndcg@10": "ndcg_cut_10", "ndcg@3": "ndcg_cut_3", "ndcg": "ndcg", "recall@5": "recall_5", "recall@100": "recall_100",
    "p@5": "P_5", "p@10": "P_10", "map": "map", "map@10": "map_cut_10",
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
    assert evaluate({"q": {"a": 1}}, {"q": {"a": 0.0, "b": 0.0, "c": 0.0}}, ["mrr@10"])["mrr@10"] == pytest.approx(1 / 3)


def test_query_counting_rules():
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}, "q3": {"c": 1}}
    run = {"q1": {"a": 1.0}, "q2": {"b": 1.0}, "q9": {"a": 1.0}}  # q3 missing from the run, q9 not judged
    per = evaluate_per_query(qrels, run, ["ndcg@10"])["ndcg@10"]
    assert per == {"q1": 1.0, "q2": 0.0, "q3": 0.0}
    assert evaluate(qrels, run, ["ndcg@10"])["ndcg@10"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("bad", ["ndcg@0", "recall", "foo@3", "p"])
def test_bad_metric_names(bad):
    with pytest.raises(ConfigError):
        parse_metric(bad)


doc_ids = st.sampled_from([f"d{i:02d}" for i in range(30)] + ["D1", "d1", "a", "zz"])


@st.composite
def qrels_and_run(draw):
    qrels, run = {}, {}
    for q in range(draw(st.integers(1, 4))):
        qid = f"q{q}"
        judged = draw(st.dictionaries(doc_ids, st.integers(0, 3), min_size=1, max_size=15))
        qrels[qid] = judged
        if draw(st.booleans()) or q == 0:
            # coarse scores make ties frequent; some retrieved documents are unjudged
            run[qid] = draw(st.dictionaries(doc_ids, st.integers(-3, 3).map(lambda x: x / 2), min_size=1, max_size=25))
    return qrels, run


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
    cut = {q: {d: s for d, s in list(sorted(r.items(), key=lambda kv: (kv[1], kv[0]), reverse=True))[:10]} for q, r in run.items()}
    ref_rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    for qid, measures in ref_rr.items():
        assert ours["mrr@10"][qid] == pytest.approx(measures["recip_rank"], abs=1e-6)
