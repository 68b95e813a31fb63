"""Data: BEIR datasets, TREC qrels and runs, training examples, the built-in ``stdlib-code`` set."""

from rankwise.data.beir import Dataset, Document, load_beir, load_dataset
from rankwise.data.examples import TeacherScores, TrainExample, examples_from_qrels, load_examples, write_examples
from rankwise.data.trec import read_qrels, read_run, write_qrels, write_run

__all__ = [
    "Dataset",
    "Document",
    "load_beir",
    "load_dataset",
    "TeacherScores",
    "TrainExample",
    "examples_from_qrels",
    "load_examples",
    "write_examples",
    "read_qrels",
    "read_run",
    "write_qrels",
    "write_run",
]
