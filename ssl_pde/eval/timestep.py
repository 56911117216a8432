"""Conditioned neural time-stepping: none / true parameter / frozen SSL representation, same FiLM path.

Each variant trains the same stepper (:mod:`ssl_pde.models.timestepper`, ``arch`` "cnn" or "fno"; same
seed, steps and data) to map ``history`` frames to the next ``future`` frames at random start times of the
labelled train trajectories, then rolls out autoregressively on the test split from frame ``history`` to
the end, and predicts each of the same frames from its true ``history`` frames (the one-step error, which
keeps measuring the conditioning after a rollout has drifted off the flow). The condition is fixed for a
rollout: the standardised true parameter, or the frozen encoder's
representation of the initial (true) input window, optionally reduced to its ``ssl_dims`` leading principal
components (fitted on the train representations) so that a few labelled trajectories cannot be memorised
through a wide condition. Metrics: :func:`~ssl_pde.metrics.rollout_nmse` of the rollout, and
:func:`~ssl_pde.metrics.one_step_metrics` of the one-step predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.augment.views import LieViews
from ssl_pde.eval.regression import Split
from ssl_pde.metrics import one_step_metrics, rollout_nmse
from ssl_pde.models.timestepper import build_stepper

Tensor = torch.Tensor
VARIANTS = ("none", "param", "ssl")


@torch.no_grad()
def conditions(
    variant: str,
    s: Split,
    encoder: nn.Module | None,
    views: LieViews | None,
    start: int,
    log_target: bool,
    device: torch.device,
) -> Tensor | None:
    """(N, cond_dim) raw conditions of every trajectory of ``s`` (before standardisation), or None.

    ``start`` is the rollout's first predicted frame: the SSL view reads the ``views.crop_t`` frames before it."""
    if variant == "none":
        return None
    if variant == "param":
        y = s.y.double()
        return (torch.log(y) if log_target else y)[:, None].float()
    assert encoder is not None and views is not None
    first = start - views.crop_t  # the view reads frames [first, start): the initial window only
    out = []
    for i in range(0, len(s.y), 128):
        b = s.batch(slice(i, i + 128), device)
        b["u"], b["t"] = b["u"][:, first:start], b["t"][:, first:start]
        out.append(encoder(views.eval_view(*views.inputs(b))).float().cpu())
    return torch.cat(out)


def frames(s: Split) -> Tensor:
    """The stepped state of every trajectory: (N, T, X) for 1D data (its field), (N, T, C, X, Y) for 2D."""
    u = s.data["u"]
    return u[:, :, 0] if u.dim() == 4 else u


def window_views(views: LieViews, s: Split, history: int) -> LieViews:
    """Evaluation views (no symmetries) of the initial input window over the whole domain.

    1D: the ``history`` frames. 2D: the encoder's own ``crop_t`` frames (its input channels are frames x
    quantities, so the window length is fixed by pretraining); see :func:`rollout_start`.
    """
    w = views.without_symmetries()
    u = s.data["u"]
    if u.dim() == 4:
        w.crop_t, w.crop_x = history, u.shape[-1]
    else:
        w.crop_x, w.crop_y = u.shape[-2], u.shape[-1]
    return w


def rollout_start(views: LieViews, s: Split, history: int) -> int:
    """First predicted frame. 1D: ``history`` (the SSL view reads the stepper's input window). 2D: at least
    the encoder's ``crop_t``, so that the SSL condition (the ``crop_t`` frames before the start) and the
    stepper's ``history`` input frames are both true frames; every variant starts there."""
    return history if s.data["u"].dim() == 4 else max(history, views.crop_t)


def reduce_conditions(c_train: Tensor, c_test: Tensor, dims: int | None) -> tuple[Tensor, Tensor]:
    """Standardise with train statistics; with ``dims``, keep the leading principal components of train.

    Args:
        c_train: (N, D) and c_test: (M, D) raw conditions.
        dims: number of principal components kept (None or >= D: all, no rotation).

    Returns:
        (N, d) and (M, d) conditions with zero mean and unit std on train.
    """
    mu, sd = c_train.mean(0), c_train.std(0).clamp_min(1e-6)
    c_train, c_test = (c_train - mu) / sd, (c_test - mu) / sd
    if dims is not None and dims < c_train.shape[1]:
        _, _, v = torch.linalg.svd(c_train.double(), full_matrices=False)
        basis = v[:dims].T.float()  # (D, dims): directions of largest train variance
        c_train, c_test = c_train @ basis, c_test @ basis
        sd = c_train.std(0).clamp_min(1e-6)
        c_train, c_test = c_train / sd, c_test / sd
    return c_train, c_test


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
    arch: str = "cnn",
    cond_hidden: int = 0,
) -> torch.nn.Module:
    """Train on random windows of the train trajectories (MSE on the next ``future`` frames)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    u = frames(train)
    fields = u.shape[2] if u.dim() == 5 else 1
    model = build_stepper(arch, history, future, width, 0 if cond is None else cond.shape[1], cond_hidden, fields).to(
        device
    )
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    n, nt = u.shape[:2]
    for _ in range(steps):
        idx = rng.integers(0, n, batch)
        start = rng.integers(0, nt - history - future + 1, batch)
        win = torch.stack([u[i, s : s + history + future] for i, s in zip(idx, start, strict=True)]).to(device)
        c = None if cond is None else cond[idx].to(device)
        loss = ((model(win[:, :history], c) - win[:, history:]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def rollout(
    model: torch.nn.Module,
    s: Split,
    cond: Tensor | None,
    history: int,
    future: int,
    device: torch.device,
    start: int | None = None,
    teacher_forced: bool = False,
) -> tuple[Tensor, Tensor]:
    """Prediction of frames ``start`` (default ``history``) on, ``future`` at a time: (pred, truth), each
    (N, K, X) for 1D data or (N, K, C, X, Y) for 2D, K a multiple of ``future``.

    Autoregressive by default: the first block from the ``history`` true frames before ``start``, each later
    one from the model's own frames. ``teacher_forced``: every block (frames ``start + j future`` ...) from
    the ``history`` true frames before it, the one-step error of the same frames (with ``future`` > 1, the error
    of one model call: a block of ``future`` frames)."""
    u = frames(s)
    nt = u.shape[1]
    start = history if start is None else start
    k = (nt - start) // future * future
    preds = []
    for i in range(0, len(s.y), 128):
        sl = slice(i, i + 128)
        cur = u[sl, start - history : start].to(device)
        c = None if cond is None else cond[sl].to(device)
        out = []
        for f in range(start, start + k, future):
            if teacher_forced:
                cur = u[sl, f - history : f].to(device)
            nxt = model(cur, c)
            if nxt.shape[1] != future:
                raise ValueError(f"the stepper returned {nxt.shape[1]} frames, expected future={future}")
            out.append(nxt)
            cur = torch.cat([cur, nxt], dim=1)[:, -history:]
        preds.append(torch.cat(out, dim=1).cpu())
    return torch.cat(preds), u[:, start : start + k]


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
    arch: str = "cnn",
    cond_hidden: int = 0,
    ssl_dims: int | None = None,
) -> dict[str, Any]:
    """Every conditioning variant for one seed; returns metrics and the first test rollouts for plots."""
    wv = window_views(views, train, history)
    start = rollout_start(views, train, history)
    result, rollouts = {}, {}
    for variant in VARIANTS:
        c_train = conditions(variant, train, encoder, wv, start, log_target, device)
        c_test = conditions(variant, test, encoder, wv, start, log_target, device)
        if c_train is not None:
            c_train, c_test = reduce_conditions(c_train, c_test, ssl_dims if variant == "ssl" else None)
        model = train_stepper(train, c_train, history, future, steps, batch, lr, width, seed, device, arch, cond_hidden)
        pred, truth = rollout(model, test, c_test, history, future, device, start)
        result[variant] = {
            **rollout_nmse(pred, truth),
            **one_step_metrics(*rollout(model, test, c_test, history, future, device, start, teacher_forced=True)),
        }
        rollouts[variant] = pred[:3]
    rollouts["truth"] = truth[:3]
    return {"metrics": result, "rollouts": rollouts, "start": start}
