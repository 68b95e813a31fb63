"""The cross-encoder: sentence-transformers loads what it saves with the same scores, it refuses
folders of the other kind, and every loss of the library trains it through the one loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rankwise.losses as L
from rankwise.data.examples import TeacherScores, TrainExample
from rankwise.errors import RankwiseError
from rankwise.families import CrossFamily, family_of
from rankwise.models import BiEncoder, CrossEncoder
from rankwise.training import TrainConfig, train
from rankwise.training.batching import build_lists
from tests.conftest import assert_grads_close, make_tiny_bert

PAIRS = [
    ("how do I read a file", "open the file and read its lines " * 40),  # truncated at max_length
    ("sort a list", "sorted(x) returns a new sorted list"),
    ("sort a list", "the weather is mild today"),
]


@pytest.fixture(scope="module")
def still_bert(tmp_path_factory):
    """A tiny BERT without dropout, so repeated steps on a fixed batch are deterministic."""
    return make_tiny_bert(tmp_path_factory.mktemp("still"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def st_scores(path, pairs):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    return STCrossEncoder(str(path), device="cpu").predict(pairs, convert_to_numpy=True)


def test_default_cross_encoder_loads_in_sentence_transformers_with_the_same_scores(tmp_path):
    ce = CrossEncoder(max_length=64)
    assert ce.fresh_head and ce.name == "all-MiniLM-L6-v2"
    ce.save(tmp_path / "ce")
    ours = CrossEncoder.load(tmp_path / "ce").predict(PAIRS)
    np.testing.assert_allclose(st_scores(tmp_path / "ce", PAIRS), ours, atol=1e-5)
    np.testing.assert_allclose(ce.predict(PAIRS), ours, atol=1e-5)
    assert CrossEncoder.load(tmp_path / "ce").config.max_length == 64


def test_fresh_heads_are_seeded(tiny_model_dir):
    a, b = CrossEncoder(tiny_model_dir, seed=3), CrossEncoder(tiny_model_dir, seed=3)
    np.testing.assert_array_equal(a.predict(PAIRS), b.predict(PAIRS))
    assert not np.allclose(a.predict(PAIRS), CrossEncoder(tiny_model_dir, seed=4).predict(PAIRS))


def test_folders_of_the_other_kind_are_refused(tmp_path, tiny_model_dir):
    BiEncoder.load(str(tiny_model_dir)).save(tmp_path / "bi")
    with pytest.raises(RankwiseError, match="bi-encoder .*not a cross-encoder"):
        CrossEncoder.load(tmp_path / "bi")
    CrossEncoder(tiny_model_dir).save(tmp_path / "ce")
    with pytest.raises(RankwiseError, match="cross-encoder .*not a bi-encoder"):
        BiEncoder.load(str(tmp_path / "ce"))


def test_build_lists_labels_own_positives_and_pads(tiny_model_dir):
    exs = [
        TrainExample("q0", [("a", "A"), ("b", "B")], [("n1", "N1"), ("b", "B"), ("n2", "N2")]),
        TrainExample("q1", [("c", "C")], [("n3", "N3")]),
    ]
    batch = build_lists(exs, np.random.default_rng(0), 4)
    for i, ex in enumerate(exs):
        own = {d for d, _ in ex.positives}
        row = batch.doc_ids[i]
        assert len(set(row)) == len(row)  # a document once per list
        assert [batch.labels[i, c].item() for c in range(len(row))] == [float(d in own) for d in row]
        assert batch.mask[i].sum().item() == len(row)
        assert row[0] == ex.positives[batch.positive_index[i]][0]
        for c, j in batch.hard[i]:
            assert row[c] == ex.negatives[j][0]
    assert batch.doc_ids[1][:2] == ["c", "n3"] and len(batch.doc_ids[1]) == 3  # + q0's positive in-batch
    assert batch.mask[1, 3].item() is False


def fixed_batch():
    exs = [
        TrainExample(f"query {i}", [(f"p{i}", f"answer {i} " * 3)], [(f"n{i}{j}", f"other {i} {j}") for j in range(4)])
        for i in range(3)
    ]
    for ex in exs:
        ex.scores = TeacherScores([3.0], [1.0, 0.5, -1.0, 0.0])
    return exs, build_lists(exs, np.random.default_rng(0), 5)


@pytest.mark.parametrize("name", L.available())
def test_every_loss_trains_a_cross_encoder(name, still_bert):
    from rankwise.training.batching import teacher_matrix

    torch.manual_seed(0)
    kind = family_of(CrossEncoder(still_bert, seed=1))
    assert isinstance(kind, CrossFamily)
    exs, batch = fixed_batch()
    loss_fn = L.get(name)
    teacher, tmask = teacher_matrix(batch, exs)
    kw = {"teacher_scores": teacher, "mask": tmask} if loss_fn.facts.needs_teacher else {"mask": batch.mask}
    opt = torch.optim.Adam(kind.module.parameters(), lr=3e-3)
    cfg = TrainConfig(list_size=5)
    kind.model.train()
    losses = []
    for _ in range(8):
        loss, _, _ = kind.forward_backward(
            batch, lambda s: (loss_fn(s, batch.labels, **kw), {}), cfg, {}, lambda x: None
        )
        assert torch.isfinite(loss)
        losses.append(loss.item())
        opt.step()
        opt.zero_grad()
    assert losses[-1] < losses[0], losses


def test_gradient_caching_gives_the_plain_gradients(still_bert):
    exs, batch = fixed_batch()
    grads = []
    for chunk in (None, 4):
        kind = family_of(CrossEncoder(still_bert, seed=1))
        kind.forward_backward(
            batch,
            lambda s: (L.get("listnet")(s, batch.labels, batch.mask), {}),
            TrainConfig(list_size=5, cache_chunk=chunk),
            {},
            lambda x: None,
        )
        grads.append(torch.cat([p.grad.flatten() for p in kind.module.parameters() if p.grad is not None]))
    assert_grads_close(grads[1], grads[0])


def examples():
    return [
        TrainExample(
            f"what is topic {i}",
            [(f"d{i}", f"topic {i} explained in words")],
            [(f"d{(i + k) % 8}", f"topic {(i + k) % 8} explained in words") for k in (1, 2, 3)],
        )
        for i in range(8)
    ]


def test_training_through_the_loop_resumes_exactly_and_saves_for_sentence_transformers(still_bert, tmp_path):
    cfg = TrainConfig(
        batch_size=4, steps=4, lr=1e-3, list_size=4, loss="lambdaloss", checkpoint_every=2, keep_final_checkpoint=True
    )

    def run(out, stop=None, resume=False):
        model = CrossEncoder(still_bert, seed=1)
        res = train(model, examples(), cfg, out, stop_after=stop, resume=resume, log=lambda _: None)
        return model, res

    full, res = run(tmp_path / "full")
    assert [h.step for h in res.history] == [1, 2, 3, 4] and all(np.isfinite(h.loss) for h in res.history)
    run(tmp_path / "split", stop=2)
    resumed, res2 = run(tmp_path / "split", resume=True)
    assert res2.resumed_from == 2
    for a, b in zip(full.backbone.state_dict().values(), resumed.backbone.state_dict().values()):
        torch.testing.assert_close(a, b)
    full.save(tmp_path / "trained")
    np.testing.assert_allclose(st_scores(tmp_path / "trained", PAIRS), full.predict(PAIRS), atol=1e-5)


def test_parts_that_need_embeddings_are_refused_for_a_cross_encoder(still_bert, tmp_path):
    from rankwise.errors import ConfigError

    cfg = TrainConfig(batch_size=4, steps=1, list_size=4, batching="tas:clusters=2")
    with pytest.raises(ConfigError, match="batching 'tas.*cross-encoder does not embed"):
        train(CrossEncoder(still_bert), examples(), cfg, log=lambda _: None)
    with pytest.raises(ConfigError, match="trains a bi-encoder, and the model given is a cross-encoder"):
        train(CrossEncoder(still_bert), examples(), TrainConfig(kind="bi-encoder"), log=lambda _: None)


def test_speed_and_memory_options_keep_the_result(still_bert):
    """Token cache, length-sorted chunks, activation checkpointing and gradient caching change
    how a cross-encoder step is computed, not what it computes."""
    base = dict(batch_size=4, steps=2, lr=1e-3, list_size=4, loss="listnet", seed=3)
    weights = []
    for extra in ({}, {"chunk_tokens": 64, "activation_checkpointing": True, "cache_chunk": 5}):
        model = CrossEncoder(still_bert, seed=1)
        train(model, examples(), TrainConfig(**base, **extra), log=lambda _: None)
        weights.append(torch.cat([p.detach().flatten() for p in model.backbone.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], atol=1e-5, rtol=1e-4)


def test_length_bucketing_groups_lists_of_similar_length(still_bert):
    from rankwise.families import family_of

    kind = family_of(CrossEncoder(still_bert))
    lengths = kind.lengths(["a", "a b c d e f", "a b"])
    assert lengths[0] < lengths[2] < lengths[1]
    res = train(
        CrossEncoder(still_bert),
        examples(),
        TrainConfig(batch_size=2, steps=2, list_size=3, length_bucket=2),
        log=lambda _: None,
    )
    assert len(res.history) == 2


def test_a_fresh_head_learns_at_its_own_rate_and_lists_mix_hard_and_easy(still_bert):
    from rankwise.families import family_of

    kind = family_of(CrossEncoder(still_bert))
    ((names, scale),) = kind.param_groups()
    assert scale == -1.0 and names and all(n.startswith(("classifier", "bert.pooler")) for n in names)
    cfg = TrainConfig(list_size=4, negatives_per_query=1)
    batch = kind.batch(examples()[:3], np.random.default_rng(0), cfg, kind.negatives_per_query(cfg, True), None, None)
    # 1 hard negative, then the other queries' positives (one is that hard negative in row 1: listed once)
    assert all(len(h) == 1 for h in batch.hard) and batch.mask.sum(1).tolist() == [4, 3, 4]
    steps = []
    for head in (1.0, 50.0):
        model = CrossEncoder(still_bert, seed=1)
        before = {n: p.detach().clone() for n, p in model.backbone.named_parameters()}
        train(
            model,
            examples(),
            TrainConfig(batch_size=4, steps=1, lr=1e-3, list_size=4, head_lr_scale=head, warmup_ratio=0.0),
            log=lambda _: None,
        )
        moved = {n: float((p.detach() - before[n]).abs().max()) for n, p in model.backbone.named_parameters()}
        steps.append((moved["classifier.weight"], moved["bert.embeddings.word_embeddings.weight"]))
    assert steps[1][0] > 10 * steps[0][0]  # the head moved ~50x further (Adam: step ~ lr)
    assert steps[1][1] == pytest.approx(steps[0][1], rel=1e-3)  # the body the same
