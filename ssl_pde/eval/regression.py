"""Parameter regression from a frozen encoder, with the supervised baseline and the trivial floor.

For each seed: draw ``n_labels`` labelled trajectories from the train split; embed them and the test
split with the frozen encoder (eval mode, no gradient) on deterministic evaluation crops; fit

- ``ssl_linear``: ridge regression (ridge strength by 5-fold cross-validation on the labelled set);
- ``ssl_mlp``: a 2-layer MLP head (Adam, fixed epochs) on standardised representations;
- ``supervised``: the same encoder architecture trained end to end from scratch on the same labels, with
  and without the Lie-symmetry views (random crops in both), the same number of steps; the variant with
  the lower error on the validation split is reported (both are kept in the JSON);
- ``floor``: predicting the labelled set's mean.

Targets are regressed in log space when ``log_target`` (viscosity); metrics (DESIGN.md) are computed on
the parameter itself: ``nmse = mean ||y^ - y||^2 / ||y||^2`` and ``rel_l1``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.augment.views import LieViews
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.metrics import mse, nmse, rel_l1, ridge_fit_predict

log = logging.getLogger(__name__)
Tensor = torch.Tensor


@dataclass
class Split:
    """Trajectories of one split held in memory, with the target parameter.

    Attributes:
        data: the data module's batch arrays for every trajectory: ``u`` (N, T, C, X) or (N, T, C, X, Y),
            ``t`` (N, T), ``x`` (N, X), ``length`` (N,), and for 2D data ``y`` (N, Y) and ``length_y``.
        y: (N,) the target parameter.
    """

    data: dict[str, Tensor]
    y: Tensor

    @classmethod
    def load(cls, ds: TrajectoryDataset, param: str, indices: list[int] | None = None) -> Split:
        b = ds.__getitems__(list(range(len(ds))) if indices is None else indices)
        keys = ("u", "t", "x", "y", "length", "length_y")
        return cls({k: b[k] for k in keys if isinstance(b.get(k), Tensor)}, b["params"][param])

    def subset(self, idx: np.ndarray) -> Split:
        i = torch.as_tensor(idx)
        return Split({k: v[i] for k, v in self.data.items()}, self.y[i])

    def batch(self, sl: slice | Tensor, device: torch.device) -> dict[str, Tensor]:
        """Rows ``sl`` of every array on ``device``, keyed as a data-module batch (for ``views.inputs``)."""
        return {k: v[sl].to(device) for k, v in self.data.items()}


@torch.no_grad()
def embed(encoder: nn.Module, views: LieViews, s: Split, device: torch.device, batch: int = 256) -> Tensor:
    """Frozen representations (N, D) of the deterministic evaluation crops."""
    encoder.eval()
    out = []
    for i in range(0, len(s.y), batch):
        out.append(encoder(views.eval_view(*views.inputs(s.batch(slice(i, i + batch), device)))).float().cpu())
    return torch.cat(out)


def _to_target(y: Tensor, log_target: bool) -> Tensor:
    return torch.log(y.double()) if log_target else y.double()


def _from_target(z: Tensor, log_target: bool) -> Tensor:
    return torch.exp(z) if log_target else z


def ridge_cv(x: Tensor, y: Tensor, x_eval: Tensor, lams=(1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0), folds: int = 5) -> Tensor:
    """Ridge prediction for ``x_eval`` with the strength chosen by k-fold cross-validation on (x, y)."""
    n = x.shape[0]
    k = min(folds, n)
    parts = np.array_split(np.arange(n), k)
    best, best_err = lams[0], float("inf")
    for lam in lams:
        err = 0.0
        for p in parts:
            mask = np.ones(n, bool)
            mask[p] = False
            pred = ridge_fit_predict(x[mask], y[mask], x[p], lam).squeeze(-1)
            err += float(((pred - y[p].double()) ** 2).sum())
        if err < best_err:
            best, best_err = lam, err
    return ridge_fit_predict(x, y, x_eval, best).squeeze(-1)


def linear_probe(f_lab: Tensor, y_lab: Tensor, f_eval: Tensor, log_target: bool) -> Tensor:
    """The ``ssl_linear`` prediction: ridge (strength by 5-fold CV) from representations ``f_lab`` (n, D) to
    the parameter ``y_lab`` (n,) (in log space when ``log_target``), clamped to the labelled range, for
    ``f_eval`` (m, D); returns (m,) float64 on the parameter's scale."""
    z = _to_target(y_lab, log_target)
    return _from_target(ridge_cv(f_lab, z, f_eval).clamp(z.min(), z.max()), log_target)


def mlp_head(x: Tensor, y: Tensor, x_eval: Tensor, seed: int, epochs: int = 300, hidden: int = 256) -> Tensor:
    """2-layer MLP on standardised features and target; full-batch Adam. Returns predictions for x_eval."""
    g = torch.Generator().manual_seed(seed)
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    ym, ys = y.mean(), y.std().clamp_min(1e-12)
    a, b = ((x - mu) / sd).float(), ((x_eval - mu) / sd).float()
    t = ((y - ym) / ys).float()
    net = nn.Sequential(nn.Linear(a.shape[1], hidden), nn.GELU(), nn.Linear(hidden, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (1 / max(p.shape[-1], 1)) ** 0.5)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        loss = ((net(a).squeeze(-1) - t) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(b).squeeze(-1).double() * ys + ym


def train_supervised(
    encoder: nn.Module,
    views: LieViews,
    train: Split,
    target: Tensor,
    device: torch.device,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
) -> nn.Module:
    """Train ``encoder`` + a linear head end to end (MSE on the standardised target), ``steps`` steps.

    ``views`` makes the inputs (random crops, with or without group transforms); returns encoder+head.
    """
    torch.manual_seed(seed)
    head = nn.Linear(encoder.out_dim, 1)
    model = nn.Sequential(encoder, head).to(device)
    tm, ts = target.mean(), target.std().clamp_min(1e-12)
    z = ((target - tm) / ts).float().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator(device=device).manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(target)
    model.train()
    for _ in range(steps):
        idx = torch.as_tensor(rng.choice(n, min(batch, n), replace=n < batch))
        v = views.view(*views.inputs(train.batch(idx, device)), gen)
        loss = ((model(v).squeeze(-1) - z[idx.to(device)]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()
    model.target_stats = (tm, ts)  # type: ignore[attr-defined]
    return model


@torch.no_grad()
def predict_supervised(model: nn.Module, views: LieViews, s: Split, device: torch.device) -> Tensor:
    tm, ts = model.target_stats  # type: ignore[attr-defined]
    out = []
    for i in range(0, len(s.y), 256):
        v = views.eval_view(*views.inputs(s.batch(slice(i, i + 256), device)))
        out.append(model(v).squeeze(-1).double().cpu())
    return torch.cat(out) * ts + tm


def scores(pred: Tensor, y: Tensor) -> dict[str, float]:
    return {"nmse": float(nmse(pred, y)), "rel_l1": float(rel_l1(pred, y)), "mse": float(mse(pred, y))}


def evaluate_seed(
    encoder: nn.Module,
    make_encoder: Callable[[], nn.Module],
    views: LieViews,
    train_all: Split,
    valid: Split,
    test: Split,
    n_labels: int,
    seed: int,
    log_target: bool,
    device: torch.device,
    sup_steps: int,
    sup_batch: int,
    sup_lr: float,
) -> dict[str, Any]:
    """All methods for one seed; returns metrics, predictions and the representations for plots.

    ``encoder`` is the frozen pretrained one; ``make_encoder`` builds a freshly initialised copy of its
    architecture for the supervised baseline."""
    rng = np.random.default_rng(seed)
    lab = train_all.subset(np.sort(rng.choice(len(train_all.y), n_labels, replace=False)))
    y_lab = _to_target(lab.y, log_target)
    f_lab, f_test = embed(encoder, views, lab, device), embed(encoder, views, test, device)
    preds = {
        "ssl_linear": linear_probe(f_lab, lab.y, f_test, log_target),
        "ssl_mlp": _from_target(mlp_head(f_lab, y_lab, f_test, seed).clamp(y_lab.min(), y_lab.max()), log_target),
        "floor": torch.full_like(test.y.double(), float(lab.y.double().mean())),
    }
    sup = {}
    for name, v in (("supervised_lie", views), ("supervised_crops", views.without_symmetries())):
        torch.manual_seed(seed)
        model = train_supervised(make_encoder(), v, lab, y_lab, device, sup_steps, sup_batch, sup_lr, seed)
        val_pred = _from_target(predict_supervised(model, views, valid, device), log_target)
        test_pred = _from_target(
            predict_supervised(model, views, test, device).clamp(y_lab.min(), y_lab.max()), log_target
        )
        sup[name] = {"valid": scores(val_pred, valid.y), "test_pred": test_pred}
    best = min(sup, key=lambda k: sup[k]["valid"]["nmse"])
    preds["supervised"] = sup[best]["test_pred"]
    result = {name: scores(p, test.y) for name, p in preds.items()}
    result["supervised_variants"] = {
        k: {"valid": v["valid"], "test": scores(v["test_pred"], test.y)} for k, v in sup.items()
    }
    result["supervised_choice"] = best
    return {"metrics": result, "preds": preds, "features": f_test}
