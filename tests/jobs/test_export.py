"""``rankwise export --onnx [--int8]``: the ONNX graph gives the original's embeddings, the check on a
split reports both sides' metrics and the paired test, and a worse export is not called good."""

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import rankwise as rw  # noqa: E402
from rankwise.models.onnx_encoder import OnnxEncoder  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

TEXTS = ["a short one", "def parse(source): return ast.parse(source)", "x " * 300]


def test_export_equals_the_original_and_is_checked_on_a_split(monkeypatch, capsys, toy_beir, tiny_model_dir, tmp_path):
    model = rw.BiEncoder.load(
        tiny_model_dir, normalize=True, query_max_length=16, doc_max_length=32, query_prompt="q: "
    )
    saved = model.save(tmp_path / "model")
    out = tmp_path / "export"
    code, text = run_cli(
        monkeypatch, capsys, "export", saved, "--out", out, "--int8", "--data", toy_beir, "--k", 8,
    )  # fmt: skip
    assert code == 0, text
    onnx = OnnxEncoder(out)
    for side in ("query", "doc"):  # prompts and token limits travel with the graph
        np.testing.assert_allclose(onnx.encode(TEXTS, side), model.encode(TEXTS, side), atol=1e-5)
    report = json.loads((out / "export.json").read_text())
    assert set(report["metrics"]) == {"original", "onnx", "onnx-int8"}
    for m in ("ndcg@10", "recall@100"):
        assert report["metrics"]["onnx"][m] == pytest.approx(report["metrics"]["original"][m], abs=1e-4)
    assert report["checks"]["onnx"]["delta"] == pytest.approx(0.0, abs=1e-4) and report["good"]["onnx"]
    assert all(v > 0 for v in report["latency_ms"].values())
    assert "onnx-int8" in text and "p (Holm)" in text


def test_a_significantly_worse_export_is_not_good(monkeypatch, capsys, tiny_model_dir, tmp_path):
    """An export whose encoder ignores the text (every embedding the same) must be refused, exit 1."""
    import rankwise.jobs.export as job
    from tests.conftest import write_beir

    words = ["apple", "river", "violin", "python", "winter", "honey", "lava", "rails", "ocean", "tiger"]
    texts = [f"{a} {b} {c}" for a, b, c in zip(words, words[3:] + words[:3], words[7:] + words[:7])] * 3
    texts = [f"{t} {i}" for i, t in enumerate(texts)]
    data = write_beir(
        tmp_path / "same",
        [{"_id": f"d{i}", "text": t} for i, t in enumerate(texts)],
        [{"_id": f"q{i}", "text": t} for i, t in enumerate(texts)],  # each query is its document's text
        {"test": [(f"q{i}", f"d{i}", 1) for i in range(len(texts))]},
    )

    class Broken(OnnxEncoder):
        def encode(self, texts, side="doc", **kw):
            return np.ones((len(texts), 32), dtype=np.float32)

    monkeypatch.setattr("rankwise.models.onnx_encoder.OnnxEncoder", Broken)
    saved = rw.BiEncoder.load(tiny_model_dir).save(tmp_path / "model")
    code, text = run_cli(monkeypatch, capsys, "export", saved, "--out", tmp_path / "export", "--data", data, "--k", 10)
    assert code == 1 and "worse" in text
    report = json.loads((tmp_path / "export" / "export.json").read_text())
    assert report["checks"]["onnx"]["delta"] < -0.3 and report["checks"]["onnx"]["p_holm"] < 0.05
    assert report["good"] == {"original": True, "onnx": False}
    with pytest.raises(Exception, match="dual encoder"):
        job.export(rw.CrossEncoder(tiny_model_dir).save(tmp_path / "ce"), tmp_path / "x")
