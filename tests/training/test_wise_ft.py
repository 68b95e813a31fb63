"""WiSE-FT: interpolated weights by hand at alpha 0, 0.5, 1; alpha chosen on dev; errors."""

import pytest
import torch

import rankwise as rw
from rankwise.data import load_beir
from rankwise.errors import RankwiseError
from rankwise.training.wise_ft import interpolate_weights, wise_ft


def _pair(tiny_model_dir):
    start = rw.BiEncoder.load(tiny_model_dir)
    tuned = rw.BiEncoder.load(tiny_model_dir)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in tuned.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return start, tuned


def test_interpolation_by_hand(tiny_model_dir):
    start, tuned = _pair(tiny_model_dir)
    half = interpolate_weights(start, tuned, 0.5)
    for (name, p0), p1, ph in zip(start.named_parameters(), tuned.parameters(), half.parameters()):
        torch.testing.assert_close(ph, (p0 + p1) / 2, msg=name)
    texts = ["sorting a list", "open a file"]
    for alpha, same in ((0.0, start), (1.0, tuned)):
        got = interpolate_weights(start, tuned, alpha).encode(texts, "query")
        torch.testing.assert_close(torch.as_tensor(got), torch.as_tensor(same.encode(texts, "query")))
    assert half is not tuned and next(tuned.parameters()).data_ptr() != next(half.parameters()).data_ptr()
    with pytest.raises(RankwiseError, match="alpha"):
        interpolate_weights(start, tuned, 1.5)
    with pytest.raises(RankwiseError, match="cannot interpolate a bi-encoder"):
        interpolate_weights(start, rw.CrossEncoder(tiny_model_dir), 0.5)


def test_alpha_is_chosen_on_dev_and_the_check_set_is_reported(tiny_model_dir, toy_beir):
    start, tuned = _pair(tiny_model_dir)
    test = load_beir(toy_beir, "test").own_split()
    train = load_beir(toy_beir, "train").own_split()
    res = wise_ft(start, tuned, train, alphas=(1.0, 0.5, 0.0), k=8, check=test)
    assert list(res.dev) == [1.0, 0.5, 0.0] and list(res.check) == [1.0, 0.5, 0.0]
    assert res.dev[res.alpha] == max(res.dev.values())
    assert res.alpha == next(a for a in (1.0, 0.5, 0.0) if res.dev[a] == max(res.dev.values()))  # first of equals
    again = rw.evaluate_model(res.model, train, 8).metrics["ndcg@10"]
    assert again == pytest.approx(res.dev[res.alpha])
    assert res.dev[0.0] == pytest.approx(rw.evaluate_model(start, train, 8).metrics["ndcg@10"])
