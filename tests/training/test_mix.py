"""Dataset mixing: each batch from one training set, proportional or round-robin, exact on resume."""

import json

import numpy as np
import pytest

from rankwise.data.examples import TrainExample, mix_sources
from rankwise.errors import RankwiseError
from rankwise.training.samplers import BATCHING
from tests.conftest import run_cli


def _sets(sizes):
    return {
        name: [TrainExample(f"{name} q{i}", [(f"{name}-d{i}", f"{name} doc {i}")]) for i in range(n)]
        for name, n in sizes.items()
    }


def test_every_batch_comes_from_one_set_in_the_chosen_proportions():
    examples = mix_sources(_sets({"a": 300, "b": 100}))
    sampler = BATCHING.create("mix").bind(len(examples), 4, seed=3)
    picks = [sampler.indices(step, examples) for step in range(400)]
    sources = [{examples[i].source for i in batch} for batch in picks]
    assert all(len(s) == 1 for s in sources)  # one set a batch
    share_a = sum(s == {"a"} for s in sources) / len(sources)
    assert share_a == pytest.approx(0.75, abs=0.06)
    # within a set, an epoch covers every example once
    first_b = [b for b, s in zip(picks, sources) if s == {"b"}][:25]
    assert sorted(np.concatenate(first_b).tolist()) == list(range(300, 400))
    fresh = BATCHING.create("mix").bind(len(examples), 4, seed=3)  # a resumed run at step 250
    assert np.array_equal(fresh.indices(250, examples), picks[250])


def test_round_robin_and_sets_too_small():
    examples = mix_sources(_sets({"a": 8, "b": 8, "c": 8}))
    sampler = BATCHING.create("mix:mode=round-robin").bind(len(examples), 4, seed=0)
    assert [examples[sampler.indices(s, examples)[0]].source for s in range(6)] == ["a", "b", "c"] * 2
    small = mix_sources(_sets({"a": 8, "b": 3}))
    with pytest.raises(RankwiseError, match="b has 3"):
        BATCHING.create("mix").bind(len(small), 4, seed=0).indices(0, small)


def test_cli_mixes_several_training_files(monkeypatch, capsys, tiny_model_dir, tmp_path):
    files = []
    for name in ("code", "papers"):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(
            "".join(json.dumps({"query": f"{name} {i}", "positives": [f"{name} doc {i}"]}) + "\n" for i in range(6))
        )
        files.append(str(path))
    out = tmp_path / "run"
    code, text = run_cli(
        monkeypatch, capsys, "train", "--train-file", ",".join(files), "--out", out, "--model", tiny_model_dir,
        "--steps", 3, "--batch-size", 2, "--batching", "mix:mode=round-robin", "--query-max-length", 8,
        "--doc-max-length", 8,
    )  # fmt: skip
    assert code == 0, text
    assert "code.jsonl" in (out / "config.toml").read_text() and (out / "model").is_dir()
    code, text = run_cli(
        monkeypatch, capsys, "train", "--train-file", ",".join(files), "--out", tmp_path / "x", "--model",
        tiny_model_dir, "--steps", 1, "--batch-size", 2, "--batching", "nodup",
    )  # fmt: skip
    assert code == 2 and "--batching mix" in text
