"""One training loop for every trained evaluation method: a stated step budget, early stopping on valid.

Supervised networks, fine-tuned encoders, MLP heads and time-steppers all train through
:func:`train_early_stopped`: AdamW, a linear warm-up over the first tenth of the budget then a cosine decay
to zero at ``max_steps``; every ``eval_every`` steps the model is scored on the valid split (lower is better)
and the best state so far is kept; after ``patience`` evaluations without improvement training stops, and
the best state is restored. :func:`search` runs one such training per candidate and keeps the candidate with
the best valid score. Nothing here can see a test split: the caller passes a valid scorer only.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ssl_pde.core.errors import UserError

Tensor = torch.Tensor

HEAD_INITS = ("default", "probe")
"""Initialisations of an end-to-end network's linear head (:attr:`Search.head_init`)."""


@dataclass
class Search:
    """A trained method's search: one training run per candidate in ``lrs`` x ``views``, the best on valid.

    Attributes:
        lrs: peak learning rates tried (the candidates; every trained method gets as many).
        max_steps: the step budget of one run (optimiser steps; epochs for full-batch heads).
        eval_every: steps between two valid evaluations.
        patience: evaluations without improvement before stopping (0: run the whole budget).
        batch: training batch size (ignored by full-batch heads).
        weight_decay: AdamW weight decay.
        views: training inputs, each a candidate too: ``crops`` (random crops only), ``lie`` (random crops
            transformed by the Lie-symmetry views) or ``eval`` (the deterministic evaluation inputs). Ignored by
            heads on frozen features.
        backbone_lr_mult: the learning rate of a model's ``encoder`` relative to the rest (its head); 1 trains
            all alike (a common fine-tuning schedule gives the pretrained backbone a lower rate).
        head_init: ``default`` (PyTorch's initialisation of the linear head) or ``probe`` (end-to-end networks:
            the head starts as the ridge regression of the targets on the encoder's initial features, the
            "linear probe, then fine-tune" schedule; :func:`~ssl_pde.eval.regression.probe_head`).
    """

    lrs: list[float]
    max_steps: int
    eval_every: int
    patience: int
    batch: int = 64
    weight_decay: float = 1e-4
    views: list[str] = field(default_factory=lambda: ["crops"])
    backbone_lr_mult: float = 1.0
    head_init: str = "default"

    def __post_init__(self) -> None:
        if not self.backbone_lr_mult > 0:
            raise UserError(f"backbone_lr_mult must be positive, got {self.backbone_lr_mult}")
        if self.head_init not in HEAD_INITS:
            raise UserError(f"head_init must be one of {', '.join(HEAD_INITS)}, got {self.head_init!r}")

    def candidates(self) -> list[dict[str, Any]]:
        return [{"lr": float(lr), "views": v} for v in self.views for lr in self.lrs]


@dataclass
class TrainRecord:
    """What one training run did: the valid curve, the step it was restored to, its cost."""

    best_valid: float
    best_step: int
    steps_run: int
    seconds: float
    curve: list[tuple[int, float]]


def warmup_cosine(total: int, warmup_frac: float = 0.1) -> Callable[[int], float]:
    """Learning-rate multiplier: linear warm-up over ``warmup_frac * total`` steps, then cosine to zero."""
    warm = max(1, int(warmup_frac * total))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return f


def param_groups(model: nn.Module, lr: float, backbone_lr_mult: float) -> list[dict[str, Any]]:
    """The trainable parameters as optimiser groups: the model's ``encoder`` (if any) at ``lr * backbone_lr_mult``,
    everything else at ``lr`` (a group with no parameter is left out)."""
    enc = getattr(model, "encoder", None)
    inside = {id(p) for p in enc.parameters()} if isinstance(enc, nn.Module) else set()
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) in inside], "lr": lr * backbone_lr_mult},
        {"params": [p for p in trainable if id(p) not in inside], "lr": lr},
    ]
    return [g for g in groups if g["params"]]


def train_early_stopped(
    model: nn.Module,
    loss_fn: Callable[[int], Tensor],
    valid_fn: Callable[[], float],
    lr: float,
    search: Search,
) -> TrainRecord:
    """Train ``model`` in place for at most ``search.max_steps`` steps; restore its best state on valid.

    Args:
        model: the trainable module (its parameters with ``requires_grad``).
        loss_fn: ``loss_fn(step)`` computes the training loss of one batch (the model in train mode).
        valid_fn: scores the model on the valid split, lower is better (called in eval mode, no grad).
        lr: peak learning rate.
        search: budget, evaluation period, patience and weight decay.
    """
    t0 = time.perf_counter()
    opt = torch.optim.AdamW(param_groups(model, lr, search.backbone_lr_mult), lr=lr, weight_decay=search.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(search.max_steps))
    best, best_step, best_state, since, curve = math.inf, 0, None, 0, []
    step = 0
    while step < search.max_steps:
        model.train()
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % search.eval_every == 0 or step == search.max_steps:
            model.eval()
            with torch.no_grad():
                score = float(valid_fn())
            score = score if math.isfinite(score) else math.inf  # a diverged run never beats a finite one
            curve.append((step, score))
            if score < best or best_state is None:
                best, best_step, best_state, since = score, step, copy.deepcopy(model.state_dict()), 0
            else:
                since += 1
                if search.patience and since >= search.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainRecord(best, best_step, step, time.perf_counter() - t0, curve)


def search(
    build: Callable[[dict[str, Any]], tuple[nn.Module, Callable[[int], Tensor], Callable[[], float]]],
    spec: Search,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train one model per candidate of ``spec`` and keep the one with the best valid score.

    Args:
        build: ``build(candidate) -> (model, loss_fn, valid_fn)`` for a candidate ``{"lr", "views"}``.
        spec: the search.

    Returns:
        The chosen model (best state restored, eval mode) and its record: ``chosen`` (the candidate),
        ``valid`` (its score), ``candidates`` (every candidate with its valid score, best step and steps run),
        ``steps`` (optimiser steps over all candidates) and ``seconds``.
    """
    best_model, rows = None, []
    best_score = math.inf
    for cand in spec.candidates():
        model, loss_fn, valid_fn = build(cand)
        rec = train_early_stopped(model, loss_fn, valid_fn, cand["lr"], spec)
        rows.append(
            {
                **cand,
                "valid": rec.best_valid,
                "best_step": rec.best_step,
                "steps_run": rec.steps_run,
                "seconds": round(rec.seconds, 2),
            }
        )
        if best_model is None or rec.best_valid < best_score:
            best_model, best_score = model, rec.best_valid
        else:
            del model
    chosen = min(rows, key=lambda r: r["valid"])
    record = {
        "chosen": {k: chosen[k] for k in ("lr", "views", "best_step")},
        "valid": chosen["valid"],
        "candidates": rows,
        "steps": sum(r["steps_run"] for r in rows),
        "seconds": round(sum(r["seconds"] for r in rows), 2),
    }
    assert best_model is not None
    return best_model, record
