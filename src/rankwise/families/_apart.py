"""What the sparse and multi-vector families share: a model that encodes queries and documents
apart into its own kind of vectors, and scores a batch from them with ``model.scores(q, d)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rankwise.families.dual import DualFamily
from rankwise.training.grad_cache import Side


class EncodedApartFamily(DualFamily):
    embeds = False  # not one dense vector a text: dense re-mining and clustered batches do not apply

    @property
    def module(self):
        return self.model

    def objective(self, loss_of_scores, config):
        """``(combine, loss)``: the batch's scores from both sides' outputs, and the loss of them."""
        return self.model.scores, loss_of_scores

    def forward_backward(self, batch, loss_of_scores, config, token_cache, check):
        model = self.model
        kw = {"token_cache": token_cache, "chunk_tokens": config.chunk_tokens_on(model.device)}
        combine, loss = self.objective(loss_of_scores, config)
        return self.run_sides(
            [
                Side(lambda t: model.embed_counted(t, "query", **kw), list(batch.queries)),
                Side(lambda t: model.embed_counted(t, "doc", **kw), list(batch.docs)),
            ],
            combine,
            loss,
            config,
            check,
        )

    def encode(self, texts: Sequence[str], side: str, **kw: Any):
        return self.model.encode(list(texts), side, **kw)

    def score(self, query: str, docs: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.model.score([query], list(docs))[0]

    def teacher(self):
        from rankwise.negatives.teacher import FamilyTeacher

        return FamilyTeacher(self)

    def retrieve(self, dataset, k: int, *, show_progress: bool = False):
        """The first stage over the split's corpus and its run of the split's queries (k capped at the corpus)."""
        from rankwise.index.rerank import Pipeline

        stage = self.first_stage(show_progress=show_progress)
        return stage, Pipeline(stage, None, depth=min(k, len(dataset.corpus))).run(dataset).run

    def search(self, dataset, k, *, show_progress=False, **_):
        return self.retrieve(dataset, k, show_progress=show_progress)[1]
