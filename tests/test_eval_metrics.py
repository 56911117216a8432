"""Evaluation metrics, floors, statistics and the shared training loop, checked by hand or by brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from ssl_pde.eval.stats import NO_DIFFERENCE, bootstrap_log_mean, mean_std, ratio_interval
from ssl_pde.eval.train import Search, search, train_early_stopped
from ssl_pde.metrics import (
    REGRESSION_METRICS,
    best_constant,
    floor_scores,
    log_mse,
    nmse,
    r2,
    rankme,
    rel_l1,
    ridge_probe,
)


def test_metrics_by_hand():
    """nmse = mean ||y^-y||^2/||y||^2 and rel_l1 = mean ||y^-y||_1/||y||_1, worked out by hand."""
    y = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    p = torch.tensor([[1.5, 2.0], [2.0, 0.0]])
    assert float(nmse(p, y)) == pytest.approx((0.25 / 5 + 2.0 / 10) / 2)
    assert float(rel_l1(p, y)) == pytest.approx((0.5 / 3 + 2.0 / 4) / 2)
    assert float(nmse(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 2.0]))) == pytest.approx(1.0)
    assert float(rankme(torch.eye(16))) == pytest.approx(16, rel=1e-4)
    assert float(rankme(torch.ones(16, 1) @ torch.randn(1, 8))) == pytest.approx(1, rel=1e-3)


def test_ridge_probe_recovers_a_linear_target():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=g, dtype=torch.float64)
    y = 0.1 * x @ torch.arange(1.0, 11.0, dtype=torch.float64) + 50  # well away from 0: per-sample NMSE
    r = ridge_probe(x, y)
    assert r["nmse"] < 1e-4 < r["floor_nmse"], r


def test_rollout_metrics_by_hand():
    """e_k = ||u^_k - u_k||^2 / ||u_k||^2; rollout_nmse is its mean, rollout_nmse_sum the sum over frames."""
    from ssl_pde.metrics import rollout_nmse

    truth = torch.ones(2, 3, 4)
    pred = truth.clone()
    pred[0, 1] += 1.0  # e = 4 / 4 = 1 for trajectory 0, frame 1
    pred[1, 2] += 0.5  # e = 1 / 4 = 0.25 for trajectory 1, frame 2
    r = rollout_nmse(pred, truth)
    assert r["frames"] == 3
    assert r["rollout_nmse"] == pytest.approx((1 + 0.25) / 6)
    assert r["rollout_nmse_sum"] == pytest.approx((1 + 0.25) / 2)
    assert r["rollout_mse"] == pytest.approx((4 * 1.0 + 4 * 0.25) / 24)  # 24 predicted values


def test_regression_mse_by_hand():
    """mse is the plain mean squared error (the paper's NS buoyancy metric): predicting the mean of
    U(0.2, 0.5) scores its variance, 0.0075, on a fine uniform grid of labels."""
    from ssl_pde.metrics import mse

    y = torch.linspace(0.2, 0.5, 100001, dtype=torch.float64)
    assert float(mse(torch.full_like(y, 0.35), y)) == pytest.approx(0.0075, rel=1e-4)
    assert float(mse(torch.tensor([1.0, 2.0]), torch.tensor([1.5, 2.0]))) == pytest.approx(0.125)


def _score(metric: str, c: np.ndarray, y: torch.Tensor) -> float:
    pred = torch.as_tensor(c, dtype=torch.float64).expand(len(y), -1)
    return float(REGRESSION_METRICS[metric][0](pred if y.dim() == 2 else pred[:, 0], y))


@pytest.mark.parametrize("metric", ["nmse", "rel_l1", "mse", "log_mse", "r2"])
def test_best_constant_beats_brute_force_minimisation(metric):
    """The floor is the metric-optimal constant: for a scalar target no point of a fine grid over the targets'
    range scores better, and for a 2-vector target a Nelder-Mead search from the mean finds nothing better."""
    gen = torch.Generator().manual_seed(0)
    y = torch.exp(torch.empty(301, dtype=torch.float64).uniform_(np.log(0.02), np.log(0.2), generator=gen))
    lower = REGRESSION_METRICS[metric][1]
    sign = 1 if lower else -1
    c = best_constant(metric, y).numpy()
    grid = np.linspace(float(y.min()), float(y.max()), 4001)
    brute = min(sign * _score(metric, np.array([g]), y) for g in grid)
    assert sign * _score(metric, c, y) <= brute + 1e-12
    y2 = torch.stack([y, 1 + y.flip(0) ** 2], 1)  # two positive components
    c2 = best_constant(metric, y2).numpy()
    res = minimize(
        lambda v: sign * _score(metric, v, y2),
        y2.mean(0).numpy(),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 4000},
    )
    assert sign * _score(metric, c2, y2) <= res.fun + 1e-9


def test_nmse_floor_of_a_log_uniform_viscosity():
    """For nu log-uniform on [0.02, 0.2] the mean scores a per-sample NMSE near 1.23, the best constant
    sum(1/y)/sum(1/y^2) near 0.29 (closed forms of the integrals, computed here by quadrature)."""
    y = torch.exp(torch.linspace(np.log(0.02), np.log(0.2), 200001, dtype=torch.float64))
    mean = float(nmse(torch.full_like(y, float(y.mean())), y))
    c = best_constant("nmse", y)
    assert float(c[0]) == pytest.approx(float((1 / y).sum() / (1 / y**2).sum()))
    assert mean == pytest.approx(1.23, abs=0.01)
    assert float(nmse(c.expand(len(y)), y)) == pytest.approx(0.29, abs=0.01)
    assert floor_scores(y, y, ("nmse", "mse"))["nmse"] == pytest.approx(float(nmse(c.expand(len(y)), y)))


def test_online_probe_floor_is_the_best_constant():
    """ridge_probe's floor is the NMSE of the best constant fitted on the fit half, not of its mean."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g, dtype=torch.float64)
    y = torch.exp(torch.empty(64, dtype=torch.float64).uniform_(-4, -1.6, generator=g))
    r = ridge_probe(x, y, log_target=True)
    c = best_constant("nmse", y[:32])
    assert r["floor_nmse"] == pytest.approx(float(nmse(c.expand(32), y[32:])))
    assert r["floor_nmse"] < float(nmse(torch.full((32,), float(y[:32].mean()), dtype=torch.float64), y[32:]))


def test_r2_and_log_mse_by_hand():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    p = torch.tensor([1.0, 2.0, 3.0, 2.0], dtype=torch.float64)
    assert float(r2(p, y)) == pytest.approx(1 - 4.0 / 5.0)
    assert float(r2(y, y)) == 1.0 and float(r2(torch.full_like(y, 2.5), y)) == 0.0
    assert float(log_mse(p, y)) == pytest.approx(np.log(2) ** 2 / 4)
    assert float(log_mse(-p, y)) == float("inf")


def test_mean_std_uses_ddof_1():
    assert mean_std(np.array([1.0, 2.0, 3.0])) == (2.0, 1.0)
    assert mean_std(np.array([[1.0, 3.0]])) == (2.0, pytest.approx(np.sqrt(2)))
    assert mean_std(np.array([5.0])) == (5.0, 0.0)


def test_ratio_interval_verdicts_and_levels():
    """A ratio of 2 on every cell: interval [2, 2], SSL wins; 0.5: supervised wins; mixed signs: no
    difference. With one pretraining seed the interval says it is over label draws only."""
    ones = np.ones((3, 3))
    r = ratio_interval(2 * ones, ones)
    assert (r.ratio, r.low, r.high) == pytest.approx((2, 2, 2)) and r.verdict == "SSL wins"
    assert r.levels == "pretraining seeds and label draws"
    r = ratio_interval(ones[:1], 2 * ones[:1])
    assert r.verdict == "supervised wins" and r.levels == "label draws only (one pretraining seed)"
    r = ratio_interval(np.array([[2.0, 0.5, 2.0, 0.5]]), np.ones((1, 4)))
    assert r.verdict == NO_DIFFERENCE and r.low < 1 < r.high and r.ratio == pytest.approx(1.0)
    with pytest.raises(ValueError, match="paired"):
        ratio_interval(ones, ones[:2])


def test_two_level_bootstrap_resamples_pretraining_seeds():
    """Rows (pretraining seeds) that differ while label draws inside a row agree: the two-level bootstrap
    spreads (it resamples rows); the per-row draws alone would give a zero-width interval. Its replicates
    have the mean of the data and the variance of a mean of 3 rows drawn with replacement."""
    a = np.repeat(np.array([[0.0], [0.3], [0.6]]), 4, axis=1)
    reps = bootstrap_log_mean(a, n_boot=40000, seed=1)
    assert reps.mean() == pytest.approx(0.3, abs=0.005)
    assert reps.var() == pytest.approx(a[:, 0].var() / 3, rel=0.05)
    assert np.ptp(bootstrap_log_mean(a[1:2], n_boot=1000)) == 0


def test_crossed_bootstrap_shares_the_label_draws():
    """Label draws are crossed with pretraining seeds (draw d is one labelled subset for every encoder): a
    log-ratio that depends on the draw only must spread like a mean of D draws, not of P x D independent
    ones; a single cell gives no interval and no verdict."""
    a = np.tile(np.array([0.0, 0.2, 0.4, 0.6]), (3, 1))  # (P=3, D=4), identical rows
    reps = bootstrap_log_mean(a, n_boot=40000, seed=2)
    assert reps.var() == pytest.approx(a[0].var() / 4, rel=0.05)
    one = ratio_interval(np.array([[2.0]]), np.array([[1.0]]))
    assert one.ratio == pytest.approx(2.0) and one.verdict == NO_DIFFERENCE and np.isnan(one.low)


def test_training_stops_early_and_restores_the_best_state():
    """A scalar parameter driven up by the loss; the valid score is best at 3: training stops after
    `patience` evaluations without improvement and restores the parameter value of the best evaluation."""
    w = torch.nn.Parameter(torch.zeros(()))
    model = torch.nn.Module()
    model.w = w
    spec = Search(lrs=[0.5], max_steps=200, eval_every=2, patience=3, weight_decay=0.0)
    seen = []

    def valid() -> float:
        seen.append(float(w.detach()))
        return abs(float(w) - 3.0)

    rec = train_early_stopped(model, lambda _: -w, valid, 0.5, spec)
    best = min(range(len(seen)), key=lambda i: abs(seen[i] - 3))
    assert rec.best_step == 2 * (best + 1) and rec.steps_run == rec.best_step + 2 * 3 < 200
    assert float(w.detach()) == pytest.approx(seen[best]) and rec.best_valid == pytest.approx(abs(seen[best] - 3))


def test_search_keeps_the_candidate_best_on_valid():
    """Three learning rates, one budget: the record lists each with its valid score, and the chosen one is the
    minimum; every candidate ran from the same initial state (built anew per candidate)."""
    spec = Search(lrs=[1e-3, 1e-1, 1.0], max_steps=20, eval_every=5, patience=0, weight_decay=0.0)
    target = torch.tensor([2.0, -1.0])

    def build(cand):
        torch.manual_seed(0)
        lin = torch.nn.Linear(2, 1, bias=False)
        x = torch.eye(2)
        return (
            lin,
            lambda _: ((lin(x).squeeze(-1) - target) ** 2).mean(),
            lambda: float(((lin(x).squeeze(-1) - target) ** 2).mean()),
        )

    model, rec = search(build, spec)
    scores = [c["valid"] for c in rec["candidates"]]
    assert [c["lr"] for c in rec["candidates"]] == spec.lrs and rec["valid"] == min(scores)
    assert rec["chosen"]["lr"] == spec.lrs[int(np.argmin(scores))] and rec["steps"] == 60
    with torch.no_grad():
        assert float(((model(torch.eye(2)).squeeze(-1) - target) ** 2).mean()) == pytest.approx(min(scores))
