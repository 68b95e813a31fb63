"""Each strategy does what it promises, on a small BEIR set and a tiny model."""

import math

import numpy as np
import pytest
import torch

from rankwise.data import examples_from_qrels, load_beir
from rankwise.data.examples import TeacherScores, TrainExample
from rankwise.errors import ConfigError
from rankwise.models import BiEncoder
from rankwise.negatives.curriculum import CURRICULA
from rankwise.negatives.false_negatives import FALSE_NEGATIVES
from rankwise.negatives.strategies import NEGATIVES
from rankwise.training import TrainConfig, train
from rankwise.training.batching import build_inbatch
from rankwise.training.plan import Plan
from rankwise.training.samplers import BATCHING


def Sampler(spec, n, bs, seed):  # noqa: N802 - reads like the class it builds
    return BATCHING.create(spec).bind(n, bs, seed)


def cfg(**kw):
    base = dict(steps=4, batch_size=4, lr=1e-3, query_max_length=16, doc_max_length=32, checkpoint_every=2)
    return TrainConfig(**(base | kw))


def setup(topics_beir, tmp_path, tiny_model_dir, **kw):
    ds = load_beir(topics_beir, "train")
    examples = examples_from_qrels(ds)
    model = BiEncoder.load(str(tiny_model_dir))
    plan = Plan(cfg(**kw), examples, dataset=ds, work_dir=tmp_path / "run", log=lambda _: None)
    plan.prepare(model)
    return ds, examples, model, plan


def test_static_bm25_attaches_mined_negatives(topics_beir, tmp_path, tiny_model_dir):
    _, examples, _, plan = setup(topics_beir, tmp_path, tiny_model_dir, negatives="bm25:k=3,window=1-20")
    assert (tmp_path / "run" / "negatives.jsonl").is_file()
    assert all(len(ex.negatives) == 3 and ex.mined["negative_ranks"] for ex in examples)
    exs, batch = plan.batch(0)
    assert all(len(h) == 1 for h in batch.hard)  # one hard negative per query per step by default
    for ex, h in zip(exs, batch.hard):
        col, j = h[0]
        assert batch.doc_ids[col] == ex.negatives[j][0]


def test_star_batch_holds_hard_and_random_negatives(topics_beir, tmp_path, tiny_model_dir):
    _, examples, _, plan = setup(
        topics_beir, tmp_path, tiny_model_dir, negatives="star:source=bm25,random=2,k=3,window=1-20"
    )
    exs, batch = plan.batch(0)
    hard = {batch.doc_ids[c] for h in batch.hard for c, _ in h}
    own = {d for ex in exs for d, _ in ex.positives} | hard
    random_docs = set(batch.doc_ids) - own
    assert hard and random_docs  # both kinds are in the batch
    assert len(batch.doc_ids) <= len(exs) * (1 + 1 + 2)


def test_dynamic_refresh_changes_negatives_after_the_model_changes(topics_beir, tmp_path, tiny_model_dir):
    ds, examples, model, plan = setup(
        topics_beir, tmp_path, tiny_model_dir, negatives="dynamic:every=2,k=3,window=1-20,max_length=16"
    )
    plan.before_step(0, model)
    first = [[d for d, _ in ex.negatives] for ex in examples]
    assert all(len(n) == 3 for n in first)
    plan.before_step(1, model)  # not due: unchanged
    assert [[d for d, _ in ex.negatives] for ex in examples] == first
    with torch.no_grad():  # the model changes
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    plan.before_step(2, model)
    assert [[d for d, _ in ex.negatives] for ex in examples] != first
    assert plan.negatives.last_refresh == 2


def test_fixed_index_refresh_reencodes_only_queries(topics_beir, tmp_path, tiny_model_dir, monkeypatch):
    ds, examples, model, plan = setup(
        topics_beir, tmp_path, tiny_model_dir, negatives="dynamic:every=1,reencode=false,k=3,window=1-20,max_length=16"
    )
    plan.before_step(0, model)
    calls = []
    real = model.encode
    monkeypatch.setattr(
        model, "encode", lambda texts, kind="doc", **kw: (calls.append(kind), real(texts, kind, **kw))[1]
    )
    plan.before_step(1, model)
    assert calls and set(calls) == {"query"}


def test_nodup_batches_repeat_no_document():
    docs = [(f"d{i % 5}", "t") for i in range(20)]  # examples share positives
    examples = [TrainExample(f"q{i}", [docs[i]], [docs[(i + 1) % 20]]) for i in range(20)]
    s = Sampler("nodup", 20, 2, 0)
    for step in range(6):
        idx = s.indices(step, examples)
        seen = [d for i in idx for d, _ in examples[i].positives + examples[i].negatives]
        assert len(seen) == len(set(seen))


def test_nodup_epoch_scales_to_many_examples():
    # 40,000 examples, 10 % sharing a positive with another: one epoch is every example at most
    # once, none repeating a document, and the greedy pass stays linear (was quadratic)
    n, bs = 40_000, 32
    examples = [TrainExample(f"q{i}", [(f"d{i - 1 if i % 10 == 1 else i}", "t")], []) for i in range(n)]
    s = Sampler("nodup", n, bs, 0)
    batches = s._epoch(0, examples)
    flat = np.concatenate(batches)
    assert len(flat) == len(set(flat.tolist())) and len(batches) >= n // bs - 2
    for b in batches[:200]:
        docs = [examples[i].positives[0][0] for i in b]
        assert len(docs) == len(set(docs))


def test_tas_batch_comes_from_one_cluster():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 16)) * 10
    emb = np.concatenate([c + rng.normal(size=(8, 16)) for c in centers])  # 4 clear topics of 8 queries
    s = Sampler("tas:clusters=4", 32, 8, 0)
    assert s.needs_embeddings(0)
    s.cluster(0, emb)
    assert not s.needs_embeddings(5)  # clustered once
    sizes = np.bincount(s.assign)
    for step in range(5):
        idx = s.indices(step, [])
        first = s.assign[idx[0]]
        if sizes[first] >= 8:  # a cluster big enough for a batch gives the whole batch
            assert len(idx) == 8 and set(s.assign[idx].tolist()) == {first}
    assert sorted(sizes.tolist()) == [8, 8, 8, 8]  # k-means found the four topics
    assert all(len(set(s.assign[t * 8 : (t + 1) * 8].tolist())) == 1 for t in range(4))


def test_tas_fills_a_small_cluster_from_another():
    emb = np.concatenate([np.ones((3, 4)) + np.arange(4), -np.ones((10, 4))])
    s = Sampler("tas:clusters=2", 13, 5, 0)
    s.cluster(0, emb)
    for step in range(4):
        assert len(set(s.indices(step, []).tolist())) == 5


def test_tas_balanced_margin_bins():
    ex = TrainExample(
        "q", [("p", "t")], [(f"n{i}", "t") for i in range(10)], scores=TeacherScores([10.0], [9.9] * 9 + [0.0])
    )  # 9 close negatives, 1 far
    choose = Sampler("tas:clusters=2,bins=2", 4, 2, 0).choose_negatives()
    picks = [choose(1, ex, np.random.default_rng(s))[0] for s in range(400)]
    share_far = np.mean([p == 9 for p in picks])
    assert 0.4 < share_far < 0.6  # each non-empty margin bin is drawn equally often, not each negative


def test_ngame_reclusters_on_schedule_and_batches_neighbours():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(8, 16)) * 10
    emb = np.concatenate([c + rng.normal(size=(4, 16)) for c in centers])
    s = Sampler("ngame:every=3,cluster_size=4", 32, 4, 0)
    assert s.needs_embeddings(0)
    s.cluster(0, emb)
    assert not s.needs_embeddings(2) and s.needs_embeddings(3)
    pure = sum(len({int(i) // 4 for i in s.indices(step, [])}) == 1 for step in range(8))
    assert pure >= 6  # batches are (mostly) one neighbourhood


def test_false_negative_weights_teacher_and_self():
    ex = TrainExample("q", [("p", "t")], [("n0", "t"), ("n1", "t")], scores=TeacherScores([2.0], [3.0, -1.0]))
    batch = build_inbatch([ex], np.random.default_rng(0), n_negatives=2)
    scores = torch.zeros(1, len(batch.doc_ids))
    fn = FALSE_NEGATIVES.create("teacher:tau=1,min_weight=0.01")
    w = fn.weights(scores, batch, [ex])
    for col, j in batch.hard[0]:
        t = ex.scores.negatives[j]
        assert w[0, col].item() == pytest.approx(1 - 1 / (1 + math.exp(-(t - 2.0))))
    assert w[0, batch.positive[0]].item() == 1.0
    adjusted, _ = fn.adjust(scores, batch, [ex])
    assert torch.allclose(adjusted, torch.log(w))
    # self: the model's own (detached) scores
    s = torch.tensor([[1.0, 1.5, 0.0]])[:, : len(batch.doc_ids)].requires_grad_()
    w_self = FALSE_NEGATIVES.create("self:tau=0.5").weights(s, batch, [ex])
    col, _ = batch.hard[0][0]
    expected = 1 - torch.sigmoid((s[0, col] - s[0, batch.positive[0]]) / 0.5)
    assert w_self[0, col].item() == pytest.approx(expected.item())
    with pytest.raises(ConfigError):
        FALSE_NEGATIVES.create("oracle")


def test_infonce_with_weight_equals_weighted_partition_function():
    from rankwise.losses import get

    scores = torch.tensor([[2.0, 1.0, 1.5]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    w = torch.tensor([[1.0, 1.0, 0.25]])
    got = get("infonce:temperature=1.0")(scores + torch.log(w), labels)
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(1.0) + 0.25 * math.exp(1.5)))
    assert got.item() == pytest.approx(expected)


def test_curriculum_easiness_and_annealing():
    ex = TrainExample(
        "q",
        [("p", "t")],
        [("a", "t"), ("b", "t")],
        mined={
            "positive_ranks": [1],
            "positive_scores": [9.0],
            "negative_ranks": [2, 10],
            "negative_scores": [8.0, 1.0],
        },
    )
    c = CURRICULA.create("reciprank:steps=10")
    # h(p) = 1, h(a) = 1/2, h(b) = 1/10 -> min over negatives of (1 - h + 1)/2 = (1 - 0.5 + 1)/2
    assert c.easiness(ex, [0, 1]) == pytest.approx(0.75 + 1e-8)
    assert c.easiness(ex, [1]) == pytest.approx(0.95 + 1e-8)
    assert CURRICULA.create("reciprank:anti=true").easiness(ex, [0]) == pytest.approx(0.25 - 1e-8)
    assert CURRICULA.create("normscore").heuristic(np.array([2]), np.array([8.0]), np.array([9.0, 8.0, 1.0]))[
        0
    ] == pytest.approx(7 / 8)

    class B:
        hard = [[(1, 0)]]

    assert c.weights(0, B(), [ex]).item() == pytest.approx(0.75, abs=1e-6)
    assert c.weights(5, B(), [ex]).item() == pytest.approx(0.75 * 0.5 + 0.5, abs=1e-6)
    assert c.weights(10, B(), [ex]) is None  # uniform from step m on


def test_bad_strategy_specs_name_the_problem():
    with pytest.raises(ConfigError, match="unknown negatives 'hard'"):
        NEGATIVES.create("hard")
    with pytest.raises(ConfigError, match="unknown parameter 'often'"):
        NEGATIVES.create("dynamic:often=3")
    with pytest.raises(ConfigError, match="unknown batching 'clustered'; available: mix, ngame, nodup, random, tas"):
        cfg(batching="clustered")
    with pytest.raises(ConfigError, match="unknown curriculum 'length'"):
        cfg(curriculum="length")
    with pytest.raises(ConfigError, match="parameter 'clusters' has a bad value 'many'"):
        cfg(batching="tas:clusters=many")


def test_specs_parse_once_into_objects_and_dump_back():
    c = cfg(
        negatives="star:source=dense,random=2,k=3",
        batching="tas:clusters=8,balanced=false",
        false_negatives="self:tau=0.05",
        curriculum="kdescore:steps=10,mode=batch",
        loss="infonce:temperature=0.1+0.5*tcm",
    )
    assert (c.negatives.method, c.negatives.random, c.negatives.k) == ("dense", 2, 3)
    assert (c.batching.clusters, c.batching.balanced) == (8, False)
    assert c.false_negatives.tau == 0.05 and c.curriculum.mode == "batch"
    assert [(w, t.name, t.params) for w, t in c.loss.terms] == [
        (1.0, "infonce", {"temperature": 0.1}),
        (0.5, "tcm", {}),
    ]
    dumped = c.model_dump()
    assert (
        dumped["negatives"] == "star:k=3,source=dense,random=2"
        and dumped["batching"] == "tas:clusters=8,balanced=false"
    )
    again = TrainConfig(**dumped)
    assert again.model_dump() == dumped and again.negatives == c.negatives


def test_a_users_own_sampler_object_is_used(topics_beir, tmp_path, tiny_model_dir):
    from dataclasses import dataclass

    from rankwise.training.samplers import BatchSampler

    @dataclass
    class FirstExamples(BatchSampler):  # always the first examples, in order
        def indices(self, step, examples):
            return np.arange(self.bs)

    ds = load_beir(topics_beir, "train")
    examples = examples_from_qrels(ds)
    plan = Plan(cfg(batching=FirstExamples()), examples, dataset=ds, work_dir=tmp_path, log=lambda _: None)
    plan.prepare(BiEncoder.load(str(tiny_model_dir)))
    for step in range(3):
        assert [ex.query for ex in plan.batch(step)[0]] == [ex.query for ex in examples[:4]]


def test_training_with_every_strategy_resumes_exactly(topics_beir, tmp_path, tiny_model_dir):
    """Dynamic negatives + NGAME batches + false-negative weights + curriculum: stop, resume, same weights."""
    ds = load_beir(topics_beir, "train")
    options = dict(
        negatives="dynamic:every=2,k=3,window=1-20,max_length=16",
        batching="ngame:every=2,cluster_size=2",
        false_negatives="self:tau=0.1",
        curriculum="reciprank:steps=3",
    )

    def run(out, stop=None, resume=False):
        model = BiEncoder.load(str(tiny_model_dir))
        examples = examples_from_qrels(ds)
        plan = Plan(cfg(**options), examples, dataset=ds, work_dir=out, log=lambda _: None)
        res = train(model, examples, cfg(**options), out, plan=plan, stop_after=stop, resume=resume)
        return model, res

    full, res_full = run(tmp_path / "full")
    run(tmp_path / "split", stop=2)
    resumed, res_resumed = run(tmp_path / "split", resume=True)
    for a, b in zip(full.backbone.parameters(), resumed.backbone.parameters()):
        assert torch.equal(a, b)
    assert [h.loss for h in res_full.history] == [h.loss for h in res_resumed.history]
