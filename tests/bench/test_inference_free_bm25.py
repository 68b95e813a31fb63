import pytest

from benchmarks.inference_free_bm25 import verdict


def _run(per_query: dict[str, float], ndcg: float) -> dict:
    return {"test": {"metrics": {"ndcg@10": ndcg, "recall@100": 0.5}, "per_query": {"ndcg@10": per_query}}}


def test_the_verdict_averages_the_seeds_and_counts_a_query_a_run_missed_as_zero():
    runs = [_run({"a": 1.0, "b": 0.5, "c": 0.0}, 0.5), _run({"a": 0.5, "b": 1.0}, 0.5)]  # seed 2 missed c
    base = {"test": {"per_query": {"ndcg@10": {"a": 0.5, "b": 0.5, "c": 0.5}}}}
    got = verdict(runs, base)
    # the model's per-query means over seeds: a 0.75, b 0.75, c 0.0 -> 0.5; BM25's 0.5
    assert got["minus_bm25"]["difference"] == pytest.approx(0.0)
    assert got["seeds"] == [0.5, 0.5] and got["ndcg@10"] == 0.5
    lo, hi = got["minus_bm25"]["ci95"]
    assert lo < 0 < hi and 0 < got["minus_bm25"]["p"] <= 1


def test_a_model_above_bm25_on_every_query_and_seed_has_a_positive_interval():
    runs = [_run({q: 0.9 + 0.01 * i for i, q in enumerate("abcdefghij")}, 0.95) for _ in range(3)]
    base = {"test": {"per_query": {"ndcg@10": {q: 0.2 + 0.05 * i for i, q in enumerate("abcdefghij")}}}}
    got = verdict(runs, base)["minus_bm25"]
    assert got["difference"] == pytest.approx(0.945 - 0.425)
    assert got["ci95"][0] > 0 and got["p"] < 0.01
