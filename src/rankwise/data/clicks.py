"""Clicks on ranked lists: simulated users and click logs, for unbiased learning to rank.

Click models (named like every option, ``"pbm:eta=1.0,p_min=0.1"``):

- :class:`PositionBasedModel` (PBM): a result at rank ``k`` is examined with probability
  ``exam[k] ** eta`` and, once examined, clicked with a probability set by its grade,
  ``click(g) = a + 2**g * b`` from ``p_min`` (noise on a non-relevant result) to ``p_max`` (grade
  ``max_grade``); the defaults are the ULTR literature's (Ai et al., SIGIR 2018, ``click_models.py``:
  examination ``[0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06]``).
- :class:`CascadeModel`: the user reads from the top and stops after a click with probability
  ``stop``; a result is clicked with ``click(g)`` when read.

A click log holds sessions: the rows of the list as displayed and the clicks on them. Displayed
lists come from a production ranker's scores or from logged positions (LightGBM's ``.position``
file, read with the LETOR data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rankwise.data.letor import LetorData
from rankwise.errors import DataError, RankwiseError
from rankwise.registry import Registry

ULTR_EXAMINATION = (0.68, 0.61, 0.48, 0.34, 0.28, 0.20, 0.11, 0.10, 0.08, 0.06)


@dataclass
class ClickModel:
    p_min: float = 0.1
    p_max: float = 1.0
    max_grade: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.p_min <= self.p_max <= 1:
            raise ValueError("expected 0 <= p_min <= p_max <= 1")

    def click_probability(self, grades: np.ndarray) -> np.ndarray:
        b = (self.p_max - self.p_min) / (2**self.max_grade - 1)
        a = self.p_min - b
        return np.clip(a + b * 2.0 ** np.clip(grades, 0, self.max_grade), 0.0, 1.0)

    def examination(self, k: int) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def clicks(self, grades: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


CLICK_MODELS: Registry[ClickModel] = Registry("click model", ClickModel)


@CLICK_MODELS.register("pbm")
@dataclass
class PositionBasedModel(ClickModel):
    eta: float = 1.0
    exam: tuple[float, ...] = ULTR_EXAMINATION  # beyond its end: its last value

    def examination(self, k: int) -> np.ndarray:
        e = np.asarray(self.exam, dtype=np.float64)
        e = np.concatenate([e, np.full(max(0, k - len(e)), e[-1])])[:k]
        return e**self.eta

    def clicks(self, grades: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.examination(grades.shape[-1]) * self.click_probability(grades)
        return (rng.random(grades.shape) < p).astype(np.float32)


@CLICK_MODELS.register("cascade")
@dataclass
class CascadeModel(ClickModel):
    stop: float = 0.5  # probability of leaving after a click

    def examination(self, k: int) -> np.ndarray:
        """No fixed examination by rank: it depends on the clicks above. Returned for rank 1 only."""
        return np.ones(k)

    def clicks(self, grades: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.click_probability(grades)
        out = np.zeros(grades.shape, dtype=np.float32)
        reading = np.ones(grades.shape[:-1], dtype=bool)
        for k in range(grades.shape[-1]):
            click = reading & (rng.random(reading.shape) < p[..., k])
            out[..., k] = click
            reading &= ~(click & (rng.random(reading.shape) < self.stop))
        return out


def click_model(spec: str | ClickModel) -> ClickModel:
    return spec if isinstance(spec, ClickModel) else CLICK_MODELS.create(spec)


@dataclass
class ClickLog:
    """Sessions over displayed lists: ``rows[s, k]`` the data row shown at rank ``k + 1`` in session
    ``s`` (-1: nothing), ``clicks[s, k]`` 1 where it was clicked, ``query[s]`` its query index."""

    query: np.ndarray  # [S]
    rows: np.ndarray  # [S, K]
    clicks: np.ndarray  # [S, K]
    model: str = ""
    true_examination: np.ndarray | None = field(default=None, repr=False)  # [K] when simulated with a PBM

    def examples(self, data: LetorData) -> list[ClickExample]:
        """One training example per session: the displayed rows' features, clicks, ranks."""
        out = []
        for q, rows, clicks in zip(self.query, self.rows, self.clicks):
            shown = rows >= 0
            out.append(
                ClickExample(str(data.qids[q]), data.features[rows[shown]], clicks[shown], np.flatnonzero(shown))
            )
        return out

    def ctr(self) -> np.ndarray:
        """Click-through rate by rank."""
        shown = self.rows >= 0
        return (self.clicks * shown).sum(0) / np.maximum(shown.sum(0), 1)


@dataclass
class ClickExample:
    """A session's list: features in display order, clicks, and the 0-based ranks they were shown at."""

    query_id: str
    features: np.ndarray
    labels: np.ndarray  # the clicks
    ranks: np.ndarray
    negatives: list = field(default_factory=list)
    scores: None = None
    positives: list = field(default_factory=list)


def displayed_lists(
    data: LetorData, *, scores: np.ndarray | None = None, top_k: int = 10, use_positions: bool = False
) -> np.ndarray:
    """Each query's displayed rows, ``[queries, top_k]`` (-1 padded): the top ``top_k`` of
    ``scores`` (a production ranker), or the logged ``positions`` of the data (rows at positions
    1..top_k, in order)."""
    out = np.full((data.n_queries, top_k), -1, dtype=np.int64)
    for i in range(data.n_queries):
        rows = np.arange(*data.query(i).indices(len(data.labels)))
        if use_positions:
            if data.positions is None:
                raise RankwiseError(f"{data.path}: no logged positions (a .position file) to display by")
            pos = data.positions[rows]
            if len(set(pos.tolist())) != len(pos):
                raise DataError(f"query {data.qids[i]!r}: two rows logged at one position", path=data.path)
            order = rows[np.argsort(pos)]
            order = order[np.sort(pos) <= top_k]
        elif scores is not None:
            order = rows[np.argsort(-scores[rows], kind="stable")]
        else:
            raise RankwiseError("displayed_lists: give a production ranker's scores or use_positions=True")
        order = order[:top_k]
        out[i, : len(order)] = order
    return out


def simulate_clicks(
    data: LetorData, displayed: np.ndarray, model: str | ClickModel, *, sessions: int = 10, seed: int = 0
) -> ClickLog:
    """``sessions`` simulated sessions per query over its displayed list, clicks drawn by ``model``
    from the true grades (seeded: the same arguments give the same log)."""
    cm = click_model(model)
    rng = np.random.default_rng(seed)
    query = np.repeat(np.arange(data.n_queries), sessions)
    rows = displayed[query]
    grades = np.where(rows >= 0, data.labels[np.maximum(rows, 0)], 0.0)
    clicks = cm.clicks(grades, rng) * (rows >= 0)
    exam = cm.examination(displayed.shape[1]) if isinstance(cm, PositionBasedModel) else None
    spec = CLICK_MODELS.spec_of(cm) or type(cm).__name__
    return ClickLog(query, rows, clicks.astype(np.float32), spec, exam)
