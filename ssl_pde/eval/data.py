"""Evaluation data: one split of trajectories held in memory with its parameters, and labelled-set draws."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ssl_pde.augment.corrupt import Corruption, corrupt
from ssl_pde.data.datasets import TrajectoryDataset

Tensor = torch.Tensor


@dataclass
class Split:
    """Trajectories of one split held in memory, with the target parameter and any other parameters loaded.

    Attributes:
        data: the data module's batch arrays for every trajectory: ``u`` (N, T, C, X) or (N, T, C, X, Y),
            ``t`` (N, T), ``x`` (N, X), ``length`` (N,), and for 2D data ``y`` (N, Y) and ``length_y``.
        y: (N,) the target parameter.
        params: every loaded per-trajectory parameter by name, (N,) float64 each (the target included).
    """

    data: dict[str, Tensor]
    y: Tensor
    params: dict[str, Tensor] = field(default_factory=dict)

    @classmethod
    def load(cls, ds: TrajectoryDataset, param: str, indices: list[int] | None = None) -> Split:
        """Every trajectory of ``ds`` (or ``indices``); ``param`` is the target, and every parameter ``ds``
        was opened with is kept in :attr:`params`."""
        b = ds.__getitems__(list(range(len(ds))) if indices is None else indices)
        keys = ("u", "t", "x", "y", "length", "length_y")
        params = {k: v for k, v in b["params"].items() if isinstance(v, Tensor) and v.dim() == 1}
        return cls({k: b[k] for k in keys if isinstance(b.get(k), Tensor)}, b["params"][param], params)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray | Tensor) -> Split:
        i = torch.as_tensor(idx)
        return Split({k: v[i] for k, v in self.data.items()}, self.y[i], {k: v[i] for k, v in self.params.items()})

    def corrupted(self, c: Corruption, seed: int, periodic: bool = True) -> Split:
        """The same split with messy observations: ``u`` corrupted by :func:`~ssl_pde.augment.corrupt.corrupt`
        with draws from ``torch.Generator().manual_seed(seed)``; times, grids and parameters unchanged.
        ``periodic``: x is periodic (the refill of missing points wraps around the period)."""
        d = self.data
        gen = torch.Generator().manual_seed(int(seed))
        u = corrupt(d["u"], d["t"], d["x"], c, gen, length=d.get("length"), periodic=periodic)
        return Split({**d, "u": u}, self.y, dict(self.params))

    def batch(self, sl: slice | Tensor, device: torch.device) -> dict[str, Tensor]:
        """Rows ``sl`` of every array on ``device``, keyed as a data-module batch (for ``views.inputs``)."""
        return {k: v[sl].to(device) for k, v in self.data.items()}


def draw_labels(n_train: int, n_labels: int, draw: int) -> np.ndarray:
    """Sorted indices of the labelled subset number ``draw``: ``n_labels`` of ``n_train`` without replacement,
    from ``numpy.random.default_rng(draw)`` (the same subset for every encoder and method)."""
    return np.sort(np.random.default_rng(draw).choice(n_train, n_labels, replace=False))
