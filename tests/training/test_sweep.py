"""rankwise sweep: the halving schedule fits the budget, the best recipe wins on dev, a re-run resumes."""

from __future__ import annotations

import json

import pytest

from rankwise.errors import ConfigError
from rankwise.training.config import load_config
from rankwise.training.sweep import schedule, sweep
from tests.conftest import run_cli, write_beir


@pytest.mark.parametrize(("n", "budget"), [(6, 540), (3, 12), (8, 100), (1, 10)])
def test_schedule_fits_the_budget_and_halves(n, budget):
    plan = schedule(n, budget)
    assert sum(c * s for c, s in plan) <= budget and plan[0][0] == n and plan[-1][0] == 1
    assert all(a[0] >= b[0] and b[1] == 2 * a[1] for a, b in zip(plan, plan[1:]))
    with pytest.raises(ConfigError, match="too small"):
        schedule(n, 1 if n > 1 else 0)


def test_the_best_on_dev_survives_and_a_rerun_trains_nothing(tmp_path):
    quality = {"a": 0.3, "b": 0.9, "c": 0.5, "d": 0.1}
    calls: list[tuple[str, int]] = []

    def train_one(name, options, steps, folder):
        calls.append((name, steps))
        return {"dev": {"ndcg@10": quality[name] + steps / 1000}, "per_query": [quality[name]] * 3}

    res = sweep(
        train_one,
        {k: {"loss": "infonce"} for k in quality},
        40,
        tmp_path,
        test_one=lambda f: {"ndcg@10": 0.5},
        log=lambda _: None,
    )
    assert res.best == "b" and res.steps_used == sum(s for _, s in calls) <= 40
    assert [n for n, _ in calls[4:]] == ["b", "c", "b"]  # the top half, then the top one
    assert load_config(tmp_path / "best.toml").steps == calls[-1][1] and res.test == {"ndcg@10": 0.5}
    calls.clear()
    again = sweep(train_one, {k: {"loss": "infonce"} for k in quality}, 40, tmp_path, log=lambda _: None)
    assert calls == [] and again.best == "b"


def test_sweep_command(monkeypatch, capsys, tiny_model_dir, tmp_path):
    topics = [
        "apples are red fruit",
        "the ocean is deep",
        "python parses code",
        "trains run on rails",
        "violins have strings",
        "volcanoes erupt lava",
        "bees make honey",
        "snow falls in winter",
    ]
    corpus = [{"_id": f"d{i}", "text": t} for i, t in enumerate(topics)]
    queries = [{"_id": f"q{i}", "text": t.split()[0]} for i, t in enumerate(topics)]
    data = write_beir(
        tmp_path / "toy",
        corpus,
        queries,
        {
            "train": [(f"q{i}", f"d{i}", 1) for i in range(4)],
            "dev": [("q4", "d4", 1), ("q5", "d5", 1)],
            "test": [("q6", "d6", 1), ("q7", "d7", 1)],
        },
    )
    (tmp_path / "base.toml").write_text(
        f'[train]\nmodel = "{tiny_model_dir}"\nbatch_size = 2\nquery_max_length = 16\ndoc_max_length = 16\n'
    )
    (tmp_path / "recipes.toml").write_text(
        '[infonce]\nloss = "infonce"\n[mw]\nloss = "mw:global"\n[listnet]\nloss = "listnet"\n'
    )
    code, text = run_cli(
        monkeypatch,
        capsys,
        "sweep",
        "--data",
        data,
        "--budget",
        12,
        "--out",
        tmp_path / "sw",
        "--recipes",
        tmp_path / "recipes.toml",
        "--config",
        tmp_path / "base.toml",
    )
    assert code == 0, text
    assert "the sweep's only test figure" in text
    summary = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert summary["best"] in ("infonce", "mw", "listnet") and summary["steps_used"] <= 12
    assert (tmp_path / "sw" / "best.toml").is_file()


def test_a_rerun_with_changed_recipes_is_refused_and_best_toml_holds_everything(tmp_path):
    def train_one(name, options, steps, folder):
        return {"dev": {"ndcg@10": 0.5 if name == "a" else 0.4}, "per_query": [0.5, 0.4]}

    recipes = {"a": {"loss": "infonce"}, "b": {"loss": "listnet"}}
    shared = {"batch_size": 4, "lr": 0.001, "seed": 7}
    run = {"data": "/some/data", "split": "train", "eval_split": "dev"}
    sweep(train_one, recipes, 8, tmp_path, log=lambda _: None, shared=shared, run=run)
    from rankwise.training.config import load_run_config

    best = load_run_config(tmp_path / "best.toml")
    assert best.run.data == "/some/data" and best.run.eval_split == "dev"
    assert (best.train.batch_size, best.train.lr, best.train.seed, best.train.loss.name) == (4, 0.001, 7, "infonce")
    changed = {"a": {"loss": "infonce:temperature=0.5"}, "b": {"loss": "listnet"}}
    with pytest.raises(ConfigError, match="recipe 'a' was trained here with other options"):
        sweep(train_one, changed, 8, tmp_path, log=lambda _: None, shared=shared, run=run)
    with pytest.raises(ConfigError, match="other options"):
        sweep(train_one, recipes, 8, tmp_path, log=lambda _: None, shared=shared | {"lr": 0.1}, run=run)
