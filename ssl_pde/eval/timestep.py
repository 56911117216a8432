"""Conditioned neural time-stepping: none / true parameter / frozen SSL representation, same FiLM path.

Each variant trains the same :class:`~ssl_pde.models.timestepper.CNNStepper` (same seed, steps and data)
to map ``history`` frames to the next ``future`` frames at random start times of the labelled train
trajectories, then rolls out autoregressively on the test split from frame ``history`` to the end. The
condition is fixed for a rollout: the standardised true parameter, or the frozen encoder's representation
of the initial (true) input window. Metrics: :func:`~ssl_pde.metrics.rollout_nmse`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.augment.views import LieViews
from ssl_pde.eval.regression import Split
from ssl_pde.metrics import rollout_nmse
from ssl_pde.models.timestepper import CNNStepper

Tensor = torch.Tensor
VARIANTS = ("none", "param", "ssl")


@torch.no_grad()
def conditions(
    variant: str,
    s: Split,
    encoder: nn.Module | None,
    views: LieViews | None,
    history: int,
    log_target: bool,
    device: torch.device,
) -> Tensor | None:
    """(N, cond_dim) raw conditions of every trajectory of ``s`` (before standardisation), or None."""
    if variant == "none":
        return None
    if variant == "param":
        y = s.y.double()
        return (torch.log(y) if log_target else y)[:, None].float()
    assert encoder is not None and views is not None
    out = []
    for i in range(0, len(s.y), 128):
        sl = slice(i, i + 128)
        v = views.eval_view(
            s.u[sl, :history].to(device), s.t[sl, :history].to(device), s.x[sl].to(device), s.length[sl].to(device)
        )
        out.append(encoder(v).float().cpu())
    return torch.cat(out)


def train_stepper(
    train: Split,
    cond: Tensor | None,
    history: int,
    future: int,
    steps: int,
    batch: int,
    lr: float,
    width: int,
    seed: int,
    device: torch.device,
) -> CNNStepper:
    """Train on random windows of the train trajectories (MSE on the next ``future`` frames)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CNNStepper(history, future, width, 0 if cond is None else cond.shape[1]).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    n, nt = train.u.shape[:2]
    for _ in range(steps):
        idx = rng.integers(0, n, batch)
        start = rng.integers(0, nt - history - future + 1, batch)
        win = torch.stack([train.u[i, s : s + history + future] for i, s in zip(idx, start, strict=True)]).to(device)
        c = None if cond is None else cond[idx].to(device)
        loss = ((model(win[:, :history], c) - win[:, history:]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def rollout(
    model: CNNStepper, s: Split, cond: Tensor | None, history: int, future: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Autoregressive prediction from the first ``history`` true frames: (pred, truth), each (N, K, X)."""
    nt = s.u.shape[1]
    k = (nt - history) // future * future
    preds = []
    for i in range(0, len(s.y), 128):
        sl = slice(i, i + 128)
        cur = s.u[sl, :history].to(device)
        c = None if cond is None else cond[sl].to(device)
        out = []
        while sum(o.shape[1] for o in out) < k:
            nxt = model(cur, c)
            out.append(nxt)
            cur = torch.cat([cur, nxt], dim=1)[:, -history:]
        preds.append(torch.cat(out, dim=1).cpu())
    return torch.cat(preds), s.u[:, history : history + k]


def evaluate_timestep_seed(
    encoder: nn.Module,
    views: LieViews,
    train: Split,
    test: Split,
    seed: int,
    log_target: bool,
    device: torch.device,
    history: int,
    future: int,
    steps: int,
    batch: int,
    lr: float,
    width: int,
) -> dict[str, Any]:
    """Every conditioning variant for one seed; returns metrics and the first test rollouts for plots."""
    window_views = views.without_symmetries()
    window_views.crop_t, window_views.crop_x = history, train.u.shape[-1]
    result, rollouts = {}, {}
    for variant in VARIANTS:
        c_train = conditions(variant, train, encoder, window_views, history, log_target, device)
        c_test = conditions(variant, test, encoder, window_views, history, log_target, device)
        if c_train is not None:  # standardise with train statistics
            mu, sd = c_train.mean(0), c_train.std(0).clamp_min(1e-6)
            c_train, c_test = (c_train - mu) / sd, (c_test - mu) / sd
        model = train_stepper(train, c_train, history, future, steps, batch, lr, width, seed, device)
        pred, truth = rollout(model, test, c_test, history, future, device)
        result[variant] = rollout_nmse(pred, truth)
        rollouts[variant] = pred[:3]
    rollouts["truth"] = truth[:3]
    return {"metrics": result, "rollouts": rollouts}
