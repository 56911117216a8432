"""Conditioned neural time-stepping under the evaluation protocol: none / true parameters / SSL representation.

Each variant trains the same stepper (:mod:`ssl_pde.models.timestepper`; same seed, data and search) to map
``history`` frames to the next ``future`` frames at random start times of the training trajectories. The
search (:mod:`ssl_pde.eval.train`) tries each learning rate with early stopping on the valid split's rollout
NMSE and keeps the best on valid. After every cell is trained, the test split is read once: an
autoregressive rollout from the rollout start to the end, and every same frame predicted from its true
``history`` frames (the one-step error, which keeps measuring the conditioning after a rollout has drifted).
The persistence floor copies the last input frame forward.

Conditions are fixed for a rollout: ``param`` is every per-trajectory quantity that changes the dynamics or
the frame spacing (``PDESpec.dynamics_params`` that vary in train; log of positive ones), standardised;
``ssl`` is the frozen encoder's representation of the initial (true) window, optionally reduced to its
``ssl_dims`` leading principal components (fitted on train) so that few trajectories cannot be memorised
through a wide condition. Metrics: :func:`~ssl_pde.metrics.rollout_nmse` and
:func:`~ssl_pde.metrics.one_step_metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.augment.views import LieViews
from ssl_pde.eval.data import Split, draw_labels
from ssl_pde.eval.stats import mean_std, ratio_interval
from ssl_pde.eval.train import Search, search
from ssl_pde.metrics import one_step_metrics, rollout_errors, rollout_nmse
from ssl_pde.models.timestepper import build_stepper

log = logging.getLogger("ssl_pde.eval")
Tensor = torch.Tensor
VARIANTS = ("none", "param", "ssl")
NAMES = {"none": "no conditioning", "param": "true parameters", "ssl": "SSL conditioning"}
METRICS = ("rollout_nmse", "rollout_nmse_sum", "rollout_mse", "one_step_nmse", "one_step_mse")


@torch.no_grad()
def conditions(
    variant: str,
    s: Split,
    encoder: nn.Module | None,
    views: LieViews | None,
    start: int,
    params: Sequence[str],
    device: torch.device,
) -> Tensor | None:
    """(N, cond_dim) raw conditions of every trajectory of ``s`` (before standardisation), or None.

    ``param``: the named parameters of ``s.params`` (log of positive ones). ``ssl``: ``start`` is the rollout's
    first predicted frame, and the SSL view reads the ``views.crop_t`` frames before it."""
    if variant == "none":
        return None
    if variant == "param":
        cols = [s.params[n].double() for n in params]
        return torch.stack([torch.log(c) if bool((c > 0).all()) else c for c in cols], 1).float()
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


def varying_params(train: Split, names: Sequence[str]) -> list[str]:
    """The ``names`` loaded in ``train.params`` whose values vary across ``train`` (constants carry nothing)."""
    return [n for n in names if n in train.params and float(train.params[n].double().std()) > 0]


def make_stepper_builder(
    train: Split,
    cond: Tensor | None,
    valid: Split,
    cond_valid: Tensor | None,
    cfg: Any,
    start: int,
    seed: int,
    device: torch.device,
):
    """``build(candidate) -> (model, loss_fn, valid_fn)`` for :func:`ssl_pde.eval.train.search`: random windows
    of the training trajectories, MSE on the next ``future`` frames; valid score: the valid rollout NMSE."""
    u = frames(train)
    fields = u.shape[2] if u.dim() == 5 else 1
    n, nt = u.shape[:2]
    h, f = cfg.history, cfg.future

    def build(cand: dict[str, Any]):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        dim = 0 if cond is None else cond.shape[1]
        model = build_stepper(cfg.arch, h, f, cfg.width, cond_dim=dim, cond_hidden=cfg.cond_hidden, fields=fields)
        model = model.to(device)

        def loss_fn(_: int) -> Tensor:
            idx = rng.integers(0, n, cfg.search.batch)
            st = rng.integers(0, nt - h - f + 1, cfg.search.batch)
            win = torch.stack([u[i, s : s + h + f] for i, s in zip(idx, st, strict=True)]).to(device)
            c = None if cond is None else cond[idx].to(device)
            return ((model(win[:, :h], c) - win[:, h:]) ** 2).mean()

        def valid_fn() -> float:
            pred, truth = rollout(model, valid, cond_valid, h, f, device=device, start=start)
            return float(rollout_errors(pred, truth).mean())

        return model, loss_fn, valid_fn

    return build


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


def persistence(s: Split, history: int, future: int, start: int) -> tuple[Tensor, Tensor]:
    """The persistence floor: the last true input frame (``start - 1``) copied to every predicted frame;
    (pred, truth) shaped as :func:`rollout`'s."""
    u = frames(s)
    k = (u.shape[1] - start) // future * future
    truth = u[:, start : start + k]
    return u[:, start - 1 : start].expand_as(truth).clone(), truth


def persistence_one_step(s: Split, history: int, future: int, start: int) -> tuple[Tensor, Tensor]:
    """Teacher-forced persistence: each block of ``future`` frames predicted as the true frame before it."""
    u = frames(s)
    k = (u.shape[1] - start) // future * future
    preds = [u[:, b - 1 : b].expand_as(u[:, b : b + future]) for b in range(start, start + k, future)]
    return torch.cat(preds, 1), u[:, start : start + k]


@dataclass
class StepperCell:
    """One (pretraining seed, stepper seed): per variant the trained stepper, its test condition, its choice."""

    p: int
    seed: int
    models: dict[str, nn.Module]
    cond_test: dict[str, Callable[[], Tensor | None]]
    choices: dict[str, dict[str, Any]]


def evaluate_timestep(
    encoders: list[nn.Module],
    views: LieViews,
    splits: dict[str, Split],
    cfg: Any,
    dynamics_params: Sequence[str],
    device: torch.device,
) -> dict[str, Any]:
    """Every variant on every (encoder, stepper seed) cell, choices on valid, the test split read once.

    The ``none`` and ``param`` steppers do not depend on the encoder: each is trained once per stepper seed and
    shared by that seed's cells (paired with every encoder's ``ssl`` stepper).

    Args:
        encoders: frozen pretrained encoders, one per pretraining seed.
        views: their view builder (the SSL condition's evaluation view of the initial window).
        splits: ``train``, ``valid``, ``test`` with ``dynamics_params`` loaded in ``params``.
        cfg: :class:`ssl_pde.eval.config.TimestepConfig`.
        dynamics_params: candidate ``param`` conditions (those varying in train are used).
        device: where models run.

    Returns:
        ``cells`` (test metrics per variant and the persistence floor, choices with valid scores),
        ``summary`` ([mean, std] per variant and metric), ``comparisons`` (``none/param``, ``none/ssl``,
        ``param/ssl`` rollout-NMSE ratios with intervals), ``param_conditions``, ``rollout_start``,
        ``frames`` and ``figures`` (first cell's first test rollouts).
    """
    train_all, valid, test = splits["train"], splits["valid"], splits["test"]
    start = rollout_start(views, train_all, cfg.history)
    params = varying_params(train_all, dynamics_params)
    spec: Search = cfg.search
    n = min(cfg.n_train, len(train_all))
    cells: list[StepperCell] = []
    for seed in cfg.seeds:
        train = train_all if n == len(train_all) else train_all.subset(draw_labels(len(train_all), n, int(seed)))
        wv = window_views(views, train, cfg.history)
        shared: dict[str, tuple] = {}  # none / param do not depend on the encoder: trained once per seed
        for p, enc in enumerate(encoders):
            models, conds, choices = {}, {}, {}
            for variant in cfg.variants:
                if variant == "param" and not params:
                    continue
                if variant in shared:
                    models[variant], conds[variant], choices[variant] = shared[variant]
                    continue
                raw = [
                    conditions(variant, s, enc, wv, start=start, params=params, device=device) for s in (train, valid)
                ]
                dims = cfg.ssl_dims if variant == "ssl" else None
                c_train, c_valid = raw if raw[0] is None else reduce_conditions(raw[0], raw[1], dims)
                init_seed = (1_000_003 * p if variant == "ssl" else 0) + int(seed)
                build = make_stepper_builder(
                    train, c_train, valid, c_valid, cfg, start=start, seed=init_seed, device=device
                )
                models[variant], choices[variant] = search(build, spec)

                def cond_test(v=variant, e=enc, w=wv, fit=raw[0], d=dims) -> Tensor | None:
                    """The test conditions, computed when the test split is read (after every choice)."""
                    c = conditions(v, test, e, w, start=start, params=params, device=device)
                    return None if c is None else reduce_conditions(fit, c, d)[1]

                conds[variant] = cond_test
                if variant != "ssl":
                    shared[variant] = (models[variant], conds[variant], choices[variant])
                log.info(
                    "  seed %d, encoder %d, %-5s chosen %s (valid rollout NMSE %.4g)",
                    seed,
                    p,
                    variant,
                    choices[variant]["chosen"],
                    choices[variant]["valid"],
                )
            cells.append(StepperCell(p, int(seed), models, conds, choices))
            if "ssl" not in cfg.variants:
                break  # nothing else depends on the encoder
    return score_timestep_test(cells, test, cfg, start, params, len(encoders))


def score_timestep_test(
    cells: list[StepperCell], test: Split, cfg: Any, start: int, params: list[str], n_enc: int
) -> dict[str, Any]:
    """The one reading of the test split for time-stepping, and the summary of the cells."""
    h, f = cfg.history, cfg.future
    dev = next(next(iter(cells[0].models.values())).parameters()).device
    floor = {
        **rollout_nmse(*persistence(test, h, f, start)),
        **one_step_metrics(*persistence_one_step(test, h, f, start)),
    }
    rows, figures, done = [], {}, {}
    for i, c in enumerate(cells):
        row = {"persistence": floor}
        for v, model in c.models.items():
            if id(model) not in done:  # a stepper shared by cells is scored once
                cond = c.cond_test[v]()
                pred, truth = rollout(model, test, cond, h, f, device=dev, start=start)
                one = rollout(model, test, cond, h, f, device=dev, start=start, teacher_forced=True)
                done[id(model)] = ({**rollout_nmse(pred, truth), **one_step_metrics(*one)}, pred[:3], truth[:3])
            row[v] = done[id(model)][0]
            if i == 0:
                figures[v], figures["truth"] = done[id(model)][1], done[id(model)][2]
        rows.append(row)
    doc = {
        "rollout_start": start,
        "frames": rows[0]["persistence"]["frames"],
        "param_conditions": params,
        "n_pretrain_seeds": n_enc,
        "cells": [
            {"pretrain_seed_index": c.p, "seed": c.seed, "test": r, "choices": c.choices}
            for c, r in zip(cells, rows, strict=True)
        ],
        "figures": figures,
    }
    return {**doc, **summarise_timestep_cells(doc)}


def summarise_timestep_cells(doc: dict[str, Any]) -> dict[str, Any]:
    """Means, stds (ddof=1) and paired rollout-NMSE ratio intervals from a result document's ``cells``. The
    ``none`` and ``param`` steppers are shared by a stepper seed's cells, so their spread is over seeds (the
    first encoder's cells), not repeated per encoder; the persistence floor is one number."""
    cells = doc["cells"]
    variants = [v for v in VARIANTS if v in cells[0]["test"]]
    summary = {
        v: {
            k: list(mean_std(np.array([c["test"][v][k] for c in cells if v == "ssl" or c["pretrain_seed_index"] == 0])))
            for k in METRICS
        }
        for v in variants
    }
    summary["persistence"] = {k: [cells[0]["test"]["persistence"][k], 0.0] for k in METRICS}
    seeds = sorted({c["seed"] for c in cells})

    def grid(v: str) -> np.ndarray:  # (P, S): pretraining seeds x stepper seeds (crossed)
        g = np.full((1 + max(c["pretrain_seed_index"] for c in cells), len(seeds)), np.nan)
        for c in cells:
            g[c["pretrain_seed_index"], seeds.index(c["seed"])] = c["test"][v]["rollout_nmse"]
        return g

    comparisons = {}
    for base, meth in (("none", "param"), ("none", "ssl"), ("param", "ssl")):
        if base in variants and meth in variants:
            r = ratio_interval(grid(base), grid(meth), (NAMES[meth], NAMES[base]), inner="stepper seeds")
            comparisons[f"{base}/{meth}"] = r.record("rollout_nmse")
    return {"summary": summary, "comparisons": comparisons}


def check_timestep(views: LieViews, train: Split, cfg: Any) -> None:
    """Refuse a stepper that does not fit the data or a window longer than the trajectories (UserError)."""
    from ssl_pde.core.errors import UserError
    from ssl_pde.models.timestepper import STEPPERS, STEPPERS_2D

    nt, is_2d = train.data["u"].shape[1], train.data["u"].dim() == 5
    if is_2d != (cfg.arch in STEPPERS_2D):
        need = ", ".join(STEPPERS_2D if is_2d else [a for a in STEPPERS if a not in STEPPERS_2D])
        raise UserError(f"timestep.arch={cfg.arch} does not fit {'2D' if is_2d else '1D'} data (use one of: {need})")
    start = rollout_start(views, train, cfg.history)
    if start + cfg.future > nt:
        why = f"timestep.history={cfg.history}" + (f", encoder window {views.crop_t}" if is_2d else "")
        raise UserError(
            f"the rollout starts at frame {start} ({why}) and timestep.future={cfg.future} exceeds the {nt} frames"
        )
