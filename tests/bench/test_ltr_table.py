"""The LTR benchmark's README tables come from its results file, cell for cell."""

from __future__ import annotations

from benchmarks.ltr import markdown


def _row(ndcg10: float, p: float | None = None, holm: float | None = None) -> dict:
    row = {"ndcg@5": 0.61, "ndcg@10": ndcg10, "ndcg@10_ci": [ndcg10 - 0.04, ndcg10 + 0.04], "map": 0.6}
    row["valid_ndcg@10"] = 0.7
    if p is not None:
        row |= {"ndcg@10_p_vs_lambdamart": p, "ndcg@10_p_holm": holm}
    return row


def test_markdown_renders_each_dataset_with_holm_and_choices():
    tune = [{"dropout": 0.3, "lr": 0.003}, {"dropout": 0.1, "lr": 0.001}, {"dropout": 0.3, "lr": 0.003}]
    result = {
        "datasets": {
            "cv": {
                "folds": 5,
                "lambdamart": _row(0.7051) | {"params": [{}] * 25, "at_ladder_end": 3},
                "valid_choice_per_fold": _row(0.7087, 0.652, 1.0) | {"systems": ["mlp+listmle", "attention+mw"]},
                "rankwise": {"mlp+listmle": _row(0.7142, 0.186, 0.93) | {"tune": tune}},
                "best_on_valid": "mlp+listmle",
            }
        }
    }
    lines = markdown(result).splitlines()
    assert lines[0] == "**cv** (LambdaMART's choices over seeds and folds: 3 of 25 choices at a ladder's end)"
    assert lines[4] == "| LambdaMART (lightgbm) | 0.6100 | 0.7051 [0.665, 0.745] | 0.6000 | 0.7000 |  |  |"
    assert lines[5].startswith("| **validation choice per fold** | 0.6100 | 0.7087 [0.669, 0.749]")
    assert lines[5].endswith("| mlp+listmle, attention+mw | 0.652 / 1 |")
    assert lines[6] == (
        "| mlp+listmle (best on valid) | 0.6100 | 0.7142 [0.674, 0.754] | 0.6000 | 0.7000 "
        "| 0.1/0.001, 0.3/0.003 | 0.186 / 0.93 |"
    )
