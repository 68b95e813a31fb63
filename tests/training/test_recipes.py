"""Named recipes and the AR2 schedule: options filled in, phases run in order, a re-run resumes."""

from __future__ import annotations

import json

import pytest

from rankwise.data import load_beir
from rankwise.errors import ConfigError
from rankwise.models import BiEncoder, CrossEncoder
from rankwise.training import TrainConfig
from rankwise.training.recipes import RECIPES, AR2Schedule, ar2


def test_recipes_fill_in_the_teacher_and_parse(tmp_path):
    for name in RECIPES:
        cfg = TrainConfig.from_recipe(name, teacher=tmp_path / "ce", steps=3)
        assert cfg.steps == 3 and cfg.loss.facts.needs_teacher
        assert str(tmp_path / "ce") in str(cfg.negatives)
    tas = TrainConfig.from_recipe("tas-balanced", teacher=tmp_path / "ce")
    assert tas.loss.spec == "margin_mse+0.75*kl" and str(tas.batching).startswith("tas")
    with pytest.raises(ConfigError, match="distils a teacher"):
        TrainConfig.from_recipe("tas-balanced")
    with pytest.raises(ConfigError, match="expected one of"):
        TrainConfig.from_recipe("nope")


def test_ar2_runs_its_phases_and_resumes(toy_beir, tiny_model_dir, tmp_path):
    BiEncoder.load(str(tiny_model_dir)).save(tmp_path / "bi")
    CrossEncoder(tiny_model_dir).save(tmp_path / "ce")
    ds = load_beir(toy_beir, "train")
    schedule = AR2Schedule(
        rounds=2, depth=4, candidates=2, ranker_steps=2, ranker_batch=2, retriever_steps=2, retriever_batch=2
    )
    lines: list[str] = []
    final = ar2(tmp_path / "bi", tmp_path / "ce", ds, tmp_path / "ar2", schedule, log=lines.append)
    assert lines[0] == schedule.describe()
    state = json.loads((tmp_path / "ar2" / "schedule.json").read_text())
    assert state["done"] == ["round 1 ranker", "round 1 retriever", "round 2 ranker", "round 2 retriever"]
    assert final.resolve() == (tmp_path / "ar2" / "round-2" / "retriever").resolve()
    # the ranker's candidates in round 2 came from round 1's retriever
    cfg = (tmp_path / "ar2" / "round-2" / "ranker-run" / "negatives.jsonl").read_text().splitlines()
    assert cfg and all(len(json.loads(x)["negative_ids"]) <= 2 for x in cfg)
    # the retriever trained on the ranker's scores of its candidates
    scored = [json.loads(x) for x in (tmp_path / "ar2" / "round-1" / "retriever-run" / "negatives.jsonl").open()]
    assert all("scores" in row for row in scored)
    before = BiEncoder.load(str(tmp_path / "bi")).encode(["apples facts"])
    after = BiEncoder.load(str(final)).encode(["apples facts"])
    assert abs(before - after).max() > 0
    lines.clear()
    ar2(tmp_path / "bi", tmp_path / "ce", ds, tmp_path / "ar2", schedule, log=lines.append)
    assert any(
        "resuming after: round 1 ranker, round 1 retriever, round 2 ranker, round 2 retriever" in x for x in lines
    )
    assert not any("candidates from" in x for x in lines)
    with pytest.raises(ConfigError, match="another schedule"):
        ar2(tmp_path / "bi", tmp_path / "ce", ds, tmp_path / "ar2", AR2Schedule(rounds=1), log=lines.append)
