"""Mining and clustering in a data-parallel run: two gloo processes split the work (each mines half
of the queries and, for dense negatives, encodes half of the corpus; NGAME embeds half of the
queries) and both end with the negatives and batches of one process doing it all alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

SPECS = {
    "bm25": {"negatives": "bm25:k=3,window=1-20"},
    "dense": {"negatives": "dense:k=3,window=1-20,max_length=16,model={model}"},
    "dynamic": {"negatives": "dynamic:every=1,k=3,window=1-20,max_length=16"},
    "ngame": {"batching": "ngame:every=1,cluster_size=4"},
}


def mine_with(data: Path, model_dir: str, work: Path, spec: dict) -> dict:
    """Prepare one strategy and run its step-0 refresh or clustering; what each process did and got."""
    from rankwise.data import examples_from_qrels, load_beir
    from rankwise.models import BiEncoder
    from rankwise.negatives import strategies
    from rankwise.training import TrainConfig
    from rankwise.training.plan import Plan

    ds = load_beir(data, "train")
    examples = examples_from_qrels(ds)
    model = BiEncoder.load(model_dir)
    mined, encoded, queries, lines = [], [], [], []
    real_mine, real_encode = strategies.mine, BiEncoder.encode

    def counting_mine(dataset, *args, **kw):
        mined.append(len(dataset.qrels))
        return real_mine(dataset, *args, **kw)

    def counting_encode(self, texts, kind="doc", **kw):
        (encoded if kind == "doc" else queries).append(len(texts))
        return real_encode(self, texts, kind, **kw)

    strategies.mine, BiEncoder.encode = counting_mine, counting_encode
    try:
        options = {k: v.format(model=model_dir) for k, v in spec.items()}
        cfg = TrainConfig(**options, batch_size=4, query_max_length=16, doc_max_length=16)
        plan = Plan(cfg, examples, dataset=ds, work_dir=work, log=lines.append)
        plan.prepare(model)
        plan.before_step(0, model)
    finally:
        strategies.mine, BiEncoder.encode = real_mine, real_encode
    return {
        "negatives": [[d for d, _ in ex.negatives] for ex in examples],
        "mined_queries": sum(mined),
        "encoded_docs": sum(encoded),
        "encoded_queries": sum(queries),
        "batch": [ex.query_id for ex in plan.batch(0)[0]],
        "counts": [
            line.split("; ", 1)[1] for line in lines if line.startswith("mined ")
        ],  # after "mined N for Q (...)"
    }


def _worker(rank: int, data: str, model_dir: str, init: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    got = {name: mine_with(Path(data), model_dir, Path(out) / name, spec) for name, spec in SPECS.items()}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(got))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_share_the_mining_and_attach_one_processes_negatives(topics_beir, tiny_model_dir, tmp_path):
    alone = {
        name: mine_with(topics_beir, str(tiny_model_dir), tmp_path / "alone" / name, s) for name, s in SPECS.items()
    }
    shared = tmp_path / "shared"  # the two processes' run folder (one disk, as on one machine)
    shared.mkdir()
    mp.start_processes(
        _worker,
        args=(str(topics_beir), str(tiny_model_dir), f"file://{tmp_path / 'pg'}", str(shared)),
        nprocs=2,
        start_method="spawn",
    )
    ranks = [json.loads((shared / f"rank{r}.json").read_text()) for r in range(2)]
    for name in ("bm25", "dense", "dynamic"):
        assert alone[name]["mined_queries"] == 16
        for got in ranks:
            assert got[name]["negatives"] == alone[name]["negatives"], name
            assert all(len(n) == 3 for n in got[name]["negatives"])
            assert got[name]["mined_queries"] == 8, name  # half of the 16 queries each, not all of them
    for name in ("bm25", "dense"):  # the shares' counts, summed, are what one process alone reports
        assert len(alone[name]["counts"]) == 1 and all(got[name]["counts"] == alone[name]["counts"] for got in ranks)
    assert alone["dense"]["encoded_docs"] == alone["dynamic"]["encoded_docs"] == 40
    for got in ranks:  # the 40-document corpus encoded in halves
        assert got["dense"]["encoded_docs"] == got["dynamic"]["encoded_docs"] == 20
    assert alone["ngame"]["encoded_queries"] == 16 and len(alone["ngame"]["batch"]) == 4
    for got in ranks:  # NGAME: the 16 queries embedded in halves, clustered alike into the same batch
        assert got["ngame"]["encoded_queries"] == 8
        assert got["ngame"]["batch"] == alone["ngame"]["batch"]
    assert not list(shared.glob("*/*.part*"))  # each process's share is folded into the whole file
