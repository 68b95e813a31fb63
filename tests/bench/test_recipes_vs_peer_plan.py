"""benchmarks/recipes_vs_peer.py's plan: which runs a session starts, in what order, from what the
committed records already hold; and the kept records' pool scores keep every AUC exact."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

import benchmarks.recipes_vs_peer as rvp
from benchmarks._cache import RunCache
from benchmarks._retrieval import METRICS

DEV = {"bm25+ngame+fn": 0.74, "dense+ngame+fn": 0.72, "dynamic+ngame+fn": 0.73, "top-30": 0.7313, "10-50,margin": 0.7}


def _record(dev: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    qids = [f"q{i}" for i in range(8)]
    per_query: dict = {m: {q: float(rng.random()) for q in qids} for m in METRICS}
    per_query["pools"] = {q: [[float(rng.random())], rng.random(3).tolist()] for q in qids}
    test = {m: float(np.mean(list(per_query[m].values()))) for m in METRICS} | {"pooled_auc": 0.9}
    return {"train_seconds": 60.0, "dev": {"ndcg@10": dev}, "test": test, "per_query": per_query, "curve": []}


@pytest.fixture
def study(monkeypatch, tmp_path):
    """compare_on on a stand-in dataset: each run is recorded, not trained."""
    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "machine"))
    cache = RunCache("recipes_vs_peer", keep=tmp_path / "runs", shrink=rvp.shrink_any)
    started: list[tuple[str, int]] = []

    def fake_run(cache: RunCache, settings: dict, data, trec) -> dict:
        name = settings.get("recipe") or settings["peer"]
        started.append((name, settings["seed"]))
        found = _record(DEV[name] + 0.001 * settings["seed"], len(started))
        cache.put(settings, found)
        return found

    # training taught d0 and d1 (t1's d2 is judged not relevant): q0 and q1 are "seen", q2-q7 not
    train = SimpleNamespace(qrels={"t0": {"d0": 1, "d1": 2}, "t1": {"d2": 0}})
    test = SimpleNamespace(qrels={f"q{i}": {f"d{i}": 1} for i in range(8)})
    monkeypatch.setattr(rvp, "splits", lambda name: {"train": train, "test": test})
    monkeypatch.setattr(rvp, "base_dev", lambda *a: 0.65)
    monkeypatch.setattr(rvp, "one_run", fake_run)
    return cache, started


def test_dev_only_records_serve_the_choice_and_the_chosen_seed_0_is_rerun(study):
    cache, started = study
    # a lost machine's runs, their dev figures kept: rankwise's losers and its choice
    for recipe in ("dense+ngame+fn", "dynamic+ngame+fn", "bm25+ngame+fn"):
        cache.put(rvp.run_settings("scifact", {"recipe": recipe, "seed": 0}), {"dev": {"ndcg@10": DEV[recipe]}})
    entry, transfer = rvp.compare_on("scifact", cache, None, deadline=float("inf"))
    # rankwise's choice is made from the kept figures: its seeds run first, seed 0 again for its test
    # figures; the peer's dev candidates after, then its choice's other seeds
    assert started == [
        ("bm25+ngame+fn", 0),
        ("bm25+ngame+fn", 1),
        ("bm25+ngame+fn", 2),
        ("top-30", 0),
        ("10-50,margin", 0),
        ("top-30", 1),
        ("top-30", 2),
    ]
    assert entry["rankwise"]["recipe"] == "bm25+ngame+fn" and entry["peer"]["recipe"].endswith("(top-30)")
    assert entry["dev_choices"]["rankwise"] == {k: DEV[k] for k in rvp.RECIPES}
    assert transfer is None and 0 <= entry["p_value"] <= 1


def test_the_difference_is_broken_down_by_queries_whose_positive_training_taught(study):
    cache, _ = study
    entry, _ = rvp.compare_on("scifact", cache, None, deadline=float("inf"))
    runs = {
        side: [cache.get(rvp.run_settings("scifact", {key: choice, "seed": s})) for s in rvp.SEEDS]
        for side, key, choice in (("peer", "peer", "top-30"), ("rankwise", "recipe", "bm25+ngame+fn"))
    }
    groups = entry["by_train_positive"]
    assert {g: v["queries"] for g, v in groups.items()} == {"seen": 2, "unseen": 6}
    for group, qids in (("seen", ["q0", "q1"]), ("unseen", [f"q{i}" for i in range(2, 8)])):
        for side, side_runs in runs.items():
            by_hand = np.mean([[r["per_query"]["ndcg@10"][q] for r in side_runs] for q in qids])
            assert groups[group][side] == pytest.approx(by_hand)
        assert 0 < groups[group]["p_value"] <= 1
    # the whole set's mean is the queries-weighted mean of the two groups'
    whole = (2 * groups["seen"]["rankwise"] + 6 * groups["unseen"]["rankwise"]) / 8
    assert whole == pytest.approx(entry["rankwise"]["ndcg@10"])


def test_queries_split_by_training_positives():
    train = {"t0": {"a": 1, "b": 0}, "t1": {"c": 2}}
    test = {"x": {"a": 1, "z": 1}, "y": {"b": 1}, "w": {"c": 0, "z": 1}, "v": {"c": 0}}
    # b is judged in training but not relevant, so y is unseen; v has no positive, so no group
    assert rvp.by_train_positive(train, test) == {"seen": ["x"], "unseen": ["w", "y"]}
    assert rvp.breakdown({"seen": [], "unseen": ["w", "y"]}, [], []) == {}  # nothing to break down


def test_a_session_out_of_time_reports_where_the_study_stands(study):
    cache, started = study
    for recipe in rvp.RECIPES:
        cache.put(rvp.run_settings("scifact", {"recipe": recipe, "seed": 0}), {"dev": {"ndcg@10": DEV[recipe]}})
    for peer in rvp.PEER_GRID:
        cache.put(rvp.run_settings("scifact", {"peer": peer, "seed": 0}), _record(DEV[peer], 0))
    entry, _ = rvp.compare_on("scifact", cache, None, deadline=0.0)
    assert started == [] and "p_value" not in entry
    assert entry["status"] == (
        "rankwise: bm25+ngame+fn chosen on dev, 0 of 3 seeds run; peer: top-30 chosen on dev, 1 of 3 seeds run"
    )
    cache.put(rvp.run_settings("scifact", {"recipe": "bm25+ngame+fn", "seed": 1}), _record(0.74, 1))
    lost = rvp.run_settings("scifact", {"peer": "10-50,margin", "seed": 0})
    (cache.root / cache.key(lost) / "result.json").unlink()
    cache.kept(lost).unlink()
    entry, _ = rvp.compare_on("scifact", cache, None, deadline=0.0)
    assert started == [] and entry["dev_choices"]["peer"] == {"top-30": DEV["top-30"]}
    assert entry["status"] == (
        "rankwise: bm25+ngame+fn chosen on dev, 1 of 3 seeds run; peer: 1 of 2 dev candidates measured"
    )


def test_a_run_over_one_dataset_writes_only_what_this_code_made(monkeypatch, tmp_path):
    """An earlier file's entries (other code, perhaps) are never merged into a new one."""
    out = tmp_path / "recipes_vs_peer.json"
    earlier = {"stdlib-code": {"steps": 600, "p_value": 0.0556}}
    out.write_text(rvp.json.dumps({"datasets": earlier, "trec-dl-5k": {"peer": {"ndcg@10": 0.7894}}}))
    monkeypatch.setattr(rvp, "OUT", out)
    monkeypatch.setattr(rvp, "load_beir", lambda *a: None)
    monkeypatch.setattr(rvp, "machine", lambda: {"cores": 2})
    monkeypatch.setattr(rvp, "compare_on", lambda name, *a: ({"steps": 150, "status": "running"}, None))
    monkeypatch.setattr(sys, "argv", ["recipes_vs_peer.py", "--datasets", "scifact"])
    rvp.main()
    result = rvp.json.loads(out.read_text())
    assert result["datasets"] == {"scifact": {"steps": 150, "status": "running"}}
    assert result["trec-dl-5k"] == {}
