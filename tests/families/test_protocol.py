"""The family protocol: every model is asked through its family, a user's family registers with
one decorator, a plain loss function trains, and every command's job returns a dataclass."""

import dataclasses
import importlib
import inspect

import numpy as np
import pytest
import torch

import rankwise as rw
from rankwise.errors import ConfigError
from rankwise.families import CrossFamily, DualFamily, Family, family_of, find_family, register_family
from rankwise.registry import FAMILIES


def test_rw_train_is_a_plain_function():
    assert inspect.isfunction(rw.train)


def test_the_built_in_families_are_registered_by_name():
    assert {"bi-encoder", "cross-encoder", "feature-scorer", "preference", "dla"} <= set(FAMILIES.names())


def test_family_of_finds_the_model_family_and_refuses_others(tiny_model_dir):
    assert isinstance(family_of(rw.BiEncoder.load(str(tiny_model_dir))), DualFamily)
    assert isinstance(family_of(rw.CrossEncoder(tiny_model_dir, seed=0)), CrossFamily)
    assert find_family(object()) is None
    with pytest.raises(ConfigError, match="no model family handles a object"):
        family_of(object())


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))


def test_a_users_family_is_found_and_a_later_registration_wins():
    @register_family(Tiny, name="tiny-a")
    class A(Family):
        pass

    assert type(family_of(Tiny())) is A

    @register_family(Tiny, name="tiny-b")
    class B(Family):
        def score(self, query, docs, batch_size=64):
            return np.arange(len(docs), dtype=np.float32)

    fam = family_of(Tiny())
    assert type(fam) is B and "tiny-b" in FAMILIES.names()
    assert fam.rank("q", ["a", "b", "c"]).tolist() == [0.0, 1.0, 2.0]  # eval mode, no grad
    assert fam.teacher().score("q", ["a", "b"]).tolist() == [0.0, 1.0]
    stage = fam.second_stage()
    stage.texts = {"x": "text x", "y": "text y"}  # what prepare(dataset) reads from the corpus
    assert stage.rerank("q", [("x", 5.0), ("y", 1.0)]) == {"x": 0.0, "y": 1.0}
    with pytest.raises(ConfigError, match="does not retrieve"):
        fam.first_stage()
    assert rw.TrainConfig(kind="tiny-b").kind == "tiny-b"
    with pytest.raises(Exception, match="expected one of"):
        rw.TrainConfig(kind="no-such-family")


def my_softmax_loss(scores, labels, mask):
    """A user's own loss: softmax cross-entropy over each row's positives."""
    logp = torch.log_softmax(scores.masked_fill(~mask, -1e9) if mask is not None else scores, dim=1)
    return -(logp * labels).sum(1).div(labels.sum(1).clamp_min(1)).mean()


def test_a_plain_loss_function_trains_and_round_trips_by_name(toy_beir, tiny_model_dir):
    cfg = rw.TrainConfig(loss=my_softmax_loss, steps=3, batch_size=2, query_max_length=16, doc_max_length=16)
    assert cfg.loss.spec == f"{__name__}.my_softmax_loss"
    again = rw.TrainConfig(**cfg.to_toml_dict())  # config.toml's importable name loads it
    assert again.loss.fn is my_softmax_loss
    model = rw.BiEncoder.load(str(tiny_model_dir))
    before = [p.detach().clone() for p in model.parameters()]
    result = rw.train(model, rw.load_dataset(toy_beir, "test"), cfg, log=lambda _: None)
    assert len(result.history) == 3 and all(np.isfinite(h.loss) for h in result.history)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_loss_function_that_fails_is_one_clear_error():
    def broken(scores, labels, mask):
        return scores.sum(dim=7)

    with pytest.raises(ConfigError, match="broken' fails on a"):
        rw.TrainConfig(loss=broken)
    with pytest.raises(ConfigError, match="cannot import"):
        rw.TrainConfig(loss="no_such_module.no_such_loss")


JOBS = {
    "eval": ("evaluate_split", "EvalJob"),
    "rerank": ("rerank", "RerankJob"),
    "train": ("train_run", "TrainJob"),
    "demo": ("demo", "DemoJob"),
    "mine": ("mine", "MineJob"),
    "encode": ("encode", "EncodeJob"),
    "compare": ("compare", "CompareJob"),
    "report": ("report", "ReportJob"),
    "sweep": ("run_sweep", "SweepResult"),
    "ar2": ("ar2", "AR2Job"),
    "ltr": ("ltr_train", "LtrTrainJob"),
}


@pytest.mark.parametrize("command", sorted(JOBS))
def test_every_command_has_a_job_that_returns_a_dataclass(command):
    module = importlib.import_module(f"rankwise.jobs.{command}")
    fn_name, result_name = JOBS[command]
    fn = getattr(module, fn_name)
    hints = inspect.signature(fn).return_annotation
    result = getattr(module, result_name)
    assert dataclasses.is_dataclass(result)
    assert hints in (result_name, result)
