"""Statistics of an evaluation over pretraining seeds x label draws (pure functions on numpy arrays).

Scores are arranged as ``(P, D)`` arrays: P pretraining seeds (encoders), D label draws; a method that does
not depend on pretraining still has one score per cell, so every comparison is paired cell by cell. The
design is crossed (label draw d is the same labelled subset for every encoder), so the interval of a ratio
is a two-level bootstrap of the mean log-ratio that resamples pretraining seeds (rows) and label draws
(columns) with replacement, the columns once per replicate and shared by every drawn row. With one
pretraining seed only the label-draw level remains, and the interval says so; a single cell gives no
interval and no verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_DIFFERENCE = "no difference shown"


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) over all entries."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def bootstrap_log_mean(log_r: np.ndarray, n_boot: int = 10000, seed: int = 0) -> np.ndarray:
    """Two-level bootstrap replicates of the mean of ``log_r`` (P, D): (n_boot,) float64.

    Each replicate draws P pretraining seeds (rows) and D label draws (columns) with replacement, the same
    columns for every drawn row (the draws are crossed with the seeds), and averages the P x D drawn values.
    P == 1 keeps its only row (the label-draw level alone)."""
    a = np.asarray(log_r, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected a (P, D) array of log-ratios, got shape {a.shape}")
    p, d = a.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, p, (n_boot, p)) if p > 1 else np.zeros((n_boot, 1), dtype=np.int64)
    cols = rng.integers(0, d, (n_boot, 1, d))
    return a[rows[:, :, None], cols].mean(axis=(1, 2))


@dataclass(frozen=True)
class RatioInterval:
    """A ratio ``baseline / method`` of a lower-is-better metric (above 1: the method is better).

    Attributes:
        ratio: exp of the mean log-ratio over all cells (the geometric mean of the per-cell ratios).
        low, high: the 95 % bootstrap interval of that ratio.
        verdict: "<method> wins" when ``low > 1``, "<baseline> wins" when ``high < 1``, else
            :data:`NO_DIFFERENCE` (names as given, by default "SSL" and "supervised").
        levels: "pretraining seeds and label draws", or "label draws only" with one pretraining seed.
        cells: (P, D) per-cell ratios.
    """

    ratio: float
    low: float
    high: float
    verdict: str
    levels: str
    cells: list[list[float]]

    def text(self) -> str:
        return f"{self.ratio:.2f} [{self.low:.2f}, {self.high:.2f}]"

    def record(self, metric: str) -> dict:
        """The JSON record of a comparison of ``metric``."""
        return {
            "metric": metric,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "verdict": self.verdict,
            "interval_over": self.levels,
            "cells": self.cells,
        }


def ratio_interval(
    baseline: np.ndarray,
    method: np.ndarray,
    names: tuple[str, str] = ("SSL", "supervised"),
    n_boot: int = 10000,
    seed: int = 0,
    level: float = 0.95,
    inner: str = "label draws",
) -> RatioInterval:
    """Paired ratio ``baseline / method`` of (P, D) scores (lower is better) with its bootstrap interval;
    ``names``: (method, baseline) for the verdict; ``inner``: what the second level resamples."""
    b, m = np.asarray(baseline, dtype=np.float64), np.asarray(method, dtype=np.float64)
    if b.shape != m.shape or b.ndim != 2:
        raise ValueError(f"paired (P, D) scores needed, got shapes {b.shape} and {m.shape}")
    log_r = np.log(b) - np.log(m)
    if not np.isfinite(log_r).all():
        raise ValueError(f"ratios need positive finite scores, got {b.ravel().tolist()} / {m.ravel().tolist()}")
    levels = f"pretraining seeds and {inner}" if b.shape[0] > 1 else f"{inner} only (one pretraining seed)"
    if log_r.size < 2:  # one cell: no spread to resample, no interval, no verdict
        r = float(np.exp(log_r.mean()))
        return RatioInterval(
            r, float("nan"), float("nan"), NO_DIFFERENCE, "one cell: no interval", np.exp(log_r).tolist()
        )
    reps = bootstrap_log_mean(log_r, n_boot, seed)
    q = (1 - level) / 2
    lo, hi = np.exp(np.quantile(reps, [q, 1 - q]))
    verdict = f"{names[0]} wins" if lo > 1 else f"{names[1]} wins" if hi < 1 else NO_DIFFERENCE
    return RatioInterval(float(np.exp(log_r.mean())), float(lo), float(hi), verdict, levels, np.exp(log_r).tolist())
