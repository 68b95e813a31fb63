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


def _metrics(ndcg: float, recall: float = 0.9) -> dict:
    return {"ndcg@10": ndcg, "recall@100": recall}


def test_the_table_marks_the_dev_choice_and_states_the_difference_in_points():
    from benchmarks.inference_free_bm25_table import markdown, verdict_line

    result = {
        "candidates": [
            {"bm25_steps": 300, "steps": 60, "teacher": None, "dev": _metrics(0.6), "test": _metrics(0.7)},
            {"bm25_steps": 300, "steps": 60, "teacher": "ensemble", "dev": _metrics(0.65), "test": _metrics(0.6)},
        ],
        "chosen": {"bm25_steps": 300, "steps": 60, "teacher": "ensemble"},
        "settings": {"seeds": [42, 43, 44]},
        "runs": [{"dev": {"metrics": _metrics(d)}} for d in (0.65, 0.63, 0.64)],
        "test": {
            "ndcg@10": 0.61, "recall@100": 0.8, "seeds": [0.6, 0.62, 0.61],
            "minus_bm25": {"difference": -0.0123, "ci95": [-0.03, 0.005], "p": 0.2},
        },
        "bm25": {"dev": {"metrics": _metrics(0.62)}, "test": {"metrics": _metrics(0.6223, 0.85)}},
    }  # fmt: skip
    rows = markdown(result).splitlines()
    assert rows[2] == "| 60 steps | 0.6000 | 0.7000 | 0.9000 |"
    assert rows[3] == "| **60 steps, ensemble teacher** | 0.6500 | 0.6000 | 0.9000 |"
    assert rows[4] == "| chosen, seeds 42/43/44 (mean) | 0.6400 | **0.6100** (0.6000, 0.6200, 0.6100) | 0.8000 |"
    assert rows[5] == "| BM25 (bm25s, words) | 0.6200 | 0.6223 | 0.8500 |"
    assert verdict_line(result).startswith("-1.23 nDCG@10 points on test (95% interval -3.00 to +0.50; p 0.200")


def test_the_readme_section_is_rendered_from_the_results_file():
    import json
    from pathlib import Path

    from benchmarks.inference_free_bm25 import OUT
    from benchmarks.inference_free_bm25_table import markdown, verdict_line

    result = json.loads(OUT.read_text(encoding="utf-8"))
    text = (Path(__file__).resolve().parents[2] / "benchmarks" / "README.md").read_text(encoding="utf-8")
    lines = set(text.splitlines())
    assert all(row in lines for row in markdown(result).splitlines())
    assert verdict_line(result) in " ".join(text.split())
    assert len(result["runs"]) == 3 and result["commit"] and result["versions"]["bm25s"]
