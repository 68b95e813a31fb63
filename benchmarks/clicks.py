"""Unbiased learning to rank from simulated clicks: raw clicks, IPW with the true propensities,
IPW with regression-EM propensities, and the Dual Learning Algorithm.

Settings:
- ``pbm/lightgbm-rank``: ``lightgbm-rank``'s training rows displayed at their logged positions
  (``rank.train.position``, ranks 1-10), clicks from the position-based model with the ULTR
  literature's examination curve (eta 1, p_min 0.1, p_max 1.0, grades 0-4), 50 sessions per query;
  test on ``rank.test``'s true grades.
- ``pbm/mq2008-fold1``: MQ2008 ``vali.txt`` shown by a weak production ranker (a linear model
  trained on 10% of its queries' true grades), the same PBM (grades 0-2), 50 sessions per query;
  test on ``test.txt``.
- ``cascade/lightgbm-rank``: as the first, clicks from the cascade model (stop 0.5 after a click).

Every ranker is the same MLP (128-64) trained with the click-weighted softmax loss
(``softmax:normalize=false``, DLA's) for the same steps; nDCG@10 on test's true grades
(trec_eval conventions, queries with a relevant row), 5 seeds (mean and spread); DLA against raw
clicks and against the true propensities by the two-level bootstrap over test queries and seeds
together, the table's p-values Holm-adjusted together (``..._p_holm``). DLA's learned propensities are compared with the true
examination probabilities (Pearson r over ranks 1-10).

    python benchmarks/clicks.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
from benchmarks._cache import RunCache  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402
from benchmarks.settings import LETOR, REPO  # noqa: E402
from rankwise.data.clicks import displayed_lists, simulate_clicks  # noqa: E402
from rankwise.data.letor import Normalizer, read_letor  # noqa: E402
from rankwise.metrics.model import evaluate_lists  # noqa: E402
from rankwise.metrics.significance import holm, two_level_bootstrap  # noqa: E402
from rankwise.models.feature_scorer import LinearScorer, MLPScorer  # noqa: E402
from rankwise.training import TrainConfig, train  # noqa: E402
from rankwise.training.ultr import DLAModel, estimate_propensities_em, ipw_examples  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "clicks.json"
PEERS = ("lightgbm",)  # libraries besides torch/transformers/sentence-transformers whose figures it reports
SESSIONS, STEPS, SEEDS, TOP_K = 50, 600, (0, 1, 2, 3, 4), 10
LOSS = "softmax:normalize=false"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def setting(name: str):
    model_name, data_name = name.split("/")
    if data_name == "lightgbm-rank":
        train_d = read_letor(LETOR / "lightgbm-rank" / "rank.train")
        test = read_letor(LETOR / "lightgbm-rank" / "rank.test", n_features=train_d.n_features)
        norm = Normalizer("global").fit(train_d)
        train_d, test = norm.transform(train_d), norm.transform(test)
        shown = displayed_lists(train_d, top_k=TOP_K, use_positions=True)
        max_grade = 4
    else:
        train_d = read_letor(LETOR / "mq2008-fold1" / "vali.txt")
        test = read_letor(LETOR / "mq2008-fold1" / "test.txt", n_features=train_d.n_features)
        norm = Normalizer("query").fit(train_d)
        train_d, test = norm.transform(train_d), norm.transform(test)
        rest, few = train_d.split(0.1, seed=7)
        torch.manual_seed(7)
        production = LinearScorer(train_d.n_features)
        train(
            production, few.examples(), TrainConfig(loss="listnet", steps=50, batch_size=8, lr=1e-2), log=lambda _: None
        )
        shown = displayed_lists(train_d, scores=production.predict(train_d.features), top_k=TOP_K)
        max_grade = 2
    spec = f"pbm:max_grade={max_grade}" if model_name == "pbm" else f"cascade:max_grade={max_grade},stop=0.5"
    clicks = simulate_clicks(train_d, shown, spec, sessions=SESSIONS, seed=0)
    return train_d, test, clicks


def by_seed(per_query: dict[str, list[dict[str, float]]], systems: list[str]) -> list[np.ndarray]:
    """Each system's per-query values, [seeds, queries], on one query order."""
    qids = sorted(per_query[systems[0]][0])
    return [np.array([[r[q] for q in qids] for r in per_query[s]]) for s in systems]


def fit(examples, model, seed: int) -> float:
    cfg = TrainConfig(loss=LOSS, steps=STEPS, batch_size=64, lr=1e-3, weight_decay=0.0, seed=seed)
    train(model, examples, cfg, log=lambda _: None)
    return model


def main() -> None:
    torch.set_num_threads(1)
    cache = RunCache("clicks")
    result: dict = {
        "machine": machine(),
        "settings": {"sessions": SESSIONS, "steps": STEPS, "seeds": list(SEEDS), "loss": LOSS},
    }
    for name in ("pbm/lightgbm-rank", "pbm/mq2008-fold1", "cascade/lightgbm-rank"):
        train_d, test, clicks = setting(name)
        true_p = clicks.true_examination / clicks.true_examination[0] if clicks.true_examination is not None else None
        log(f"{name}: {len(clicks.query)} sessions, CTR by rank {np.round(clicks.ctr(), 3).tolist()}")
        em_p = estimate_propensities_em(clicks, train_d)
        systems = {"raw_clicks": None, "em_propensity": em_p} | (
            {"true_propensity": true_p} if true_p is not None else {}
        )
        entry: dict = {"em_propensities": em_p.tolist()}
        if true_p is not None:
            entry["true_propensities"] = true_p.tolist()
            entry["em_propensity_correlation"] = float(np.corrcoef(em_p, true_p)[0, 1])
        per_query: dict[str, list[dict[str, float]]] = {}
        for system in [*systems, "dla"]:
            scores, props = [], []
            for seed in SEEDS:
                settings = {"setting": name, "system": system, "seed": seed, "sessions": SESSIONS, "steps": STEPS}
                found = cache.get(settings)
                if found is None:
                    torch.manual_seed(seed)
                    ranker = MLPScorer(train_d.n_features)
                    if system == "dla":
                        model = fit(clicks.examples(train_d), DLAModel(ranker, TOP_K), seed)
                        found = {"propensities": model.propensities().tolist()}
                    else:
                        fit(ipw_examples(clicks, train_d, systems[system]), ranker, seed)
                    res = evaluate_lists(ranker, test, ["ndcg@10"])
                    found = (found or {}) | {"ndcg@10": res.metrics["ndcg@10"], "per_query": res.per_query["ndcg@10"]}
                    cache.put(settings, found)
                scores.append(found["ndcg@10"])
                per_query.setdefault(system, []).append(found["per_query"])
                if "propensities" in found:
                    props.append(found["propensities"])
            entry[f"{system}_ndcg@10"] = float(np.mean(scores))
            entry[f"{system}_ndcg@10_seed_std"] = float(np.std(scores))
            if props:
                mean_p = np.mean(props, axis=0)
                entry["dla_propensities"] = mean_p.tolist()
                if true_p is not None:
                    entry["propensity_correlation"] = float(np.mean([np.corrcoef(p, true_p)[0, 1] for p in props]))
            log(f"  {system}: nDCG@10 {np.mean(scores):.4f} (+- {np.std(scores):.4f})")
        for other in ("raw_clicks", "true_propensity"):
            if other in per_query:
                entry[f"dla_vs_{other}_p"] = two_level_bootstrap(*by_seed(per_query, ["dla", other]))[2]
        if name == "pbm/lightgbm-rank":  # the headline figures at the top level, as the issue asks
            result |= {
                "propensity_correlation": entry.get("propensity_correlation"),
                "dla_ndcg@10": entry["dla_ndcg@10"],
                "raw_clicks_ndcg@10": entry["raw_clicks_ndcg@10"],
                "true_propensity_ndcg@10": entry["true_propensity_ndcg@10"],
            }
        result[name] = entry
        write_result(OUT, with_holm(result), PEERS)


def with_holm(result: dict) -> dict:
    """Every p-value of the table Holm-adjusted together (``..._p_holm`` beside each ``..._p``)."""
    found = [
        (e, k)
        for e in result.values()
        if isinstance(e, dict)
        for k in list(e)
        if k.startswith("dla_vs_") and k.endswith("_p")
    ]
    for (entry, key), adjusted in zip(found, holm([e[k] for e, k in found])):
        entry[f"{key}_holm"] = adjusted
    return result


if __name__ == "__main__":
    main()
