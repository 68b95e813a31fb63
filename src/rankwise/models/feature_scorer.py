"""Scorers over feature vectors (learning to rank on LETOR-style data): ``scores[q, i]`` from
``x[q, i, :]`` with a padding ``mask[q, i]``.

- :class:`LinearScorer`: ``w . x + b`` (RankNet's / ListNet's original linear model);
- :class:`MLPScorer`: a feed-forward network applied to each item alone;
- :class:`AttentionScorer`: the context-aware scorer of allRank (Pobrotyn et al., "Context-Aware
  Learning to Rank with Self-Attention", 2020): items are projected, pass through Transformer
  encoder layers that attend across the list (padding masked), and a linear head scores each.

``save(dir)`` writes ``config.json`` (the scorer's name and sizes) and ``model.safetensors``;
``load_scorer(dir)`` rebuilds it without running any code from the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from rankwise.errors import RankwiseError
from rankwise.io import atomic_path
from rankwise.models.modes import evaluating
from rankwise.registry import Registry


class FeatureScorer(nn.Module):
    """Base class: ``forward(x [Q, L, F], mask [Q, L]) -> scores [Q, L]``."""

    scorer: ClassVar[str] = ""  # its name in SCORERS and config.json
    config: dict[str, Any]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def predict(self, features: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        """One score per row; ``offsets`` groups rows into lists (needed by the attention scorer)."""
        x = torch.as_tensor(features, dtype=torch.float32, device=self.device)
        with evaluating(self):
            if offsets is None:
                out = self(x[:, None, :], torch.ones(len(x), 1, dtype=torch.bool, device=self.device))[:, 0]
            else:
                parts = [x[int(a) : int(b)] for a, b in zip(offsets[:-1], offsets[1:])]
                xs, mask = pad_features(parts)
                out = self(xs, mask)[mask]
            return out.float().cpu().numpy()

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        with atomic_path(path, is_dir=True) as tmp:
            (tmp / "config.json").write_text(json.dumps({"scorer": self.scorer, **self.config}, indent=2))
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, tmp / "model.safetensors"
            )
        return path


def pad_features(lists: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged [n_i, F] lists to ``x [Q, L, F]`` and ``mask [Q, L]``."""
    n = max(len(t) for t in lists)
    ref = lists[0]
    x = ref.new_zeros(len(lists), n, ref.shape[1])
    mask = torch.zeros(len(lists), n, dtype=torch.bool, device=ref.device)
    for i, t in enumerate(lists):
        x[i, : len(t)] = t
        mask[i, : len(t)] = True
    return x, mask


class LinearScorer(FeatureScorer):
    scorer = "linear"

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.config = {"n_features": n_features}
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(x)[..., 0]


class MLPScorer(FeatureScorer):
    scorer = "mlp"

    def __init__(self, n_features: int, hidden: tuple[int, ...] | list[int] = (128, 64), dropout: float = 0.1) -> None:
        super().__init__()
        self.config = {"n_features": n_features, "hidden": list(hidden), "dropout": dropout}
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(x)[..., 0]


class AttentionScorer(FeatureScorer):
    scorer = "attention"

    def __init__(
        self, n_features: int, d_model: int = 64, heads: int = 2, layers: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.config = {
            "n_features": n_features,
            "d_model": d_model,
            "heads": heads,
            "layers": layers,
            "dropout": dropout,
        }
        self.project = nn.Sequential(nn.Linear(n_features, d_model), nn.ReLU())
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.project(x), src_key_padding_mask=~mask)
        return self.head(h)[..., 0]


SCORERS: Registry = Registry("scorer", FeatureScorer)  # register your own with SCORERS.register(name)
for _cls in (LinearScorer, MLPScorer, AttentionScorer):
    SCORERS.register(_cls.scorer)(_cls)


def make_scorer(name: str, n_features: int, **options: Any) -> FeatureScorer:
    if name not in SCORERS:
        raise RankwiseError(f"scorer {name!r}: expected one of {', '.join(SCORERS.names())}")
    return SCORERS.get(name)(n_features, **options)


def load_scorer(path: str | Path) -> FeatureScorer:
    """A scorer saved by :meth:`FeatureScorer.save` (its config and safetensors weights only)."""
    from safetensors.torch import load_file

    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file() or not (path / "model.safetensors").is_file():
        raise RankwiseError(f"{path}: not a feature-scorer folder (config.json and model.safetensors)")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    name = cfg.pop("scorer", None)
    if name not in SCORERS:
        raise RankwiseError(f"{cfg_path}: scorer {name!r} is not one of {', '.join(SCORERS.names())}")
    model = SCORERS.get(name)(**cfg)
    model.load_state_dict(load_file(path / "model.safetensors"))
    return model.eval()
