"""One library job per command: each is a plain call that returns a dataclass and writes through
:class:`~rankwise.jobs.folder.RunFolder`; the CLI parses, calls and prints."""

from rankwise.jobs.ar2 import AR2Job, ar2
from rankwise.jobs.compare import CompareJob, compare
from rankwise.jobs.demo import DemoJob, demo
from rankwise.jobs.encode import EncodeJob, encode
from rankwise.jobs.eval import EvalJob, RunScore, evaluate_split, score_run_file
from rankwise.jobs.folder import RunFolder
from rankwise.jobs.ltr import LtrEvalJob, LtrTrainJob, ltr_eval, ltr_train
from rankwise.jobs.mine import MineJob, mine
from rankwise.jobs.report import ReportJob, report
from rankwise.jobs.rerank import RerankJob, rerank
from rankwise.jobs.sweep import run_sweep
from rankwise.jobs.train import TrainJob, train_run

__all__ = [
    "AR2Job",
    "ar2",
    "CompareJob",
    "compare",
    "DemoJob",
    "demo",
    "EncodeJob",
    "encode",
    "EvalJob",
    "RunScore",
    "evaluate_split",
    "score_run_file",
    "RunFolder",
    "LtrEvalJob",
    "LtrTrainJob",
    "ltr_eval",
    "ltr_train",
    "MineJob",
    "mine",
    "ReportJob",
    "report",
    "RerankJob",
    "rerank",
    "run_sweep",
    "TrainJob",
    "train_run",
]
