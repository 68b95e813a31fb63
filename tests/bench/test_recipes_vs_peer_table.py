"""benchmarks/recipes_vs_peer.py --table: the README tables say what the results file holds, and a
study still running prints its dev choices and status, not an empty table."""

from __future__ import annotations

from benchmarks.recipes_vs_peer import markdown


def _side(ndcg: float, recipe: str, curve: list[float]) -> dict:
    side = {"recipe": recipe, "dev_ndcg@10": ndcg + 0.05, "pooled_auc": 0.97, "pooled_auc_ci": [0.96, 0.98]}
    for metric, value in (("ndcg@10", ndcg), ("recall@100", 0.9), ("map", 0.6)):
        side[metric] = value
        side[f"{metric}_ci"] = [value - 0.01, value + 0.01]
    side["dev_curve_seed0"] = [{"step": 50 * (i + 1), "dev_ndcg@10": v} for i, v in enumerate(curve)]
    return side


def test_a_finished_dataset_gets_rows_difference_and_curves():
    entry = {
        "steps": 600,
        "dev_base_ndcg@10": 0.65,
        "dev_choices": {"peer": {"top-30": 0.7313}, "rankwise": {"bm25": 0.74}},
        "peer": _side(0.6679, "MNRL + mine_hard_negatives(top-30)", [0.726, 0.7313]),
        "rankwise": _side(0.6824, "bm25", [0.7197, 0.74]),
        "p_value": 0.0123,
        "rankwise_minus_peer_ndcg@10": 0.6824 - 0.6679,
    }
    result = {
        "datasets": {"stdlib-code": entry},
        "trec-dl-5k": {
            "peer": {"ndcg@10": 0.7895, "seed_std": 0.001},
            "rankwise": {"ndcg@10": 0.79, "seed_std": 0.002},
        },
    }
    entry["by_train_positive"] = {
        "seen": {"queries": 196, "peer": 0.9101, "rankwise": 0.8865, "p_value": 0.002},
        "unseen": {"queries": 104, "peer": 0.6488, "rankwise": 0.6577, "p_value": 0.6},
    }
    text = markdown(result)
    assert (
        "- stdlib-code: test nDCG@10 by whether a query's positive is also a training positive: "
        "seen (196 queries) peer 0.9101, rankwise 0.8865 (-2.36, p 0.0020); "
        "unseen (104 queries) peer 0.6488, rankwise 0.6577 (+0.89, p 0.6000)"
    ) in text
    rows = [line for line in text.splitlines() if line.startswith("| stdlib-code |")]
    assert len(rows) == 2
    assert "| peer | MNRL + mine_hard_negatives(top-30) | 0.6679 [0.6579, 0.6779] |" in rows[0]
    assert "| rankwise | bm25 | 0.6824 [0.6724, 0.6924] |" in rows[1]
    assert rows[1].endswith("| 0.9700 [0.9600, 0.9800] | 0.7324 |")  # pooled AUC, then dev nDCG@10
    assert "rankwise minus peer, test nDCG@10: +1.45 points (p 0.0123)" in text
    assert "- stdlib-code, peer: 0 0.6500, 50 0.7260, 100 0.7313" in text  # step 0: the untrained model
    assert "peer 0.7895 (seed std 0.0010), rankwise 0.7900 (seed std 0.0020)" in text


def test_an_unfinished_dataset_prints_its_choices_and_status_without_a_table():
    entry = {
        "steps": 150,
        "dev_base_ndcg@10": 0.6,
        "dev_choices": {"peer": {}, "rankwise": {"bm25": 0.71}},
        "status": "choices on dev not finished",
    }
    text = markdown({"datasets": {"scifact": entry}, "trec-dl-5k": {}})
    assert "|---|" not in text and "Dev nDCG@10 by step" not in text
    assert "- scifact: dev nDCG@10 of the candidates (seed 0): peer: none finished; rankwise: bm25 0.7100" in text
    assert "- scifact: choices on dev not finished" in text
