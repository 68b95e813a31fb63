"""README's first Python block is the front-page promise: at most 8 statements, every name from
``import rankwise as rw``, and it runs as written, offline, printing metrics."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys

import pytest

import rankwise as rw
from tests.conftest import REPO


def _result(name: str) -> dict:
    """``benchmarks/results/<name>.json``."""
    return json.loads((REPO / "benchmarks" / "results" / f"{name}.json").read_text(encoding="utf-8"))


def _first_python_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_first_block_is_short_and_uses_the_working_set():
    tree = ast.parse(_first_python_block())
    assert len(tree.body) <= 8
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "rw"
    }
    assert used and used <= set(rw.__all__)
    for name in rw.__all__:  # every exported name resolves
        assert getattr(rw, name) is not None
    assert (
        len(rw.__all__) <= 20
    )  # a small working set, like ranx's: loaders, five model families, train, evaluate, fusion


def test_readme_stays_a_front_page():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    bench = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert not any(line.startswith("|---") for line in lines[: lines.index("## The command line")])  # no result tables
    for script in (
        "loss_comparison",
        "losses",
        "negatives_comparison",
        "train_throughput",
        "mining",
        "metrics",
        "rerank",
        "ltr",
        "clicks",
        "scale",
        "recipes_vs_peer",
        "mw_study",
        "sweep",
    ):
        assert f"benchmarks/{script}.py" in bench


@pytest.mark.slow
def test_first_block_runs_as_written(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _first_python_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert set(metrics) == {"ndcg@10", "mrr@10", "recall@100", "map"}
    assert metrics["ndcg@10"] > 0.66, json.dumps(metrics)  # the base model scores 0.64 on this split
    assert not any(tmp_path.iterdir())  # from Python nothing is written unless asked


def test_rw_train_is_callable_in_any_import_order():
    import subprocess
    import sys

    code = (
        "import rankwise as rw; rw.TrainConfig(); import rankwise.training.loop; assert callable(rw.train); print('ok')"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "ok"


def test_rw_train_trains(tiny_model_dir, toy_beir):
    ds = rw.load_dataset(toy_beir, "train")
    model = rw.BiEncoder.load(str(tiny_model_dir))
    result = rw.train(model, ds, rw.TrainConfig(steps=2, batch_size=2, query_max_length=16, doc_max_length=16))
    assert [h.step for h in result.history] == [1, 2]


def test_training_leaves_the_callers_examples_as_they_were(tiny_model_dir, toy_beir):
    ds = rw.load_dataset(toy_beir, "train")
    examples = rw.mine(ds, f"dense:k=2,window=1-8,max_length=16,model={tiny_model_dir}", log_fn=lambda _: None)
    before = [list(ex.negatives) for ex in examples]
    assert any(before)
    model = rw.BiEncoder.load(str(tiny_model_dir))
    rw.train(model, examples, rw.TrainConfig(steps=1, batch_size=2, negatives="inbatch", query_max_length=16))
    assert [ex.negatives for ex in examples] == before  # inbatch cleared the run's copies, not these


def test_the_demo_figures_on_the_front_page_are_the_results_files():
    from rankwise.jobs.demo import BASELINE, DemoConfig

    result = _result("demo")
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    demo, base = result["demo"], result["baseline"]
    m = re.search(
        r"Measured (\d{4}-\d\d-\d\d) on a 2-core ([^,]+), stdlib-code test: nDCG@10 ([0-9.]+) → ([0-9.]+)", text
    )
    assert m, "README's demo sentence"
    assert m.group(1) == result["machine"]["date"][:10] and m.group(2) in result["machine"]["cpu"]
    assert float(m.group(3)) == round(demo["base"]["ndcg@10"], 3)
    assert float(m.group(4)) == round(demo["recipe"]["ndcg@10"], 3)
    assert f"(+{result['gain_points']:.1f} points) in {demo['seconds'] / 60:.1f} minutes" in text
    assert f"same budget reaches {base['ndcg@10']:.3f}" in text
    assert BASELINE["ndcg@10"] == round(base["ndcg@10"], 4)  # the demo prints the recorded figure
    recorded, now = result["settings"]["recipe"], DemoConfig().train.to_toml_dict()
    from rankwise.training import TrainConfig

    added = {k for k in now if k not in recorded}  # options added since: at their defaults they change nothing
    assert all(now[k] == TrainConfig.model_fields[k].default for k in added), added
    assert recorded == {k: v for k, v in now.items() if k not in added}  # measured on today's recipe
    assert result["gain_points"] >= 5.0


def _front_page() -> str:
    return " ".join((REPO / "README.md").read_text(encoding="utf-8").split())


def test_the_speed_figures_on_the_front_page_are_the_results_file():
    result = _result("train_throughput")
    assert result["machine"]["date"][:10] >= "2026-12-05" and result["repeats"] >= 3
    assert result["token_lengths"] == [128, 256]
    by = result["settings"]

    def span(mode: str, key: str) -> str:
        values = [by[f"{mode}@{n}"][key] for n in result["token_lengths"]]
        return f"{min(values):.2f}x to {max(values):.2f}x"

    memory = [by[s]["memory_ratio"] for s in by]
    text = _front_page()
    m = re.search(
        r"[Mm]easured (\d{4}-\d\d-\d\d) on a 2-core ([^(]+) \(float32, (\d+) steps of (\d+), (\d+) alternated repeats",
        text,
    )
    assert m, "README's speed sentence"
    assert m.group(1) == result["machine"]["date"][:10] and m.group(2).strip() in result["machine"]["cpu"]
    assert (int(m.group(3)), int(m.group(4)), int(m.group(5))) == (
        result["steps"],
        result["batch_size"],
        result["repeats"],
    )
    assert f"{span('hard-negatives', 'speedup')} as many examples per second" in text
    assert f"and {span('in-batch', 'speedup')} with in-batch pairs" in text
    assert f"in {min(memory):.2f}x to {max(memory):.2f}x its peak memory" in text


def test_the_recipe_figures_on_the_front_page_are_the_results_file():
    result = _result("recipes_vs_peer")
    gap = {name: 100 * d["rankwise_minus_peer_ndcg@10"] for name, d in result["datasets"].items()}
    text = _front_page()
    assert (
        f"({gap['stdlib-code']:+.1f} nDCG@10 points on stdlib-code, {gap['scifact']:+.1f} on SciFact, neither significant"
        in text
    )
    assert all(d["p_value"] > 0.05 for d in result["datasets"].values())
    demo = _result("demo")
    assert f"beats the base model's nDCG@10 of {demo['demo']['base']['ndcg@10']:.3f}" in text


def _family_ratios(key: str) -> dict[str, dict[str, float]]:
    """rankwise's ``key`` over the peer's, per dataset and family, from ``families.json``."""
    result = _result("families")
    return {
        data: {f: c[f]["rankwise"][key] / c[f]["peer"][key] for f in c if f != "bm25"}
        for data, c in result["datasets"].items()
    }


def test_the_sparse_and_multi_vector_figures_on_the_front_page_are_the_results_file():
    from benchmarks.families_table import differences

    result = _result("families")
    speed, memory = _family_ratios("examples_per_s"), _family_ratios("peak_rss_mb")
    code, scifact = speed["stdlib-code"], speed["scifact"]
    text = _front_page()
    assert f"measured {result['machine']['date'][:10]} on a 2-core {result['machine']['cpu']}" in text
    assert f"3 seeds a side, commit `{result['commit'][:7]}`" in text
    assert all(len(c[f][s]["seeds"]) == 3 for c in result["datasets"].values() for f in c if f != "bm25" for s in c[f])
    assert (
        f"at {code['sparse']:.2f}x and {code['inference-free']:.2f}x the examples per second on stdlib-code and "
        f"{scifact['sparse']:.2f}x and {scifact['inference-free']:.2f}x on SciFact" in text
    )
    sparse_memory = [m[f] for m in memory.values() for f in ("sparse", "inference-free")]
    assert f"in {min(sparse_memory):.2f}x to {max(sparse_memory):.2f}x the peak memory" in text
    assert f"level in quality and not faster ({code['multi-vector']:.2f}x and {scifact['multi-vector']:.2f}x)" in text
    assert code["multi-vector"] < 1.2 and scifact["multi-vector"] < 1.2
    for cells in result["datasets"].values():  # "differences under a point, none significant"
        assert all(abs(d) < 1 and p > 0.05 for d, _, p, _ in differences(cells).values())
    cells = result["datasets"]["scifact"]  # "on SciFact neither sparse model reaches BM25"
    assert all(cells[f]["rankwise"]["ndcg@10"] < cells["bm25"]["ndcg@10"] for f in ("sparse", "inference-free"))


def _inference_free_figures() -> dict[str, str]:
    """The inference-free study's test figures as the front page quotes them."""
    result = _result("inference_free_bm25")
    test, bm25 = result["test"], result["bm25"]["test"]["metrics"]["ndcg@10"]
    return {
        "date": result["machine"]["date"][:10],
        "model": f"{test['ndcg@10']:.3f}",
        "bm25": f"{bm25:.3f}",
        "diff": f"{100 * test['minus_bm25']['difference']:+.1f}",
        "p": f"{test['minus_bm25']['p']:.2f}",
        "steps": str(result["chosen"]["steps"]),
        "seeds": str(len(test["seeds"])),
    }


def test_the_inference_free_against_bm25_sentence_is_the_results_file():
    result = _result("inference_free_bm25")
    test, bm25 = result["test"], result["bm25"]["test"]["metrics"]["ndcg@10"]
    assert all(s > bm25 for s in test["seeds"]) and test["minus_bm25"]["p"] >= 0.05  # "each above ... not significant"
    f = _inference_free_figures()
    assert (
        f"the inference-free model trained {f['steps']} steps scores {f['model']} nDCG@10 on SciFact test "
        f"against BM25's {f['bm25']} (measured {f['date']}, {f['seeds']} seeds, each above BM25; "
        f"{f['diff']} points, p {f['p']} over queries and seeds, not significant;"
    ) in _front_page()


def _adapt_figures() -> dict[str, str]:
    """The label-free adaptation's test figures as the front page quotes them."""
    result = _result("adapt")
    sci, code = result["datasets"]["scifact"], result["datasets"]["stdlib-code"]
    return {
        "date": result["machine"]["date"][:10],
        "adapted": f"{sci['adapted']['ndcg@10']:.3f}",
        "start": f"{sci['zero_shot']['ndcg@10']:.3f}",
        "diff": f"{100 * sci['diff']:+.1f}",
        "p": f"{sci['p_seed_aware']:.2f}",
        "seeds": str(len(sci["adapted"]["seeds"])),
        "code_loss": f"{-100 * code['diff']:.1f}",
    }


def test_the_adaptation_sentence_is_the_results_file():
    result = _result("adapt")
    sci, code = result["datasets"]["scifact"], result["datasets"]["stdlib-code"]
    assert sci["p_seed_aware"] >= 0.05 and code["diff"] < 0  # "not significant", "loses"
    assert "Xeon" in result["machine"]["cpu"] and result["machine"]["cores"] == 2
    f = _adapt_figures()
    assert (
        f"scores {f['adapted']} nDCG@10 on SciFact test against {f['start']} zero-shot (measured {f['date']} on "
        f"a 2-core Intel Xeon, {f['seeds']} seeds; {f['diff']} points, p {f['p']} over queries and seeds, not "
        f"significant), and the same recipe loses {f['code_loss']} points on stdlib-code"
    ) in _front_page()


def _verified_figures() -> set[str]:
    """Every measured figure the front page may quote, formatted as it quotes them, from the results files."""
    demo = _result("demo")
    speed = _result("train_throughput")["settings"]
    recipes = _result("recipes_vs_peer")["datasets"]
    out = {f"{demo['demo'][k]['ndcg@10']:.3f}" for k in ("base", "recipe")} | {f"{demo['baseline']['ndcg@10']:.3f}"}
    out |= {f"{demo['gain_points']:.1f}", f"+{demo['gain_points']:.1f}", f"{demo['demo']['seconds'] / 60:.1f}"}
    out |= {f"{100 * d['rankwise_minus_peer_ndcg@10']:+.1f}" for d in recipes.values()}
    out |= {_inference_free_figures()[k] for k in ("model", "bm25", "diff", "p")}
    out |= {_adapt_figures()[k] for k in ("adapted", "start", "diff", "p", "code_loss")}
    out |= {f"{s[k]:.2f}x" for s in speed.values() for k in ("speedup", "memory_ratio")}
    out |= {
        f"{x:.2f}x"
        for key in ("examples_per_s", "peak_rss_mb")
        for d in _family_ratios(key).values()
        for x in d.values()
    }
    return out


def test_every_figure_in_the_front_pages_prose_comes_from_a_results_file():
    """Decimal figures and ratios in prose (outside code and tables) are all read from results
    files; whole numbers are settings named in those sentences, dates, or counts of the library's parts."""
    from rankwise.losses.registry import LOSSES
    from rankwise.negatives.strategies import NEGATIVES
    from rankwise.training.samplers import BATCHING

    text = re.sub(r"```.*?```", " ", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)
    prose = re.sub(r"`[^`]*`", " ", " ".join(line for line in text.splitlines() if not line.startswith("|")))

    def built_in(registry) -> int:  # tests register parts of their own; the front page counts rankwise's
        return sum(registry.get(n).__module__.startswith("rankwise.") for n in registry.names())

    counts = {
        f"{built_in(LOSSES)} losses",
        f"{built_in(NEGATIVES)} negatives strategies",
        f"{built_in(BATCHING)} batch samplers",
    }
    assert all(phrase in prose for phrase in counts), counts
    numbers = re.findall(r"(?<![\w.=/-])[+-]?\d+(?:\.\d+)?x?(?![\w/-])", prose)
    figures = {n for n in numbers if ("." in n or n.endswith("x")) and n not in {"3.10", "2.x"}}
    assert figures <= _verified_figures(), figures - _verified_figures()
