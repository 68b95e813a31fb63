import math

import pytest
import torch

from rankwise.errors import ConfigError
from rankwise.losses import available, get, infonce, parse_spec


def test_hand_value_from_docstring():
    loss = infonce(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[1, 0, 0]]), temperature=1.0)
    assert loss.item() == pytest.approx(-2 + math.log(math.exp(2) + math.exp(1) + 1), abs=1e-6)


def test_equals_multiple_negatives_ranking_loss_formula():
    # sentence-transformers' MNRL: cross_entropy(scale * cos(q, d), arange(B)) with scale = 1/tau
    torch.manual_seed(0)
    s = torch.randn(6, 9, dtype=torch.float64)
    labels = torch.zeros_like(s)
    labels[torch.arange(6), torch.arange(6)] = 1
    ref = torch.nn.functional.cross_entropy(s * 20.0, torch.arange(6))
    assert infonce(s, labels, temperature=0.05).item() == pytest.approx(ref.item(), rel=1e-10)


def test_multiple_positives_do_not_compete():
    s = torch.tensor([[3.0, 2.0, 0.0]], dtype=torch.float64)
    two = infonce(s, torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64), temperature=1.0)
    each = [(-a + math.log(math.exp(a) + 1.0)) for a in (3.0, 2.0)]
    assert two.item() == pytest.approx(sum(each) / 2)


def test_gradcheck():
    s = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1, 0, 0, 1, 0], [0, 2, 0, 0, 0], [0, 0, 0, 0, 1]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 1, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda x: infonce(x, labels, mask, temperature=0.5), (s,))


def test_invariances():
    torch.manual_seed(1)
    s = torch.randn(4, 7, dtype=torch.float64)
    labels = (torch.rand(4, 7) > 0.7).double()
    labels[:, 0] = 1
    base = infonce(s, labels)
    perm = torch.randperm(7)
    assert infonce(s[:, perm], labels[:, perm]).item() == pytest.approx(base.item(), rel=1e-10)
    assert infonce(s + 3.7, labels).item() == pytest.approx(base.item(), rel=1e-10)  # per-list shift
    padded = torch.cat([s, torch.full((4, 3), 1e4, dtype=torch.float64)], 1)
    plabels = torch.cat([labels, torch.ones(4, 3, dtype=torch.float64)], 1)
    mask = torch.cat([torch.ones(4, 7), torch.zeros(4, 3)], 1).bool()
    assert infonce(padded, plabels, mask).item() == pytest.approx(base.item(), rel=1e-10)


def test_edge_cases_are_finite():
    big = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float64, requires_grad=True)
    out = infonce(big, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(big.grad).all()
    assert infonce(torch.zeros(2, 3), torch.zeros(2, 3)).item() == 0.0  # no positive anywhere
    assert infonce(torch.zeros(1, 1), torch.ones(1, 1)).item() == 0.0  # single item, nothing to beat
    tied = infonce(torch.ones(1, 4), torch.tensor([[1.0, 0, 0, 0]]), temperature=1.0)
    assert tied.item() == pytest.approx(math.log(4))
    assert infonce(torch.zeros(1, 3), torch.ones(1, 3), torch.zeros(1, 3, dtype=torch.bool)).item() == 0.0  # all padding
    rows = infonce(torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 0.0]]), reduction="none", temperature=1.0)
    assert rows[1].item() == 0.0 and rows[0].item() == pytest.approx(math.log(1 + math.exp(-1)))


def test_registry_specs_and_errors():
    assert "infonce" in available()
    assert parse_spec("infonce:temperature=0.1, reduction=sum") == ("infonce", {"temperature": 0.1, "reduction": "sum"})
    fn = get("infonce:temperature=1")
    assert fn(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[1, 0, 0]])).item() == pytest.approx(0.4076, abs=1e-4)
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        get("nope")
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        get("infonce:temperature=-1")
    with pytest.raises(ConfigError, match="no parameter 'tau'"):
        get("infonce:tau=1")
