"""rankwise's InfoNCE training does the same work as sentence-transformers' trainer with
MultipleNegativesRankingLoss: on the same batches, without dropout, the losses agree step by step.
This is what lets `benchmarks/train_throughput.py` compare speed and memory on equal terms."""

import pytest
import torch

from rankwise.data import TrainExample
from rankwise.models import BiEncoder
from rankwise.training import TrainConfig, train
from rankwise.training.interop import ReplayBatches, batch_indices


def _no_dropout(module: torch.nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0


def _examples(n: int) -> list[TrainExample]:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    out = []
    for i in range(n):
        w = [words[(i * 7 + k) % len(words)] for k in range(3 + i % 5)]
        out.append(
            TrainExample(
                query=f"how to {w[0]} {w[1]}",
                positives=[(f"p{i}", f"def {w[0]}_{w[1]}(x): return {' '.join(w)} {i}")],
                negatives=[(f"n{i}", f"class {w[-1].title()}: '''{' '.join(reversed(w))} {i * 3}'''")],
            )
        )
    return out


def test_infonce_training_matches_sentence_transformers_mnrl(tiny_model_dir, tmp_path):
    st = pytest.importorskip("sentence_transformers")
    pytest.importorskip("datasets")
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    try:  # sentence-transformers >= 6 layout
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    examples = _examples(24)
    steps, batch, lr = 4, 6, 5e-4
    cfg = TrainConfig(
        steps=steps,
        batch_size=batch,
        lr=lr,
        warmup_ratio=0.5,
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=3,
        query_max_length=64,
        doc_max_length=64,
        negatives="file",
        negatives_per_query=1,
        batching="nodup",
        checkpoint_every=10**6,
        loss="infonce:temperature=0.05",
    )
    batches = batch_indices(cfg, examples)

    start = BiEncoder.load(str(tiny_model_dir), normalize=True, query_max_length=64, doc_max_length=64)
    start.save(tmp_path / "start")

    ours = BiEncoder.load(str(tmp_path / "start"))
    _no_dropout(ours)
    res = train(ours, examples, cfg, tmp_path / "rankwise")

    peer = st.SentenceTransformer(str(tmp_path / "start"), device="cpu")
    peer.max_seq_length = 64
    _no_dropout(peer)
    ds = Dataset.from_dict(
        {
            "anchor": [ex.query for ex in examples],
            "positive": [ex.positives[0][1] for ex in examples],
            "negative": [ex.negatives[0][1] for ex in examples],
        }
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "st"),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=lr,
        warmup_ratio=0.5,
        lr_scheduler_type="linear",
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=3,
        save_strategy="no",
        report_to=[],
        logging_steps=1,
        use_cpu=True,
        batch_sampler=ReplayBatches(batches),
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=peer, args=args, train_dataset=ds, loss=MultipleNegativesRankingLoss(peer, scale=20.0)
    )
    trainer.train()
    peer_losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]

    assert len(peer_losses) == steps
    assert [h.loss for h in res.history] == pytest.approx(peer_losses, rel=1e-4)
    assert [h.lr for h in res.history] == pytest.approx(
        [h["learning_rate"] for h in trainer.state.log_history if "loss" in h]
    )
    # the losses change over the run, so equality above is more than agreement at the start
    assert max(peer_losses) - min(peer_losses) > 1e-3


def test_batch_indices_need_no_model_and_replay_in_order():
    examples = _examples(24)
    cfg = TrainConfig(steps=5, batch_size=6, batching="nodup", negatives="file", seed=1)
    batches = batch_indices(cfg, examples)
    assert len(batches) == 5 and all(len(b) == 6 for b in batches)
    assert list(ReplayBatches(batches)) == batches and len(ReplayBatches(batches)) == 5
    with pytest.raises(ValueError, match="depends on the model"):
        batch_indices(cfg.model_copy(update={"batching": "tas:clusters=2"}), examples)
