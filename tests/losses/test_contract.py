"""Every registered loss against the shared contract: gradients, invariances, padding, edge cases."""

import pytest
import torch

import rankwise.losses as L

# Losses that compare across lists (one value per batch) need the same column permutation in
# every row; the rest are per-list and must not care how each list is ordered. Losses whose value
# depends on absolute scores by design are not shift-invariant. Both facts live beside each loss.
BATCH_LEVEL = {n for n in L.available() if L.facts(n).batch_level}
NOT_SHIFT_INVARIANT = {n for n in L.available() if not L.facts(n).shift_invariant}
# Piecewise losses whose gradient is not defined everywhere: gradcheck away from the kinks.
SPECS = {name: {} for name in L.available()}
SPECS["pg_rank"] = {"seed": 0, "n_samples": 4}
SPECS["soft_topk"] = {"k": 2}
SPECS["infonce"] = {"temperature": 0.5}


def call(name, scores, labels, mask=None, **extra):
    kw = dict(SPECS[name])
    kw.update(extra)
    if name in L.NEEDS_TEACHER and "teacher_scores" not in kw:
        torch.manual_seed(99)
        kw["teacher_scores"] = torch.randn(scores.shape, dtype=scores.dtype)
    return L.get(name)(scores, labels, mask, **kw)


def batch(seed=0, n=3, size=6):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, size, generator=g, dtype=torch.float64) * 0.5
    labels = torch.randint(0, 4, (n, size), generator=g).double()
    labels[:, 0] = 2  # each list has a relevant item
    labels[:, 1] = 0  # and a non-relevant one
    return scores, labels


@pytest.mark.parametrize("name", L.available())
def test_gradcheck(name):
    scores, labels = batch(1)
    teacher = torch.randn(scores.shape, dtype=torch.float64)
    scores.requires_grad_(True)
    extra = {"teacher_scores": teacher} if name in L.NEEDS_TEACHER else {}
    assert torch.autograd.gradcheck(lambda s: call(name, s, labels, **extra), (scores,), atol=1e-5)


@pytest.mark.parametrize("name", L.available())
def test_permuting_items_with_labels(name):
    scores, labels = batch(2)
    teacher = torch.randn(scores.shape, dtype=torch.float64)
    base = call(name, scores, labels, teacher_scores=teacher) if name in L.NEEDS_TEACHER else call(name, scores, labels)
    g = torch.Generator().manual_seed(5)
    if name in BATCH_LEVEL:
        perm = torch.randperm(scores.shape[1], generator=g).expand_as(scores)
    else:
        perm = torch.stack([torch.randperm(scores.shape[1], generator=g) for _ in range(scores.shape[0])])
    ps, pl, pt = (torch.gather(x, 1, perm) for x in (scores, labels, teacher))
    got = call(name, ps, pl, teacher_scores=pt) if name in L.NEEDS_TEACHER else call(name, ps, pl)
    if name == "pg_rank":  # the same seed draws other rankings after a permutation: compare in expectation
        assert torch.isfinite(got)
        return
    assert got.item() == pytest.approx(base.item(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", L.available())
def test_padding_changes_nothing(name):
    scores, labels = batch(3)
    teacher = torch.randn(scores.shape, dtype=torch.float64)
    extra_cols = 4
    wild = torch.full((scores.shape[0], extra_cols), 1e4, dtype=torch.float64)
    ps = torch.cat([scores, wild], 1)
    pl = torch.cat([labels, torch.full_like(wild, 3.0)], 1)
    pt = torch.cat([teacher, wild], 1)
    mask = torch.cat([torch.ones_like(scores), torch.zeros_like(wild)], 1).bool()
    if name in L.NEEDS_TEACHER:
        base, got = call(name, scores, labels, teacher_scores=teacher), call(name, ps, pl, mask, teacher_scores=pt)
    else:
        base = call(name, scores, labels)
        got = call(name, ps, pl, mask)
    if name == "pg_rank":  # padding changes the shape of the Gumbel draw; both must still be finite
        assert torch.isfinite(got)
        return
    assert got.item() == pytest.approx(base.item(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", sorted(set(L.available()) - NOT_SHIFT_INVARIANT))
def test_shifting_scores_changes_nothing(name):
    scores, labels = batch(4)
    shift = torch.tensor([[3.0], [-7.5], [0.25]], dtype=torch.float64)
    if name in BATCH_LEVEL:
        shift = torch.full_like(shift, 3.0)  # the same shift everywhere keeps cross-list comparisons
    teacher = torch.randn(scores.shape, dtype=torch.float64)
    extra = {"teacher_scores": teacher} if name in L.NEEDS_TEACHER else {}
    assert call(name, scores + shift, labels, **extra).item() == pytest.approx(
        call(name, scores, labels, **extra).item(), rel=1e-7, abs=1e-9
    )


@pytest.mark.parametrize("name", L.available())
@pytest.mark.parametrize(
    "case",
    ["no_positive", "single_item", "all_tied", "huge_scores", "all_padding_row"],
)
def test_edge_cases_are_finite(name, case):
    scores, labels = batch(6)
    mask = None
    if case == "no_positive":
        labels[1] = 0
    elif case == "single_item":
        scores, labels = scores[:, :1], labels[:, :1]
    elif case == "all_tied":
        scores = torch.ones_like(scores)
    elif case == "huge_scores":
        scores = scores.sign() * 1e4
    elif case == "all_padding_row":
        mask = torch.ones_like(scores, dtype=torch.bool)
        mask[2] = False
    scores = scores.clone().requires_grad_(True)
    kw = {}
    if name == "soft_topk":
        kw["k"] = 1
    out = call(name, scores, labels, mask, **kw)
    out.backward()
    assert torch.isfinite(out), (name, case, out)
    assert torch.isfinite(scores.grad).all(), (name, case)


@pytest.mark.parametrize("name", sorted(set(L.available()) - BATCH_LEVEL - {"infonce"}))
def test_per_list_reductions_agree(name):
    scores, labels = batch(7)
    labels[1] = 0  # a list without a relevant item is left out of the mean where the loss needs one
    teacher = torch.randn(scores.shape, dtype=torch.float64)
    extra = {"teacher_scores": teacher} if name in L.NEEDS_TEACHER else {}
    per = call(name, scores, labels, reduction="none", **extra)
    assert per.shape == (3,)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    total = call(name, scores, labels, reduction="sum", weights=w, **extra)
    assert total.item() == pytest.approx((per * w).sum().item(), rel=1e-9, abs=1e-12)
