"""The audited figures are measured the way benchmarks/README.md says: on today's code, repeated,
with the peer beside them, and tuned apart from what they report."""

from __future__ import annotations

import json

from benchmarks.settings import RESULTS


def _load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def test_throughput_is_repeated_at_both_lengths_on_todays_code():
    result = _load("train_throughput")
    assert result["machine"]["date"][:10] >= "2026-12-05" and result["commit"]
    assert result["repeats"] >= 3 and result["token_lengths"] == [128, 256]
    for name, entry in result["settings"].items():
        for side in ("rankwise", "peer"):
            assert len(entry[side]["runs"]) == result["repeats"], (name, side)
        ratios = [
            a["examples_per_s"] / b["examples_per_s"] for a, b in zip(entry["rankwise"]["runs"], entry["peer"]["runs"])
        ]
        assert entry["speedup_range"] == [min(ratios), max(ratios)]


def test_large_batch_has_the_peers_cached_loss():
    result = _load("large_batch")
    assert "CachedMultipleNegativesRankingLoss" in result["peer"]["loss"]
    assert result["peer"]["seconds_per_step"] and result["cached"]["seconds_per_step"]
    assert result["plain_fits"]["seconds_per_step"]  # the plain path's speed where it fits


def test_scale_reports_recall_on_queries_it_was_not_tuned_on_and_queries_per_second():
    result = _load("scale")
    assert "disjoint" in result["settings"]["queries"] or "report" in result["settings"]["queries"]
    for size in result["sizes"]:
        assert "recall@10_disjoint" in size and size["qps"] > 0
        kinds = {i["kind"] for i in size["indexes"]}
        if size["docs"] >= 100_000:
            assert {"flat", "hnsw"} <= kinds  # the approximate index against flat search
        for index in size["indexes"]:
            assert 0 <= index["recall@10_disjoint"] <= 1 and index["qps"] > 0
