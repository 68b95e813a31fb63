"""What the benchmark scripts share instead of restating it: where things are, and the one
stdlib-code training budget the dual-encoder studies use (batch, learning rate, lengths, seed)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
RUNS = BENCH / "runs"  # committed run records (a study longer than a session)
SHARED = REPO.parent / "shared" / "data"  # read by path, never copied into the repository
TREC_DL = SHARED / "trec-dl-5k"
SCIFACT = SHARED / "scifact"
LETOR = SHARED / "letor"

# the dual encoder on stdlib-code: 32 examples a step at lr 1e-4, queries cut at 32 tokens and
# documents at 128 (the demo's budget, chosen on dev), seed 42
STDLIB_TRAIN = {"batch_size": 32, "lr": 1e-4, "query_max_length": 32, "doc_max_length": 128}
SEED = 42
