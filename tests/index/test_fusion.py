"""Fusion against ranx's (the peer) on the methods both have, by hand on a small case, tuning on dev,
and the fused first stage."""

import numpy as np
import pytest

from rankwise.errors import ConfigError
from rankwise.index.fusion import FusedStage, Fusion, normalize, parse_fusion, ranks, simplex


def _runs(seed: int = 0, queries: int = 8, docs: int = 40):
    """Three runs with overlapping, unequal candidate sets and no tied scores, sorted by score."""
    rng = np.random.default_rng(seed)
    runs = []
    for r in range(3):
        run = {}
        for q in range(queries):
            ids = rng.choice(docs, size=int(rng.integers(5, 25)), replace=False)
            scores = rng.normal(r * 3.0, 1.0 + r, len(ids))  # each run on its own scale
            order = np.argsort(-scores)
            run[f"q{q}"] = {f"d{ids[i]}": float(scores[i]) for i in order}
        runs.append(run)
    return runs


@pytest.mark.parametrize(
    ("ours", "theirs", "norm", "params"),
    [
        ("rrf", "rrf", None, {"k": 60}),
        ("rrf:k=10", "rrf", None, {"k": 10}),
        ("combsum:min-max", "sum", "min-max", {}),
        ("combsum:z-score", "sum", "zmuv", {}),
        ("combsum:sum", "sum", "sum", {}),
        ("combsum:max", "sum", "max", {}),
        ("combmnz:min-max", "mnz", "min-max", {}),
        ("combmnz:z-score", "mnz", "zmuv", {}),
        ("combsum:min-max,weights=0.2/0.5/0.3", "wsum", "min-max", {"weights": [0.2, 0.5, 0.3]}),
        ("combsum:z-score,weights=1/0/2", "wsum", "zmuv", {"weights": [1.0, 0.0, 2.0]}),
    ],
)
def test_fusion_equals_ranx(ours, theirs, norm, params):
    ranx = pytest.importorskip("ranx")
    runs = _runs()
    fused = parse_fusion(ours).fuse(runs)
    expected = ranx.fuse([ranx.Run(r) for r in runs], norm=norm, method=theirs, params=params).to_dict()
    assert fused.keys() == expected.keys()
    for q in fused:
        assert fused[q].keys() == expected[q].keys()
        for d in fused[q]:
            assert fused[q][d] == pytest.approx(expected[q][d], rel=1e-9, abs=1e-12)


def test_rrf_and_normalisations_by_hand():
    a = {"x": 3.0, "y": 1.0, "z": 2.0}
    b = {"y": 10.0, "w": 5.0}
    assert ranks(a) == {"x": 1, "z": 2, "y": 3}
    assert ranks({"a": 1.0, "b": 1.0}) == {"b": 1, "a": 2}  # a tie: the larger docid first, as trec_eval
    fused = Fusion("rrf", k=1).fuse_query([a, b])
    assert fused == pytest.approx({"x": 1 / 2, "z": 1 / 3, "y": 1 / 4 + 1 / 2, "w": 1 / 3})
    assert normalize(a, "min-max") == pytest.approx({"x": 1.0, "y": 0.0, "z": 0.5})
    assert normalize(a, "z-score") == pytest.approx({"x": 1.2247449, "y": -1.2247449, "z": 0.0})
    assert normalize(a, "sum") == pytest.approx({"x": 2 / 3, "y": 0.0, "z": 1 / 3})
    assert normalize({"only": 4.0}, "min-max") == {"only": 0.0}  # ranx's floor: no division by zero
    mnz = Fusion("combmnz", "min-max").fuse_query([a, b])
    assert mnz == pytest.approx({"x": 1.0, "z": 0.5, "y": 2 * (0.0 + 1.0), "w": 0.0})
    assert list(Fusion("rrf", k=1, depth=2).fuse_query([a, b])) == ["y", "x"]


def test_tune_picks_the_dev_best_and_prefers_equal_weights_on_ties():
    runs = _runs(1)
    # judge the first run's top document of each query: the best fusion leans on run 0
    qrels = {q: {next(iter(runs[0][q])): 1} for q in runs[0]}
    tuned = Fusion.tune(runs, qrels, methods=("rrf", "combsum"), norms=("min-max", "z-score"), step=0.25)
    from rankwise.metrics import evaluate

    assert tuned.dev_value == pytest.approx(evaluate(qrels, tuned.fusion.fuse(runs), ["ndcg@10"])["ndcg@10"])
    assert tuned.dev_value == pytest.approx(1.0) and tuned.fusion.weights[0] == max(tuned.fusion.weights)
    assert tuned.tried == len(simplex(3, 0.25)) * (3 + 2)  # rrf x 3 ks + combsum x 2 norms
    same = Fusion.tune([runs[0], runs[0]], qrels, step=0.5)
    assert same.fusion.weights == (0.5, 0.5)  # every weighting scores the same: equal weights stay


def test_parse_fusion_errors_name_the_part():
    assert parse_fusion("combsum:norm=z-score,weights=0.3/0.7") == Fusion("combsum", "z-score", (0.3, 0.7))
    for bad, part in [
        ("borda", "unknown method"),
        ("rrf:q=2", "unknown parameter 'q'"),
        ("combsum:weights=a/b", "weights"),
    ]:
        with pytest.raises(ConfigError, match=part):
            parse_fusion(bad)


class _Fixed:
    def __init__(self, name, run):
        self.name, self.run, self.prepared = name, run, False

    def prepare(self, dataset):
        self.prepared = True

    def search(self, qid, query, depth):
        return dict(list(self.run[qid].items())[:depth])


def test_fused_stage_fuses_its_stages_at_the_pipeline_depth():
    runs = _runs(2)
    stages = [_Fixed(f"s{i}", r) for i, r in enumerate(runs)]
    fused = FusedStage(stages, Fusion("combsum", "z-score"))
    fused.prepare(None)
    assert all(s.prepared for s in stages) and fused.name == "fuse(combsum: s0+s1+s2)"
    got = fused.search("q3", "text", 5)
    cut = [dict(list(r["q3"].items())[:5]) for r in runs]
    expected = Fusion("combsum", "z-score").fuse_query(cut)
    top = sorted(expected, key=lambda d: (expected[d], d), reverse=True)[:5]
    assert got == pytest.approx({d: expected[d] for d in top})
    with pytest.raises(ConfigError, match="at least two"):
        FusedStage(stages[:1])
