"""The Ray path on a local cluster started by the test: the same embeddings (to 1e-5) and the
same mined negatives as the single-process path; a killed store build resumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is the optional extra rankwise[ray]")

from rankwise.data import load_beir  # noqa: E402
from rankwise.index.distributed_encode import corpus_embeddings, ray_store  # noqa: E402
from rankwise.index.retrieve import corpus_texts  # noqa: E402
from rankwise.models import BiEncoder  # noqa: E402
from rankwise.negatives.mining import MineOptions, mine  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_encoding_and_mining_equal_the_single_process(
    local_cluster, toy_beir, tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "cache"))
    ds = load_beir(toy_beir, "train")
    _, texts = corpus_texts(ds)
    model = BiEncoder.load(str(tiny_model_dir), query_max_length=32, doc_max_length=32)
    single = model.encode(texts, "doc", batch_size=128)
    store = ray_store(
        tmp_path / "store", str(tiny_model_dir), texts, workers=2, max_length=32, shard_size=3, log=lambda _: None
    )
    assert store.manifest["shards"] == 3 and store.complete
    np.testing.assert_allclose(store.embeddings(), single, atol=1e-5)

    opts = MineOptions(method="dense", k=2, window=(1, 5), model=str(tiny_model_dir), max_length=32)
    mine(ds, opts, tmp_path / "single.jsonl", show_progress=False, log_fn=lambda _: None)
    emb = corpus_embeddings(ds, str(tiny_model_dir), workers=2, max_length=32, log=lambda _: None)
    mine(ds, opts, tmp_path / "ray.jsonl", show_progress=False, embeddings=emb, log_fn=lambda _: None)
    a = [json.loads(x)["negative_ids"] for x in (tmp_path / "single.jsonl").open()]
    b = [json.loads(x)["negative_ids"] for x in (tmp_path / "ray.jsonl").open()]
    assert a == b and any(a)


@pytest.mark.slow
def test_ray_store_resumes_and_the_commands_take_ray(
    local_cluster, toy_beir, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path / "cache"))
    ds = load_beir(toy_beir, "train")
    _, texts = corpus_texts(ds)
    store = ray_store(
        tmp_path / "s", str(tiny_model_dir), texts, workers=2, max_length=32, shard_size=3, log=lambda _: None
    )
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    manifest["done"] = [0]  # as if killed after the first shard
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    lines: list[str] = []
    again = ray_store(
        tmp_path / "s", str(tiny_model_dir), texts, workers=2, max_length=32, shard_size=3, log=lines.append
    )
    assert any("1 of 3 shards already encoded" in x for x in lines) and sum("encoded (" in x for x in lines) == 2
    np.testing.assert_allclose(again.embeddings(), store.embeddings(), atol=1e-6)
    code, text = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--data",
        toy_beir,
        "--split",
        "test",
        "--model",
        tiny_model_dir,
        "--max-length",
        32,
        "--out",
        tmp_path / "ev",
        "--ray",
        "local",
    )
    assert code == 0, text
    code2, text2 = run_cli(
        monkeypatch,
        capsys,
        "eval",
        "--data",
        toy_beir,
        "--split",
        "test",
        "--model",
        tiny_model_dir,
        "--max-length",
        32,
        "--out",
        tmp_path / "ev2",
    )
    assert code2 == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text()) == pytest.approx(
        json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    )
    code, text = run_cli(
        monkeypatch,
        capsys,
        "encode",
        "--data",
        toy_beir,
        "--model",
        tiny_model_dir,
        "--max-length",
        32,
        "--out",
        tmp_path / "enc",
        "--ray",
        "local",
    )
    assert code == 0, text
    assert (tmp_path / "enc" / "embeddings.f32").is_file() and (tmp_path / "enc" / "manifest.json").is_file()
