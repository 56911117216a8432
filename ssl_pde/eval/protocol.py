"""The regression protocol: every method on every (pretraining seed, label draw) cell, test read once.

For each label draw ``d`` (the same labelled subset for every encoder and method) and each pretrained
encoder ``p`` (one per pretraining seed), every method of :mod:`ssl_pde.eval.regression` is fitted and makes
its choices on the valid split. Only then does :func:`score_test` read the test split, once, for all cells.
The summary reports mean ± std (ddof=1) over the P x D cells and, for each SSL method, the paired
supervised / SSL ratio of the selection metric with its two-level bootstrap interval and verdict
(:mod:`ssl_pde.eval.stats`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.core.errors import UserError
from ssl_pde.eval.baseline_cache import BaselineCache, Training, fit_or_restore
from ssl_pde.eval.data import Split, draw_labels
from ssl_pde.eval.regression import (
    TRAIN_INPUTS,
    Embedder,
    Fitted,
    finite,
    fit_mlp,
    fit_network,
    fit_ridge,
    metric_names,
    pretrained_copy,
)
from ssl_pde.eval.stats import mean_std, ratio_interval
from ssl_pde.eval.train import Search
from ssl_pde.metrics import REGRESSION_METRICS, best_constant, floor_scores, regression_scores

log = logging.getLogger("ssl_pde.eval")
Tensor = torch.Tensor

METHODS = ("floor", "ssl_linear", "ssl_mlp", "ssl_finetune", "random_init", "supervised")
TRAINED = ("ssl_mlp", "ssl_finetune", "supervised")
SSL_METHODS = ("ssl_linear", "ssl_mlp", "ssl_finetune")
SHORT = {
    "floor": "floor",
    "ssl_linear": "SSL linear",
    "ssl_mlp": "SSL MLP",
    "ssl_finetune": "SSL fine-tuned",
    "random_init": "random-init linear",
    "supervised": "supervised",
}
LABELS = {
    "floor": "best constant (floor)",
    "ssl_linear": "SSL encoder, frozen + linear (ridge)",
    "ssl_mlp": "SSL encoder, frozen + MLP head",
    "ssl_finetune": "SSL encoder fine-tuned end to end",
    "random_init": "random-init encoder, frozen + linear (control)",
    "supervised": "same network from scratch (supervised)",
}


@dataclass
class RegressionConfig:
    """Settings of :func:`evaluate_regression` (``configs/eval.yaml``, section ``regression``).

    Attributes:
        n_labels: labelled trajectories per draw, drawn from train.
        label_draws: seeds of the labelled subsets (:func:`ssl_pde.eval.data.draw_labels`).
        select_metric: the valid metric every choice minimises (R^2 maximises), and the compared metric.
        methods: methods run (a subset of :data:`METHODS`).
        ridge_lambdas: ridge strengths tried (``ssl_linear``, ``random_init``).
        mlp_hidden: hidden width of the MLP head.
        mlp: search of the MLP head (``max_steps`` counts full-batch epochs).
        finetune, supervised: searches of the end-to-end networks.
        n_boot: bootstrap replicates of each ratio interval.
        recalibrate_bn: re-estimate the end-to-end networks' BatchNorm statistics under the current weights on
            the labelled set's training inputs before every valid score
            (:func:`~ssl_pde.eval.regression.recalibrate_batchnorm`).
        baseline_cache: a directory where each cell's supervised network is kept and from which later
            evaluations of the same cell (other encoders, same data, labels, seed and settings) restore it instead
            of training it again (:mod:`ssl_pde.eval.baseline_cache`; None: off).
    """

    n_labels: int
    label_draws: list[int]
    select_metric: str
    methods: list[str]
    ridge_lambdas: list[float]
    mlp_hidden: int
    mlp: Search
    finetune: Search
    supervised: Search
    n_boot: int = 10000
    recalibrate_bn: bool = True
    baseline_cache: str | None = None

    def check(self, n_train: int) -> None:
        """Refuse settings that cannot run or would compare methods unevenly (:class:`UserError`)."""
        if not 8 <= self.n_labels <= n_train:
            raise UserError(f"n_labels={self.n_labels} must lie in [8, {n_train}] (train trajectories)")
        if not self.label_draws or len(set(self.label_draws)) != len(self.label_draws):
            raise UserError(f"label_draws={self.label_draws}: give distinct label-draw seeds")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UserError(f"unknown method {unknown[0]!r} (choose from: {', '.join(METHODS)})")
        if "supervised" not in self.methods:
            raise UserError("methods must include supervised: every result is reported beside it")
        if self.select_metric not in REGRESSION_METRICS:
            raise UserError(f"unknown select_metric {self.select_metric!r} (have: {', '.join(REGRESSION_METRICS)})")
        if self.mlp.views != ["crops"]:
            raise UserError(f"mlp.views={self.mlp.views}: the MLP head reads frozen features; views do not apply")
        budget = ("max_steps", "eval_every", "patience", "batch")
        if [getattr(self.finetune, k) for k in budget] != [getattr(self.supervised, k) for k in budget]:
            raise UserError(
                "finetune and supervised need the same step budget: "
                + ", ".join(f"{k} {getattr(self.finetune, k)} vs {getattr(self.supervised, k)}" for k in budget)
            )
        if self.finetune.views != self.supervised.views:
            raise UserError(
                f"finetune and supervised need the same training inputs: views {self.finetune.views} vs "
                f"{self.supervised.views}"
            )
        counts = {m: len(getattr(self, m.removeprefix("ssl_")).candidates()) for m in TRAINED if m in self.methods}
        if len(set(counts.values())) > 1:
            raise UserError(f"trained methods need the same number of candidates, got {counts}")
        for m in TRAINED:
            spec: Search = getattr(self, m.removeprefix("ssl_"))
            bad = [v for v in spec.views if v not in TRAIN_INPUTS]
            if bad or spec.max_steps < 1 or spec.eval_every < 1 or not spec.lrs:
                raise UserError(
                    f"{m.removeprefix('ssl_')}: needs lrs, max_steps >= 1, eval_every >= 1 and views from "
                    f"({', '.join(TRAIN_INPUTS)}); got lrs={spec.lrs}, max_steps={spec.max_steps}, "
                    f"eval_every={spec.eval_every}, views={spec.views}"
                )


@dataclass
class Cell:
    """One (pretraining seed, label draw): the fitted methods, the labelled targets, the test features."""

    p: int
    d: int
    y_lab: Tensor
    seed: int = 0
    fitted: dict[str, Fitted] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    embedder: Embedder | None = None


def fit_cell(
    p: int,
    d: int,
    encoder: nn.Module,
    fresh: Callable[[], nn.Module],
    views: Any,
    data: tuple[Split, Split],
    cfg: RegressionConfig,
    log_target: bool,
    device: torch.device,
    clamp_margin: float = 0.0,
    seed_id: int | None = None,
    cache: BaselineCache | None = None,
) -> Cell:
    """Fit every configured method on the labelled set ``data[0]``; every choice on the valid split
    ``data[1]``; every method's predictions clamped to the labelled range widened by ``clamp_margin``
    (:func:`~ssl_pde.eval.regression.clamp_range`). The trained methods (and the random-init control) draw from
    :func:`cell_seed` of ``seed_id`` (the encoder's pretraining seed; default its position ``p``) and ``d``.
    With ``cache``, the supervised network is restored from it when this cell was trained before
    (:mod:`ssl_pde.eval.baseline_cache`), and stored in it otherwise."""
    lab, valid = data
    seed = cell_seed(p if seed_id is None else seed_id, d)
    cell = Cell(p, d, lab.y.double(), seed)
    ssl = Embedder(encoder, views, device)
    cell.embedder = ssl
    m, metric = cfg.methods, cfg.select_metric

    def timed(name: str, fn: Callable[[], Fitted]) -> None:
        if name in m:
            t0 = time.perf_counter()
            cell.fitted[name] = fn()
            choice = cell.fitted[name].choice
            cell.seconds[name] = round(time.perf_counter() - t0, 2)
            msg = "  %-13s %6.1f s  chosen %s"
            if "reused" in choice:  # the budget counts the training it took, once
                cell.seconds[name] = choice["seconds"]
                msg = "  %-13s %6.1f s  reused (" + str(choice["reused"]) + ")  chosen %s"
            log.info(msg, name, cell.seconds[name], _short(choice), extra={"progress": "fit"})  # progress bars

    common = {"log_target": log_target, "metric": metric, "clamp_margin": clamp_margin}
    nets = {**common, "seed": seed, "device": device, "recalibrate_bn": cfg.recalibrate_bn}
    timed("ssl_linear", lambda: fit_ridge(ssl, lab, valid, cfg.ridge_lambdas, **common))
    timed("ssl_mlp", lambda: fit_mlp(ssl, lab, valid, cfg.mlp, hidden=cfg.mlp_hidden, seed=seed, **common))

    def random_init() -> Fitted:
        torch.manual_seed(seed)
        rand = fresh().to(device).eval().requires_grad_(False)
        return fit_ridge(Embedder(rand, views, device), lab, valid, cfg.ridge_lambdas, **common)

    timed("random_init", random_init)
    timed(
        "ssl_finetune",
        lambda: fit_network(pretrained_copy(encoder), views, lab, valid, cfg.finetune, **nets),
    )

    def supervised() -> Fitted:
        def train() -> Fitted:
            return fit_network(fresh, views, lab, valid, cfg.supervised, **nets)

        if cache is None:
            return train()
        plain = {"metric": metric, "log_target": log_target, "recalibrate_bn": cfg.recalibrate_bn}
        plain["clamp_margin"] = clamp_margin
        t = Training(fresh, views, cfg.supervised, lab=lab, valid=valid, seed=seed, settings=plain, device=device)
        return fit_or_restore(cache, train, t)

    timed("supervised", supervised)
    return cell


def cell_seed(encoder_id: int, draw: int) -> int:
    """The seed of one cell's trained methods: a function of the encoder's identity (its pretraining seed) and the
    label draw only, so the same encoder and draw give the same cell whichever runs it is part of."""
    return 1_000_003 * int(encoder_id) + int(draw)


def _short(choice: dict[str, Any]) -> str:
    if "chosen" in choice:
        return f"{choice['chosen']} (valid {choice['valid']:.4g})"
    return f"lambda={choice.get('lambda')} (valid {choice['valid']:.4g})"


def score_test(cells: list[Cell], test: Split, metrics: tuple[str, ...]) -> tuple[list[dict[str, Any]], dict]:
    """The one reading of the test split: every fitted method of every cell, and each metric's floor.

    Returns per-cell ``{method: {metric: value}}`` and, for figures, the first cell's test predictions
    (``preds``) and test representations (``features``)."""
    out, extras = [], {}
    for i, c in enumerate(cells):
        row: dict[str, Any] = {"floor": floor_scores(c.y_lab, test.y, metrics)}
        preds = {name: f.predict(test) for name, f in c.fitted.items()}
        row.update({name: regression_scores(p, test.y, metrics) for name, p in preds.items()})
        out.append(row)
        if i == 0:
            extras = {"preds": preds, "features": c.embedder(test) if c.embedder else None}
    return out, extras


def evaluate_regression(
    encoders: list[nn.Module],
    fresh: Callable[[], nn.Module],
    views: Any,
    splits: dict[str, Split],
    cfg: RegressionConfig,
    log_target: bool,
    device: torch.device,
    clamp_margin: float = 0.0,
    encoder_seeds: Sequence[int] | None = None,
    cache: BaselineCache | None = None,
) -> dict[str, Any]:
    """Every method on every (encoder, label draw) cell; choices on valid; the test split read once at the end.

    Args:
        encoders: the frozen pretrained encoders, one per pretraining seed (P >= 1).
        fresh: builds a freshly initialised encoder of the same architecture (supervised, random_init).
        views: the encoders' view builder (evaluation crops; training views of the end-to-end methods).
        splits: ``train`` (labelled subsets are drawn from it), ``valid`` and ``test``.
        cfg: the protocol's settings.
        log_target: regress the log of the parameter.
        device: where encoders run.
        clamp_margin: every method's predictions are clamped to the labelled range widened by this many widths
            at each end (0: the labelled range; :mod:`ssl_pde.eval.transfer` widens it under extrapolation).
        encoder_seeds: each encoder's pretraining seed (distinct), from which with the label draw its cells'
            training is seeded (:func:`cell_seed`): a one-encoder run of seed k then repeats exactly that encoder's
            cells of a multi-encoder run, and runs can be merged. Default: the encoders' positions.
        cache: supervised networks trained by earlier evaluations of the same cells, reused
            (:mod:`ssl_pde.eval.baseline_cache`; None: always trained).

    Returns:
        ``cells`` (per cell: ``p``, ``d``, ``test`` scores per method, ``choices`` with valid scores,
        ``seconds`` per method), ``summary`` (per method and metric [mean, std] over cells), ``comparisons``
        (per SSL method: the supervised / SSL ratio of ``select_metric`` with interval and verdict),
        ``budget`` (per trained method: optimiser steps and seconds, summed over candidates and cells),
        ``metrics``, and ``figures`` data (first cell's test predictions and representations).
    """
    train, valid, test = splits["train"], splits["valid"], splits["test"]
    cfg.check(len(train))
    ids = list(range(len(encoders))) if encoder_seeds is None else [int(k) for k in encoder_seeds]
    if len(ids) != len(encoders) or len(set(ids)) != len(ids):
        raise ValueError(f"encoder_seeds {ids} must be distinct, one per encoder ({len(encoders)})")
    cells: list[Cell] = []
    fit_kw = {"cfg": cfg, "log_target": log_target, "device": device, "clamp_margin": clamp_margin, "cache": cache}
    for d in cfg.label_draws:
        lab = train.subset(draw_labels(len(train), cfg.n_labels, int(d)))
        for p, enc in enumerate(encoders):
            log.info("pretraining seed %d of %d, label draw %d: %d labels", p + 1, len(encoders), d, cfg.n_labels)
            cell = fit_cell(p, int(d), enc, fresh, views, (lab, valid), seed_id=ids[p], **fit_kw)
            cells.append(cell)
    metrics = metric_names(train.y, valid.y)  # from the labelled splits: the test targets are read once, later
    test_scores, extras = score_test(cells, test, metrics)  # every choice is made: read the test split once
    return summarise(cells, test_scores, metrics, cfg, len(encoders), extras)


def summarise(
    cells: list[Cell],
    scores: list[dict[str, Any]],
    metrics: tuple[str, ...],
    cfg: RegressionConfig,
    n_enc: int,
    extras: dict,
) -> dict[str, Any]:
    """The result document of an evaluated grid of cells (:func:`summarise_cells` adds the statistics)."""
    doc = {
        "metrics": list(metrics),
        "select_metric": cfg.select_metric,
        "n_pretrain_seeds": n_enc,
        "label_draws": list(cfg.label_draws),
        "cells": [
            {
                "pretrain_seed_index": c.p,
                "label_draw": c.d,
                "train_seed": c.seed,
                "test": s,
                "choices": {
                    "floor": {k: best_constant(k, c.y_lab).tolist() for k in metrics},
                    **{m: f.choice for m, f in c.fitted.items()},
                },
                "seconds": c.seconds,
            }
            for c, s in zip(cells, scores, strict=True)
        ],
        "figures": extras,
    }
    return {**doc, **summarise_cells(doc, cfg.n_boot)}


def summarise_cells(doc: dict[str, Any], n_boot: int = 10000) -> dict[str, Any]:
    """Means, stds (ddof=1), paired ratio intervals and budgets from a result document's ``cells`` (so that a
    stored ``results.json`` can be summarised again). The floor depends on the label draw only: its mean and
    std are over the draws, not repeated per encoder."""
    cells, metrics, sel = doc["cells"], doc["metrics"], doc["select_metric"]
    draws, n_enc = doc["label_draws"], doc["n_pretrain_seeds"]
    methods = [m for m in METHODS if m in cells[0]["test"]]
    summary = {}
    for m in methods:
        rows = [c for c in cells if m != "floor" or c["pretrain_seed_index"] == 0]
        summary[m] = {k: [finite(v) for v in mean_std(np.array([c["test"][m][k] for c in rows]))] for k in metrics}

    def grid(m: str) -> np.ndarray:  # (P, D) of the selection metric, lower is better (R^2: 1 - R^2)
        g = np.full((n_enc, len(draws)), np.nan)
        for c in cells:
            g[c["pretrain_seed_index"], draws.index(c["label_draw"])] = c["test"][m][sel]
        return g if REGRESSION_METRICS[sel][1] else 1 - g

    comparisons = {}
    for m in (*SSL_METHODS, "random_init"):
        if m in methods:
            r = ratio_interval(grid("supervised"), grid(m), (SHORT[m], "supervised"), n_boot=n_boot)
            comparisons[f"supervised/{m}"] = r.record(sel if REGRESSION_METRICS[sel][1] else f"1 - {sel}")
    budget = {}
    for m in methods:
        if m != "floor":
            budget[m] = {
                "seconds": round(sum(c["seconds"][m] for c in cells), 1),
                "steps": int(sum(c["choices"][m].get("steps", 0) for c in cells)),
                "candidates": len(cells[0]["choices"][m].get("candidates", [])),
                **search_edges([c["choices"][m] for c in cells]),
            }
    return {"summary": summary, "comparisons": comparisons, "budget": budget}


def search_edges(choices: list[dict[str, Any]]) -> dict[str, int]:
    """How often a trained method's search was bounded: ``lr_at_edge``, cells whose chosen learning rate is the
    smallest or largest candidate (the optimum may lie outside the grid); ``still_improving``, cells whose
    chosen run used its whole step budget and was best in its last tenth (more steps might help). Empty for
    methods without a search (ridge)."""
    trained = [c for c in choices if "chosen" in c and c.get("candidates")]
    if not trained:
        return {}
    edge = improving = 0
    for c in trained:
        lrs = [k["lr"] for k in c["candidates"]]
        edge += c["chosen"]["lr"] in (min(lrs), max(lrs))
        run = next(k for k in c["candidates"] if k["lr"] == c["chosen"]["lr"] and k["views"] == c["chosen"]["views"])
        full = max(k["steps_run"] for k in c["candidates"])
        improving += run["steps_run"] == full and run["best_step"] >= 0.9 * full
    return {"lr_at_edge": edge, "still_improving": improving, "cells": len(trained)}
