"""LLM rerankers on a small causal LM built from a config: FIRST's scores are the first-token
logits by hand, sliding windows reorder as RankGPT's procedure does, save/load keeps the scores,
and training through the one loop learns a synthetic ranking task."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

import rankwise as rw
from rankwise.data.examples import TrainExample
from rankwise.errors import ConfigError
from rankwise.models import default_model_path
from rankwise.models.llm_reranker import LABELS, LLMReranker, LLMRerankerConfig

DOCS = ["sorted(x) returns a new list", "open the file", "rain today", "a list sorted in place", "json.loads", "zip"]


def tiny(mode="listwise", seed=0, **options) -> LLMReranker:
    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    return LLMReranker(LlamaForCausalLM(cfg).eval(), tok, LLMRerankerConfig(mode=mode, doc_tokens=8, **options))


def test_first_scores_are_the_first_token_logits_by_hand():
    model = tiny()
    lists = [DOCS[:3], DOCS]  # different lengths: a padded batch
    got = model.window_logits(["sort a list", "read a file"], lists)
    for i, (q, docs) in enumerate(zip(["sort a list", "read a file"], lists)):
        prompt = model.listwise_prompt(q, docs)
        assert model.tokenizer.decode(prompt).endswith("best : [")
        with torch.no_grad():
            logits = model.lm(input_ids=torch.tensor([prompt])).logits[0, -1]
        ids = [model.tokenizer.convert_tokens_to_ids(c) for c in LABELS[: len(docs)]]
        torch.testing.assert_close(got[i, : len(docs)].detach(), logits[ids], atol=1e-4, rtol=1e-4)
    assert float(got[0, 3:].abs().sum()) == 0.0  # past a list's end


def test_sliding_windows():
    model = tiny(window=8, stride=4)
    one_pass = model.window_logits(["sort a list"], [DOCS])[0].detach()
    want = sorted(range(len(DOCS)), key=lambda j: (-float(one_pass[j]), j))
    assert model.sliding_order("sort a list", DOCS) == want  # a window covering the list: one pass
    scores = model.rank("sort a list", DOCS)
    assert list(np.argsort(-scores, kind="stable")) == want
    # windows of 4, stride 2 over 6 documents: positions 2-5 are sorted, then 0-3 (RankGPT's order)
    small = tiny(window=4, stride=2)
    true = {d: float(i) for i, d in enumerate(DOCS)}  # a fixed relevance per document: the last is best
    small.window_logits = lambda qs, lists: torch.tensor([[true[d] for d in lists[0]]])
    order = list(range(6))
    order[2:6] = sorted(order[2:6], key=lambda j: -true[DOCS[j]])
    order[0:4] = sorted(order[0:4], key=lambda j: -true[DOCS[j]])
    assert small.sliding_order("q", DOCS) == order == [5, 4, 3, 2, 1, 0][:2] + order[2:]


def test_save_load_keeps_the_scores(tmp_path):
    model = tiny(mode="pointwise", grades=3)
    path = model.save(tmp_path / "llm")
    from rankwise.families import load_model

    loaded = load_model(path)
    assert isinstance(loaded, LLMReranker) and loaded.config.grades == 3
    np.testing.assert_allclose(loaded.rank("sort a list", DOCS), model.rank("sort a list", DOCS), atol=1e-5)
    expected = model.rank("sort a list", DOCS)
    assert ((expected >= 0) & (expected <= 3)).all()  # an expected grade over 0..3


WORDS = (
    "apple river violin python winter honey lava rails ocean tiger piano cloud stone candle forest silver garden "
    "rocket pepper castle"
).split()


def _example(i: int, rng) -> TrainExample:
    w = WORDS[i % len(WORDS)]
    others = [x for x in WORDS if x != w]
    pos = " ".join([w, *rng.choice(others, 2, replace=False)])
    negs = [" ".join(rng.choice(others, 3, replace=False)) for _ in range(3)]
    return TrainExample(w, [(f"p{i}", pos)], [(f"n{i}-{j}", n) for j, n in enumerate(negs)], query_id=f"q{i}")


@pytest.mark.slow
def test_training_learns_token_overlap_relevance():
    """Relevance: the passage holds the query's word. Held-out queries, 4 candidates each: a random
    order's expected nDCG@10 is (1 + 1/log2(3) + 1/2 + 1/log2(5)) / 4 = 0.640."""
    rng = np.random.default_rng(0)
    model = tiny(mode="pointwise")
    train = [_example(i, rng) for i in range(200)]
    rw.train(model, train, rw.TrainConfig(steps=200, batch_size=8, lr=3e-3, list_size=4, loss="listnet"))
    held_out = [_example(1000 + i, rng) for i in range(48)]
    run, qrels = {}, {}
    for ex in held_out:
        docs = [*ex.positives, *ex.negatives]
        scores = model.rank(ex.query, [t for _, t in docs])
        run[ex.query_id] = {d: float(s) for (d, _), s in zip(docs, scores)}
        qrels[ex.query_id] = {ex.positives[0][0]: 1}
    ndcg = rw.evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]
    assert ndcg > 0.72, ndcg


def test_an_llm_teaches_through_mining(tmp_path, toy_beir, tiny_model_dir):
    """An LLM reranker's folder is a teacher: mining stores its scores (pointwise: each pair's own)."""
    import json

    from rankwise.data import load_beir
    from rankwise.negatives.mining import MineOptions, mine

    model = tiny(mode="pointwise")
    folder = model.save(tmp_path / "llm")
    ds = load_beir(toy_beir, "train")
    opts = MineOptions(
        method="dense", model=str(tiny_model_dir), k=2, window=(1, 8), teacher=str(folder), teacher_margin=-100.0
    )
    mine(ds, opts, tmp_path / "n.jsonl", show_progress=False, log_fn=lambda _: None)
    rows = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert rows and all(r["negative_ids"] for r in rows)
    for r in rows:
        docs = [ds.corpus[d].full_text for d in [*r["positive_ids"], *r["negative_ids"]]]
        want = model.rank(ds.queries[r["query_id"]], docs)
        got = [*r["scores"]["positives"], *r["scores"]["negatives"]]
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_groupwise_scores_are_each_probes_logits_by_hand():
    model = tiny(mode="groupwise", window=4, stride=4)
    groups = [DOCS[:2], DOCS[2:6]]  # different sizes: a padded batch
    got = model.group_scores(["sort a list", "read a file"], groups)
    yes, no = (model.tokenizer.convert_tokens_to_ids(w) for w in ("yes", "no"))
    for i, (q, docs) in enumerate(zip(["sort a list", "read a file"], groups)):
        ids, probes = model.group_prompt(q, docs)
        assert model.tokenizer.decode(ids[: probes[1] + 1]).endswith(f"[ b ] {docs[1]} relevant :")
        with torch.no_grad():
            logits = model.lm(input_ids=torch.tensor([ids])).logits[0]
        want = torch.stack([logits[p, yes] - logits[p, no] for p in probes])
        torch.testing.assert_close(got[i, : len(docs)].detach(), want, atol=1e-4, rtol=1e-4)
    assert float(got[0, 2:].abs().sum()) == 0.0
    # rank(): consecutive groups of `window`, each scored in one pass
    scores = model.rank("sort a list", DOCS)
    by_group = torch.cat(
        [model.group_scores(["sort a list"], [DOCS[:4]])[0], model.group_scores(["sort a list"], [DOCS[4:]])[0, :2]]
    )
    np.testing.assert_allclose(scores, by_group.detach().numpy(), atol=1e-5)


def test_groupwise_training_fits_its_lists():
    """Through the one loop, a groupwise reranker fits 8 training lists (the loss reaches the lists'
    order: each positive above its 3 negatives), starting from a random order's nDCG."""
    rng = np.random.default_rng(0)
    model = tiny(mode="groupwise", window=4, stride=4)
    train = [_example(i, rng) for i in range(8)]

    def ndcg() -> float:
        run, qrels = {}, {}
        for ex in train:
            docs = [*ex.positives, *ex.negatives]
            run[ex.query_id] = {d: float(s) for (d, _), s in zip(docs, model.rank(ex.query, [t for _, t in docs]))}
            qrels[ex.query_id] = {ex.positives[0][0]: 1}
        return rw.evaluate(qrels, run, ["ndcg@10"])["ndcg@10"]

    before = ndcg()
    rw.train(model, train, rw.TrainConfig(steps=40, batch_size=8, lr=3e-3, list_size=4, loss="listnet"))
    assert ndcg() > max(before, 0.9)


@pytest.mark.parametrize("save", ["merged", "adapter"])
def test_lora_on_an_llm_reranker_saves_and_loads_with_its_scores(tmp_path, save):
    pytest.importorskip("peft")
    base = tiny(mode="pointwise").save(tmp_path / "base")
    model = LLMReranker.load(base)
    before = model.rank("sort a list", DOCS)
    rng = np.random.default_rng(0)
    cfg = rw.TrainConfig(steps=3, batch_size=4, lr=1e-2, list_size=4, loss="listnet", lora=f"lora:r=4,save={save}")
    rw.train(model, [_example(i, rng) for i in range(8)], cfg)
    for name, p in model.lm.named_parameters():  # only the adapters trained
        assert p.requires_grad == (save == "adapter" and "lora_" in name), name
    ours = model.rank("sort a list", DOCS)
    assert not np.allclose(ours, before, atol=1e-4)
    path = model.save(tmp_path / "trained")
    assert (path / "adapter_config.json").is_file() == (save == "adapter")
    np.testing.assert_allclose(LLMReranker.load(path).rank("sort a list", DOCS), ours, atol=1e-5)


def test_first_lm_term_is_the_target_orders_nll_by_hand():
    model = tiny(window=6, stride=3)
    lists, orders = [DOCS[:3], DOCS], [[2, 0, 1], [5, 4, 3, 2, 1, 0]]
    scores, nll = model.window_logits_and_lm(["sort a list", "read a file"], lists, orders)
    torch.testing.assert_close(scores, model.window_logits(["sort a list", "read a file"], lists), atol=1e-5, rtol=1e-5)
    for i, (q, docs) in enumerate(zip(["sort a list", "read a file"], lists)):
        prompt, target = model.listwise_prompt(q, docs), model.target_ids(orders[i])
        assert model.tokenizer.decode(target).replace(" ", "") == "]>[".join(LABELS[j] for j in orders[i]) + "]"
        with torch.no_grad():
            logits = model.lm(input_ids=torch.tensor([prompt + target])).logits[0]
        logp = logits[len(prompt) - 1 : -1].log_softmax(-1)
        want = -logp[torch.arange(len(target)), torch.tensor(target)].mean()
        torch.testing.assert_close(nll[i].detach(), want, atol=1e-4, rtol=1e-4)


def test_training_with_the_lm_term_lowers_the_target_nll():
    rng = np.random.default_rng(0)
    model = tiny(window=4, stride=4, lm_weight=1.0)
    train = [_example(i, rng) for i in range(8)]
    lists = [[t for _, t in [*ex.positives, *ex.negatives]] for ex in train]
    orders = [[0, 1, 2, 3]] * len(train)  # the positive first, then the negatives as listed

    def nll() -> float:
        with torch.no_grad():
            return float(model.window_logits_and_lm([ex.query for ex in train], lists, orders)[1].mean())

    before = nll()
    result = rw.train(model, train, rw.TrainConfig(steps=20, batch_size=8, lr=3e-3, list_size=4, loss="listnet"))
    assert nll() < 0.8 * before  # 20 steps: the separators are learnt first
    assert "lm_loss" in result.history[-1].extra
    with pytest.raises(ConfigError, match="lm_weight"):
        LLMRerankerConfig(mode="pointwise", lm_weight=1.0)


def test_the_lm_term_under_gradient_caching_trains_as_without():
    weights = []
    for chunk in (None, 2):
        rng = np.random.default_rng(0)
        model = tiny(window=4, stride=4, lm_weight=1.0)
        cfg = rw.TrainConfig(steps=2, batch_size=4, lr=3e-3, list_size=4, loss="listnet", cache_chunk=chunk)
        rw.train(model, [_example(i, rng) for i in range(8)], cfg)
        weights.append(torch.cat([p.detach().flatten() for p in model.lm.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], atol=1e-6, rtol=1e-6)


def test_permutation_decoding_reads_the_generated_identifiers():
    from rankwise.models.llm_reranker import parse_permutation

    assert parse_permutation([7, 30, 5, 30, 7, 9], [5, 7, 9, 11]) == [1, 0, 2, 3]  # repeats dropped, 11 appended
    model = tiny(window=6, stride=3, decode="permutation")
    order = model.window_order("sort a list", DOCS)
    assert sorted(order) == list(range(len(DOCS)))
    # what the LM generates greedily, read by hand
    prompt = model.listwise_prompt("sort a list", DOCS)
    ids = torch.tensor([prompt])
    generated = []
    with torch.no_grad():
        for _ in range(len(model.target_ids(range(len(DOCS))))):
            nxt = int(model.lm(input_ids=ids).logits[0, -1].argmax())
            generated.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    assert order == parse_permutation(generated, model.label_ids[: len(DOCS)])
    scores = model.rank("sort a list", DOCS)
    assert list(np.argsort(-scores, kind="stable")) == order


def test_llm_spec_builds_a_second_stage(tmp_path):
    from rankwise.index.rerank import second_stage

    lm = tiny()
    lm.lm.save_pretrained(tmp_path / "lm")
    lm.tokenizer.save_pretrained(tmp_path / "lm")
    stage = second_stage(f"llm:{tmp_path / 'lm'},mode=pointwise,grades=3")
    assert stage.model.model.config.mode == "pointwise" and stage.model.model.config.grades == 3
    saved = tiny(mode="groupwise", window=4, stride=4).save(tmp_path / "gw")
    again = LLMReranker.from_spec(f"llm:{saved},window=6,stride=6")  # saved settings, overridden where given
    assert (again.config.mode, again.config.window) == ("groupwise", 6)
    with pytest.raises(ConfigError, match="unknown parameter"):
        LLMReranker.from_spec(f"llm:{saved},windw=6")


def test_rerank_cli_with_an_llm_spec(monkeypatch, capsys, toy_beir, tmp_path):
    import json

    from tests.conftest import run_cli

    saved = tiny(mode="pointwise").save(tmp_path / "llm")
    out = tmp_path / "rr"
    code, text = run_cli(
        monkeypatch, capsys, "rerank", "--data", toy_beir, "--split", "test", "--retriever", "bm25",
        "--reranker", f"llm:{saved},grades=2", "--depth", 5, "--out", out,
    )  # fmt: skip
    assert code == 0, text
    metrics = json.loads((out / "metrics.json").read_text())
    assert "ndcg@10" in json.dumps(metrics) and "llm:" in (out / "config.toml").read_text()


def test_reference_scores_are_dpos_implicit_rewards():
    """reference=True: each identifier's log p(first) minus the frozen starting model's, by hand; zero
    at the start, and IRPO trains against it through the loop."""
    from rankwise.families import family_of

    rng = np.random.default_rng(0)
    model = tiny(window=4, stride=4, reference=True)
    family = family_of(model)
    family.prepare_training([], rw.TrainConfig())
    rows = [(0, "sort a list", DOCS[:4], [1.0, 0.0, 0.0, 0.0])]
    assert float(family._lists(rows, 0, 4)[0].abs().max()) < 1e-6  # the model is its own reference
    train = [_example(i, rng) for i in range(8)]
    rw.train(model, train, rw.TrainConfig(steps=5, batch_size=8, lr=3e-3, list_size=4, loss="irpo"))
    assert not {id(p) for p in family.reference.parameters()} & {id(p) for p in model.parameters()}
    family.step = 0
    got = family._lists(rows, 0, 4)[0][0]
    perm = np.random.default_rng([0, 0, 0]).permutation(4)  # the order the row was shown in
    shown = [DOCS[j] for j in perm]
    now, ref = (m.window_logits(["sort a list"], [shown])[0, :4] for m in (model, family.reference))
    want = torch.zeros(4)
    want[torch.as_tensor(perm)] = (now.log_softmax(-1) - ref.log_softmax(-1)).detach()
    torch.testing.assert_close(got.detach(), want, atol=1e-5, rtol=1e-5)
    assert float(want.abs().max()) > 1e-4
