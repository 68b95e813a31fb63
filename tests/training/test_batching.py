import numpy as np
import pytest
import torch

from rankwise.data import TrainExample
from rankwise.training import build_inbatch


def test_shared_document_encoded_once_and_positive_for_both():
    exs = [
        TrainExample("q0", [("d1", "doc one")], [("d9", "hard nine")]),
        TrainExample("q1", [("d1", "doc one"), ("d2", "doc two")]),  # d1 is also q1's positive
        TrainExample("q2", [("d3", "doc three")], [("d1", "doc one")]),  # d1 is q2's hard negative
    ]
    rng = np.random.default_rng(0)
    batch = build_inbatch(exs, rng, n_negatives=1)
    assert len(batch.doc_ids) == len(set(batch.doc_ids))  # no document twice
    col = {d: j for j, d in enumerate(batch.doc_ids)}
    assert batch.labels[0, col["d1"]] == 1 and batch.labels[0, col["d9"]] == 0
    assert batch.labels[1, col["d1"]] == 1
    if "d2" in col:
        assert batch.labels[1, col["d2"]] == 1
    assert batch.labels[2, col["d1"]] == 0 and batch.labels[2, col["d3"]] == 1
    assert torch.all(batch.labels.sum(1) >= 1)  # each query has its sampled positive in the batch


def test_sampling_is_a_function_of_the_generator():
    exs = [
        TrainExample(
            f"q{i}", [(f"p{i}{j}", f"p{i}{j}") for j in range(3)], [(f"n{i}{j}", f"n{i}{j}") for j in range(5)]
        )
        for i in range(4)
    ]
    a = build_inbatch(exs, np.random.default_rng([7, 1, 3]), 2)
    b = build_inbatch(exs, np.random.default_rng([7, 1, 3]), 2)
    assert a.doc_ids == b.doc_ids and len(a.doc_ids) == 4 * 3


def test_pad_lists_feeds_any_loss_and_keeps_gradients():
    import rankwise.losses as L
    from rankwise.training.batching import pad_lists

    a = torch.tensor([2.0, 0.5, -1.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    scores, labels, mask = pad_lists([a, b], [[2, 1, 0], [1]])
    assert scores.shape == labels.shape == mask.shape == (2, 3)
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    loss = L.lambdaloss(scores, labels, mask)
    loss.backward()
    alone = L.lambdaloss(a.detach()[None], torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64))
    assert loss.item() == pytest.approx(alone.item())  # the 1-item list has no pair and is left out
    assert a.grad is not None and torch.isfinite(a.grad).all()
