"""Each loss against hand-computed values (its docstring example) and an independent reference."""

import doctest
import itertools
import math

import numpy as np
import pytest
import torch

import rankwise.losses as L
from rankwise.errors import ConfigError

T = lambda rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731
sp = lambda z: math.log1p(math.exp(-z))  # softplus(-z) = -log sigmoid(z)  # noqa: E731


@pytest.mark.parametrize("name", L.available())
def test_every_loss_has_an_executed_worked_example(name):
    # the hand values live in each loss's docstring as a doctest (loss value == hand formula);
    # pytest also collects them (--doctest-modules src/rankwise/losses), this checks none is missing
    fn = L.get(name).fn
    tests = [t for t in doctest.DocTestFinder().find(fn, name) if t.examples]
    assert tests, f"{name} has no doctest example"
    runner = doctest.DocTestRunner()
    for t in tests:
        runner.run(t)
    assert runner.failures == 0 and runner.tries >= 3


def test_sum_spec_adds_weighted_terms():
    torch.manual_seed(0)
    s, y = torch.rand(3, 5, dtype=torch.float64), (torch.rand(3, 5) > 0.5).double()
    y[:, 0] = 1
    total = L.get("infonce:temperature=0.1+0.25*tcm:margin_plus=0.8")
    expected = L.infonce(s, y, temperature=0.1) + 0.25 * L.tcm(s, y, margin_plus=0.8)
    assert total(s, y).item() == pytest.approx(expected.item(), rel=1e-12)
    assert total.spec == "infonce:temperature=0.1+0.25*tcm:margin_plus=0.8"
    assert L.get(total.spec) == total and total.facts.batch_level and not total.facts.shift_invariant
    with pytest.raises(ConfigError, match="unknown loss 'nope'"):
        L.get("infonce+nope")
    with pytest.raises(ConfigError, match="empty term"):
        L.get("infonce+")


def test_infonce_is_multiple_negatives_ranking_loss():
    # sentence-transformers' MNRL: cross_entropy(scale * sim, arange(B)), scale = 1 / tau
    torch.manual_seed(0)
    s = torch.randn(6, 9, dtype=torch.float64)
    labels = torch.zeros_like(s)
    labels[torch.arange(6), torch.arange(6)] = 1
    ref = torch.nn.functional.cross_entropy(s * 20.0, torch.arange(6))
    assert L.infonce(s, labels, temperature=0.05).item() == pytest.approx(ref.item(), rel=1e-10)
    sym = torch.randn(6, 6, dtype=torch.float64)
    eye = torch.eye(6, dtype=torch.float64)
    both = (
        torch.nn.functional.cross_entropy(sym, torch.arange(6))
        + torch.nn.functional.cross_entropy(sym.T, torch.arange(6))
    ) / 2
    assert L.infonce(sym, eye, temperature=1, symmetric=True).item() == pytest.approx(both.item(), rel=1e-10)


def test_infonce_matches_pytorch_metric_learning_ntxent():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    torch.manual_seed(3)
    emb = torch.nn.functional.normalize(torch.randn(8, 5, dtype=torch.float64), dim=1)
    ref = pml.NTXentLoss(temperature=0.1)(emb, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    # NTXent: each anchor against its positive and every non-matching item, self excluded
    sims = emb @ emb.T
    losses = []
    for i in range(8):
        j = i + 1 if i % 2 == 0 else i - 1
        keep = torch.tensor([k != i and (k == j or k // 2 != i // 2) for k in range(8)])
        lab = torch.zeros(1, 8, dtype=torch.float64)
        lab[0, j] = 1
        losses.append(L.infonce(sims[i : i + 1], lab, keep[None], temperature=0.1))
    assert torch.stack(losses).mean().item() == pytest.approx(ref.item(), rel=1e-8)


def test_tcm_matches_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    torch.manual_seed(1)
    emb = torch.nn.functional.normalize(torch.randn(10, 4, dtype=torch.float64), dim=1)
    cls = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    ref = pml.ThresholdConsistentMarginLoss(margin_plus=0.6, margin_minus=0.1)(emb, cls)
    sims = emb @ emb.T
    same = (cls[:, None] == cls[None, :]).double()
    off_diag = ~torch.eye(10, dtype=torch.bool)
    got = L.tcm(sims, same, off_diag, margin_plus=0.6, margin_minus=0.1)
    assert got.item() == pytest.approx(ref.item(), rel=1e-8)


def _loop_lambdaloss(s, y, scheme, mu=10.0):
    """allRank's lambdaLoss written out pair by pair (one list, no padding)."""
    order = sorted(range(len(s)), key=lambda i: -s[i])
    ideal = sorted(y, reverse=True)
    idcg = sum((2**g - 1) / math.log2(2 + r) for r, g in enumerate(ideal))
    G = {i: (2 ** y[i] - 1) / idcg for i in range(len(s))}
    pos = {item: p + 1 for p, item in enumerate(order)}
    D = lambda x: math.log2(1 + x)  # noqa: E731
    total = 0.0
    for i, j in itertools.permutations(range(len(s)), 2):
        if y[i] <= y[j]:
            continue
        gap = abs(pos[i] - pos[j])
        w = abs(G[i] - G[j]) * abs(1 / D(gap) - 1 / D(gap + 1))
        if scheme == "ndcg2pp":
            w = mu * w + abs(G[i] - G[j]) * abs(1 / D(pos[i]) - 1 / D(pos[j]))
        total += -w * math.log2(1 / (1 + math.exp(-(s[i] - s[j]))))
    return total


@pytest.mark.parametrize("scheme", ["ndcg2", "ndcg2pp"])
def test_lambdaloss_equals_pairwise_transcription(scheme):
    rng = np.random.default_rng(0)
    for _ in range(5):
        s, y = rng.normal(size=7), rng.integers(0, 4, size=7).astype(float)
        y[0] = 3
        got = L.lambdaloss(T([s.tolist()]), T([y.tolist()]), scheme=scheme).item()
        assert got == pytest.approx(_loop_lambdaloss(s.tolist(), y.tolist(), scheme), rel=1e-9)


def test_ranknet_and_mw_against_loops():
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=(3, 6)), rng.integers(0, 3, size=(3, 6)).astype(float)
    y[:, 0] = 2
    per_list = []
    for q in range(3):
        terms = [sp(s[q, i] - s[q, j]) for i in range(6) for j in range(6) if y[q, i] > y[q, j]]
        per_list.append(np.mean(terms))
    assert L.ranknet(T(s), T(y)).item() == pytest.approx(np.mean(per_list), rel=1e-10)
    pos = [s[q, i] for q in range(3) for i in range(6) if y[q, i] > 0]
    neg = [s[q, i] for q in range(3) for i in range(6) if y[q, i] == 0]
    ref = np.mean([sp((p - n) / 0.5) for p in pos for n in neg])
    assert L.mw(T(s), T(y), temperature=0.5).item() == pytest.approx(ref, rel=1e-10)
    assert L.mw(T(s), T(y), temperature=0.5, chunk=2).item() == pytest.approx(ref, rel=1e-10)
    per_q = np.mean(
        [
            np.mean([sp(s[q, i] - s[q, j]) for i in range(6) for j in range(6) if y[q, i] > 0 and y[q, j] == 0])
            for q in range(3)
        ]
    )
    assert L.mw(T(s), T(y), temperature=1.0, scope="per_query").item() == pytest.approx(per_q, rel=1e-10)
    # the paper's normalisation: sum over negatives, mean over positives
    paper = np.sum([sp((p - n) / 0.5) for p in pos for n in neg]) / len(pos)
    assert L.mw(T(s), T(y), temperature=0.5, normalize="positives").item() == pytest.approx(paper, rel=1e-10)
    assert L.get("mw:temperature=0.5,normalize=positives")(T(s), T(y)).item() == pytest.approx(paper, rel=1e-10)
    per_q_paper = np.mean(
        [
            np.sum([sp(s[q, i] - s[q, j]) for i in range(6) for j in range(6) if y[q, i] > 0 and y[q, j] == 0])
            / np.sum(y[q] > 0)
            for q in range(3)
        ]
    )
    got = L.mw(T(s), T(y), temperature=1.0, scope="per_query", normalize="positives").item()
    assert got == pytest.approx(per_q_paper, rel=1e-10)


def test_listmle_is_plackett_luce_likelihood():
    s, y = [0.3, -1.2, 2.0, 0.5], [3, 0, 1, 2]  # distinct labels: one ideal order
    order = sorted(range(4), key=lambda i: -y[i])
    nll = 0.0
    for k in range(4):
        rest = order[k:]
        nll -= s[order[k]] - math.log(sum(math.exp(s[j]) for j in rest))
    assert L.listmle(T([s]), T([y]), top_k=None).item() == pytest.approx(nll, rel=1e-10)
    first3 = nll + (s[order[3]] - math.log(math.exp(s[order[3]])))
    assert L.listmle(T([s]), T([y])).item() == pytest.approx(first3, rel=1e-10)  # 3 relevant items


def test_plistmle_matches_weighted_transcription():
    s, y = [0.3, -1.2, 2.0, 0.5, 0.0], [3, 0, 1, 2, 0]
    order = sorted(range(5), key=lambda i: (-y[i], -s[i]))
    alpha = [2 ** (5 - k) - 1 for k in range(1, 6)]
    alpha = [a / sum(alpha) for a in alpha]
    ref = -sum(alpha[k] * (s[order[k]] - math.log(sum(math.exp(s[j]) for j in order[k:]))) for k in range(5))
    assert L.plistmle(T([s]), T([y])).item() == pytest.approx(ref, rel=1e-10)


def test_approx_and_neural_ndcg_approach_true_ndcg():
    s, y = T([[0.1, 2.0, -1.0, 0.7, 0.3]]), T([[2, 0, 1, 3, 0]])
    order = torch.argsort(s[0], descending=True)
    gains = 2 ** y[0][order] - 1
    dcg = (gains / torch.log2(torch.arange(2, 7, dtype=torch.float64))).sum()
    ideal = torch.sort(2 ** y[0] - 1, descending=True).values
    ndcg = (dcg / (ideal / torch.log2(torch.arange(2, 7, dtype=torch.float64))).sum()).item()
    assert -L.approxndcg(s, y, alpha=200.0).item() == pytest.approx(ndcg, abs=1e-4)
    assert -L.neuralndcg(s, y, temperature=1e-3).item() == pytest.approx(ndcg, abs=1e-4)
    assert -L.neuralndcg(s, y, temperature=1.0).item() < 1.0


def test_soft_topk_memberships_sum_to_k():
    s = torch.randn(4, 12, dtype=torch.float64)
    for k in (1, 3, 11):
        # with every item positive the loss is -mean log p, and the p sum to k: check via p from the threshold
        labels = torch.ones_like(s)
        loss = L.soft_topk(s, labels, k=k, temperature=1.0, reduction="none")
        assert torch.all(loss > 0) and torch.all(torch.isfinite(loss))
    from rankwise.losses import listwise

    # the implicit gradient through the threshold equals finite differences
    s1 = torch.randn(1, 6, dtype=torch.float64, requires_grad=True)
    lab = T([[1, 0, 0, 1, 0, 0]])
    assert torch.autograd.gradcheck(lambda x: listwise.soft_topk(x, lab, k=2, temperature=1.0), (s1,))


def test_wasserstein_equals_frechet_distance_with_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    torch.manual_seed(2)
    s, y = torch.randn(5, 4, dtype=torch.float64), torch.randint(0, 4, (5, 4)).double()
    p, q = torch.softmax(s, 1).numpy(), torch.softmax(y, 1).numpy()
    cp, cq = np.cov(p, rowvar=False), np.cov(q, rowvar=False)
    covmean = scipy_linalg.sqrtm(cp @ cq).real
    ref = ((p.mean(0) - q.mean(0)) ** 2).sum() + np.trace(cp + cq - 2 * covmean)
    # SyCL adds 1e-15 to each eigenvalue before the square root: the zero ones add ~3e-8 each
    assert L.wasserstein(s, y).item() == pytest.approx(ref, abs=1e-6)


def test_kl_matches_torch_kl_div():
    s, t = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    ref = torch.nn.functional.kl_div(
        torch.log_softmax(s, 1), torch.log_softmax(t / 2, 1), log_target=True, reduction="batchmean"
    )
    assert L.kl(s, torch.zeros_like(s), teacher_scores=t, teacher_temperature=2.0).item() == pytest.approx(
        ref.item(), rel=1e-10
    )


def test_diffkendall_recovers_kendall_tau_when_sharp():
    s, y = T([[3.0, 1.0, 2.0, 0.0]]), T([[3, 2, 1, 0]])
    # pairs: 5 concordant, 1 discordant -> tau = 4/6; the loss with a sharp sign is -2 tau, ties in y scaled by t(y)
    got = L.diffkendall(s, y, alpha=200.0).item()
    assert got == pytest.approx(-2 * (4 / 6), abs=1e-3)


def test_pg_rank_gradient_ascends_expected_ndcg():
    torch.manual_seed(0)
    y = T([[0, 0, 3, 0, 1, 0]])
    s = torch.zeros(1, 6, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([s], lr=2.0)
    for step in range(60):
        opt.zero_grad()
        L.pg_rank(s, y, n_samples=16, k=3, seed=step).backward()
        opt.step()
    top = torch.argsort(s.detach()[0], descending=True)[:2].tolist()
    assert top == [2, 4]  # the most relevant items rise to the top
    a = L.pg_rank(s, y, seed=7)
    b = L.pg_rank(s, y, seed=7)
    assert a.item() == b.item()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("infonce:temperature=0", "temperature must be > 0"),
        ("listnet:temperature=-1", "temperature must be > 0"),
        ("nope", "unknown loss 'nope'"),
        ("ranknet:tau=1", "has no parameter 'tau'"),
        ("lambdaloss:k=100", "k=100 is larger than the list size"),
        ("neuralndcg:k=100", "k=100 is larger than the list size"),
        ("soft_topk:k=100", "k=100 is larger than the list size"),
        ("pg_rank:n_samples=1", "n_samples must be an integer >= 2"),
        ("lambdaloss:ndcg9", "scheme must be 'ndcg2' or 'ndcg2pp'"),
        ("mw:everywhere", "scope must be 'global' or 'per_query'"),
        ("mw:normalize=queries", "normalize must be 'pairs' or 'positives'"),
        ("hinge:margin=-1", "margin must be >= 0"),
        ("tcm:margin_minus=0.95", "margin_minus <= margin_plus"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(spec, message):
    with pytest.raises(ConfigError, match=message):
        L.get(spec)


def _name_params(spec: str) -> tuple[str, dict]:
    loss = L.get(spec)
    return loss.name, loss.params


def test_registry_parses_specs():
    assert _name_params("infonce:temperature=0.1, symmetric=true") == (
        "infonce",
        {"temperature": 0.1, "symmetric": True},
    )
    assert _name_params("lambdaloss:ndcg2pp,mu=5") == ("lambdaloss", {"scheme": "ndcg2pp", "mu": 5})
    assert _name_params("mw:per_query") == ("mw", {"scope": "per_query"})
    with pytest.raises(ConfigError, match="needs teacher_scores"):
        L.margin_mse(torch.zeros(1, 2), torch.ones(1, 2))


def test_listnet_label_temperature_sharpens_the_target():
    s, y = T([[1.0, 0.0, 0.0]]), T([[1, 0, 0]])
    sharp = L.listnet(s, y, label_temperature=1e-3).item()
    assert sharp == pytest.approx(-math.log(math.e / (math.e + 2)), abs=1e-6)  # one-hot target: softmax CE


def test_ranknet_with_pair_count_weights_is_the_batch_pair_mean():
    # allRank, sentence-transformers and rax average over every pair of the batch; rankwise per
    # list, then over lists. Weighting each list by its pair count gives theirs (as the docstring says).
    scores = T([[0.3, 0.1, -0.2, 0.5], [0.9, 0.4, 0.0, 0.0]])
    labels = T([[2, 1, 0, 0], [1, 0, 0, 0]])
    pairs = [(q, i, j) for q in range(2) for i in range(4) for j in range(4) if labels[q, i] > labels[q, j]]
    batch_mean = np.mean([sp(float(scores[q, i] - scores[q, j])) for q, i, j in pairs])
    counts = T([sum(1 for p in pairs if p[0] == q) for q in range(2)])
    assert L.ranknet(scores, labels, weights=counts).item() == pytest.approx(batch_mean, rel=1e-12)
    assert L.ranknet(scores, labels).item() != pytest.approx(batch_mean, rel=1e-6)


def test_a_registered_user_loss_is_usable_by_name_in_sums():
    @L.register_loss("offset_for_test")
    def offset_for_test(scores, labels, mask=None, *, weights=None, reduction="mean", by: float = 1.0):
        return scores.sum() * 0 + by

    both = L.get("infonce+0.5*offset_for_test:by=3")
    scores, labels = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0]])
    want = float(L.infonce(scores, labels)) + 0.5 * 3
    assert float(both(scores, labels)) == pytest.approx(want)
    with pytest.raises(ConfigError, match="has no parameter 'nope'"):
        L.get("offset_for_test:nope=1")


def test_irpo_by_hand():
    # IRPO (Wu et al. 2025) from its formula, item by item, positions as given and as scored.
    s = [0.3, -0.2, 1.1, 0.0]
    y = [2.0, 0.0, 1.0, 1.0]
    beta = 0.7

    def by_hand(pos):
        n = len(s)
        total = 0.0
        for i in range(n):
            w = (2 ** y[i] - 1) / math.log2(1 + pos[i])
            z = math.log(sum(math.exp(beta * (s[j] - s[i])) for j in range(n) if j != i) / (n - 1))
            total += w * math.log(1 + math.exp(z))  # -log sigmoid(-z)
        return total / n

    given = L.irpo(
        torch.tensor([s], dtype=torch.float64), torch.tensor([y], dtype=torch.float64), beta=beta, positions="given"
    )
    assert given.item() == pytest.approx(by_hand([1, 2, 3, 4]), rel=1e-12)
    scored = L.irpo(torch.tensor([s], dtype=torch.float64), torch.tensor([y], dtype=torch.float64), beta=beta)
    assert scored.item() == pytest.approx(by_hand([2, 4, 1, 3]), rel=1e-12)  # ranks of s by descending score
