"""Time forward + backward of every rankwise loss on 64 lists x 1,000 items, beside the same loss
in an installed peer where one exists (same inputs, same process, same threads).

Peers: sentence-transformers' MultipleNegativesRankingLoss (for infonce, from embeddings; the
in-batch matrix is 64 x 1,024 there, so both sides get that shape) and its CrossEncoder losses
RankNetLoss, ListNetLoss, ListMLELoss, PListMLELoss and LambdaLoss (NDCG-Loss2++), driven
through a stub model that returns the precomputed scores; their time includes the Python pair
bookkeeping that is part of their loss's forward.

    python benchmarks/losses.py [--repeats 5] [--quick]

Writes benchmarks/results/losses.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks is a package
import rankwise.losses as L  # noqa: E402
from benchmarks._machine import machine, write_result  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "losses.json"
PEERS = ()  # libraries besides torch/transformers/sentence-transformers whose figures it reports
N_LISTS, SIZE, DIM = 64, 1000, 384


def timed(fn, repeats: int) -> float:
    """Median wall time after warm-up; a call slower than 5 s is measured once after one warm-up,
    one faster than 0.1 s at least 30 times (millisecond timings are noisy)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > 5.0:
        repeats = 1
    else:
        fn()
        if first < 0.1:
            repeats = max(repeats, 30)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timed_pair(ours, theirs, repeats: int) -> tuple[float, float]:
    """Medians of interleaved calls, so drift in machine load hits both sides alike; calls
    faster than 0.1 s are repeated at least 100 times."""
    for fn in (ours, theirs, ours, theirs):
        fn()  # warm-up
    t_ours, t_theirs = [], []
    i = 0
    while i < repeats:
        for fn, out in ((ours, t_ours), (theirs, t_theirs)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        if i == 0 and max(t_ours[0], t_theirs[0]) < 0.1:
            repeats = max(repeats, 100)
        i += 1
    return statistics.median(t_ours), statistics.median(t_theirs)


class _StubCrossEncoder(torch.nn.Module):
    """Stands in for a CrossEncoder: returns the next precomputed scores for each mini-batch."""

    def __init__(self, flat_scores: torch.Tensor) -> None:
        super().__init__()
        self.flat = flat_scores
        self.num_labels = 1
        self.pos = 0

    @property
    def device(self):
        return torch.device("cpu")

    def preprocess(self, pairs, prompt=None, task=None):
        idx = torch.arange(self.pos, self.pos + len(pairs))
        self.pos = (self.pos + len(pairs)) % self.flat.numel()
        return {"idx": idx}

    def forward(self, tokens):
        return {"scores": self.flat[tokens["idx"]]}


def st_cross_encoder_peers():
    try:
        from sentence_transformers.cross_encoder import losses as ce
    except ImportError:
        return {}
    return {
        "ranknet": ("sentence_transformers.cross_encoder.losses.RankNetLoss", lambda m: ce.RankNetLoss(m)),
        "listnet": ("sentence_transformers.cross_encoder.losses.ListNetLoss", lambda m: ce.ListNetLoss(m)),
        "listmle": ("sentence_transformers.cross_encoder.losses.ListMLELoss", lambda m: ce.ListMLELoss(m)),
        "plistmle": ("sentence_transformers.cross_encoder.losses.PListMLELoss", lambda m: ce.PListMLELoss(m)),
        "lambdaloss": ("sentence_transformers.cross_encoder.losses.LambdaLoss", lambda m: ce.LambdaLoss(m)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="16 lists x 200 items, 2 repeats")
    args = ap.parse_args()
    n_lists, size, repeats = (16, 200, 2) if args.quick else (N_LISTS, SIZE, args.repeats)
    g = torch.Generator().manual_seed(0)
    base = torch.randn(n_lists, size, generator=g)
    labels = torch.zeros(n_lists, size)
    labels[:, :5] = torch.randint(1, 4, (n_lists, 5), generator=g).float()  # a few graded positives per list
    labels = labels[:, torch.randperm(size, generator=g)]
    teacher = torch.randn(n_lists, size, generator=g)
    rows = []
    peers = st_cross_encoder_peers()
    for name in L.available():
        fn = L.get(name)
        extra = {"teacher_scores": teacher} if name in L.NEEDS_TEACHER else {}

        def ours(fn=fn, extra=extra):
            s = base.clone().requires_grad_(True)
            fn(s, labels, **extra).backward()

        row = {"loss": name, "seconds": None, "peer": None, "peer_seconds": None}
        if name not in peers:
            row["seconds"] = timed(ours, repeats)
        else:
            label, make = peers[name]
            queries = [f"q{i}" for i in range(n_lists)]
            docs = [[f"d{j}" for j in range(size)] for _ in range(n_lists)]
            label_list = [labels[i] for i in range(n_lists)]

            def theirs(make=make, queries=queries, docs=docs, label_list=label_list):
                s = base.clone().requires_grad_(True)
                loss = make(_StubCrossEncoder(s.view(-1)))
                loss((queries, docs), label_list).backward()

            mine, peer = timed_pair(ours, theirs, repeats)
            row.update(seconds=mine, peer=label, peer_seconds=peer)
        rows.append(row)
        print(row, flush=True)
    # infonce from embeddings, as sentence-transformers' MultipleNegativesRankingLoss receives them
    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:
        MultipleNegativesRankingLoss = None
    if MultipleNegativesRankingLoss is not None:
        groups = max(1, size // n_lists)
        q0 = torch.randn(n_lists, DIM, generator=g)
        d0 = [torch.randn(n_lists, DIM, generator=g) for _ in range(groups)]

        class _Null(torch.nn.Module):
            pass

        mnrl = MultipleNegativesRankingLoss(_Null(), scale=20.0)
        eye_labels = torch.zeros(n_lists, groups * n_lists)
        eye_labels[torch.arange(n_lists), torch.arange(n_lists)] = 1

        def st_infonce():
            q = q0.clone().requires_grad_(True)
            ds = [d.clone().requires_grad_(True) for d in d0]
            mnrl.compute_loss_from_embeddings([q] + ds, None).backward()

        def rw_infonce():
            q = q0.clone().requires_grad_(True)
            ds = [d.clone().requires_grad_(True) for d in d0]
            qn, dn = torch.nn.functional.normalize(q, dim=-1), torch.nn.functional.normalize(torch.cat(ds), dim=-1)
            L.infonce(qn @ dn.T, eye_labels, temperature=0.05).backward()

        mine, peer = timed_pair(rw_infonce, st_infonce, repeats)
        rows.append(
            {
                "loss": f"infonce (from embeddings, {n_lists} x {groups * n_lists})",
                "seconds": mine,
                "peer": "sentence_transformers MultipleNegativesRankingLoss",
                "peer_seconds": peer,
            }
        )
        print(rows[-1], flush=True)
    for r in rows:
        r["ratio"] = None if r["peer_seconds"] is None else r["peer_seconds"] / r["seconds"]
    write_result(
        OUT if not args.quick else OUT.with_name("losses-quick.json"),
        {"machine": machine(), "shape": [n_lists, size], "repeats": repeats, "losses": rows},
        PEERS,
    )


if __name__ == "__main__":
    main()
