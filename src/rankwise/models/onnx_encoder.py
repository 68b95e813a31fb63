"""A dual encoder exported to ONNX (``torch.onnx``'s exporter) and run by ``onnxruntime``, with
onnxruntime's dynamic int8 quantisation as an option.

The graph holds the whole encoder: the transformer, the pooling and the normalisation, so its
output is the embedding. :class:`OnnxEncoder` tokenises as the original does (its prompts and
token limits, read from the folder's ``rankwise.json``) and encodes with the same interface
(``encode(texts, side)``), so every retrieval function takes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rankwise.errors import ConfigError, RankwiseError

GRAPH, GRAPH_INT8 = "model.onnx", "model-int8.onnx"


def export_onnx(model, folder: str | Path, *, int8: bool = False) -> list[Path]:
    """Write ``model`` (a :class:`~rankwise.models.BiEncoder`) to ``folder/model.onnx`` (and
    ``model-int8.onnx``), its tokenizer and settings. Returns the graphs written."""
    import torch

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError("export --onnx needs onnxruntime and onnxscript: pip install 'rankwise[onnx]'") from None

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model

        def forward(self, input_ids, attention_mask):
            return self.encoder({"input_ids": input_ids, "attention_mask": attention_mask})

    if model.untied:
        raise ConfigError("export --onnx takes one shared tower; an untied query tower is not exported yet")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    example = model.tokenize(["an example text", "a second, longer example text"], "doc")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with torch.no_grad():
        torch.onnx.export(
            Graph().eval().cpu(),
            (example["input_ids"], example["attention_mask"]),
            str(folder / GRAPH),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
            dynamo=True,
            verbose=False,
        )
    model.tokenizer.save_pretrained(folder)
    c = model.config
    settings = {"query_max_length": c.query_max_length, "doc_max_length": c.doc_max_length}
    settings |= {"query_prompt": c.query_prompt, "doc_prompt": c.doc_prompt, "normalize": c.normalize}
    (folder / "rankwise.json").write_text(json.dumps(settings | {"base_model": model.name}, indent=2))
    written = [folder / GRAPH]
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(folder / GRAPH), str(folder / GRAPH_INT8), weight_type=QuantType.QInt8)
        written.append(folder / GRAPH_INT8)
    return written


@dataclass
class _Settings:
    query_max_length: int
    doc_max_length: int
    query_prompt: str = ""
    doc_prompt: str = ""
    normalize: bool = True


class OnnxEncoder:
    """An exported graph run on the CPU by onnxruntime; ``encode(texts, side)`` as a BiEncoder's."""

    def __init__(self, folder: str | Path, graph: str = GRAPH) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        folder = Path(folder)
        if not (folder / graph).is_file():
            raise RankwiseError(f"{folder}: no {graph} (export one with rankwise export --onnx)")
        extra = json.loads((folder / "rankwise.json").read_text())
        self.config = _Settings(**{k: extra[k] for k in _Settings.__dataclass_fields__ if k in extra})
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        options = ort.SessionOptions()
        self.session = ort.InferenceSession(str(folder / graph), options, providers=["CPUExecutionProvider"])
        self.name = f"{folder.name}/{graph}"

    def encode(
        self,
        texts: Sequence[str],
        side: str = "doc",
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        prompt = self.config.query_prompt if side == "query" else self.config.doc_prompt
        limit = self.config.query_max_length if side == "query" else self.config.doc_max_length
        texts = [prompt + t for t in texts]
        parts = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start : start + batch_size], truncation=True, max_length=limit, padding=True)
            feed = {k: np.asarray(enc[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}
            parts.append(self.session.run(None, feed)[0].astype(np.float32))
            if progress:
                progress(len(parts[-1]))
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
