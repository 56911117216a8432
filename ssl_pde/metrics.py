"""Metrics (pure functions): regression errors and their best-constant floors, representation rank, ridge probe.

Regression metrics take ``pred`` and ``target`` of shape (N,) or (N, k) (a scalar target is a vector of length
1). The floor of a metric is the constant prediction that minimises it on the labelled set
(:func:`best_constant`), not the mean for every metric: per-sample NMSE and relative L1 weight the samples
by ``1/||y||``, so their best constants lie below the mean for a positive, spread-out target.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ssl_pde.core.errors import UserError

Tensor = torch.Tensor


def _as_2d(y: Tensor) -> Tensor:
    return y[:, None] if y.dim() == 1 else y


def nmse(pred: Tensor, target: Tensor) -> Tensor:
    """``mean_i ||pred_i - y_i||^2 / ||y_i||^2``; pred, target: (N,) or (N, k)."""
    p, y = _as_2d(pred).double(), _as_2d(target).double()
    return (((p - y) ** 2).sum(1) / (y**2).sum(1)).mean()


def rel_l1(pred: Tensor, target: Tensor) -> Tensor:
    """``mean_i ||pred_i - y_i||_1 / ||y_i||_1``; pred, target: (N,) or (N, k)."""
    p, y = _as_2d(pred).double(), _as_2d(target).double()
    return ((p - y).abs().sum(1) / y.abs().sum(1)).mean()


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """``mean_i ||pred_i - y_i||^2 / k`` (the plain mean squared error: the paper's NS buoyancy metric);
    pred, target: (N,) or (N, k)."""
    p, y = _as_2d(pred).double(), _as_2d(target).double()
    return ((p - y) ** 2).mean()


def r2(pred: Tensor, target: Tensor) -> Tensor:
    """Coefficient of determination ``1 - sum ||y^ - y||^2 / sum ||y - mean(y)||^2`` over the evaluated set
    (1: perfect, 0: the evaluated set's own mean, negative: worse than it); pred, target: (N,) or (N, k)."""
    p, y = _as_2d(pred).double(), _as_2d(target).double()
    return 1 - ((p - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum().clamp_min(1e-300)


def log_mse(pred: Tensor, target: Tensor) -> Tensor:
    """``mean (log y^ - log y)^2`` over samples and components, for positive scale parameters (viscosity,
    buoyancy, lengths); a non-positive prediction scores ``inf``. pred, target: (N,) or (N, k)."""
    p, y = _as_2d(pred).double(), _as_2d(target).double()
    if bool((p <= 0).any()):
        return torch.tensor(float("inf"), dtype=torch.float64)
    return ((torch.log(p) - torch.log(y)) ** 2).mean()


#: Regression metrics by name: (function, lower is better).
REGRESSION_METRICS: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], bool]] = {
    "nmse": (nmse, True),
    "rel_l1": (rel_l1, True),
    "mse": (mse, True),
    "r2": (r2, False),
    "log_mse": (log_mse, True),
}


def _weighted_median(v: Tensor, w: Tensor) -> Tensor:
    """A minimiser of ``sum_i w_i |c - v_i|`` (w >= 0): the smallest v_i whose cumulative weight reaches half."""
    order = torch.argsort(v)
    cw = torch.cumsum(w[order], 0)
    return v[order][int(torch.searchsorted(cw, 0.5 * cw[-1]))]


def best_constant(metric: str, y: Tensor) -> Tensor:
    """The constant prediction minimising ``metric`` on the targets ``y`` (N,) or (N, k); returns (k,).

    Closed forms: ``mse`` and ``r2``: the mean; ``nmse``: ``sum_i w_i y_i / sum_i w_i`` with
    ``w_i = 1/||y_i||^2`` (for a scalar ``sum(1/y) / sum(1/y^2)``); ``rel_l1``: per component the median of y
    weighted by ``1/||y_i||_1``; ``log_mse``: ``exp(mean log y)`` (the geometric mean).
    """
    y2 = _as_2d(y).double()
    if metric in ("mse", "r2"):
        return y2.mean(0)
    if metric == "nmse":
        w = 1 / (y2**2).sum(1)
        return (w[:, None] * y2).sum(0) / w.sum()
    if metric == "rel_l1":
        w = 1 / y2.abs().sum(1)
        return torch.stack([_weighted_median(y2[:, j], w) for j in range(y2.shape[1])])
    if metric == "log_mse":
        return torch.exp(torch.log(y2).mean(0))
    raise UserError(f"unknown regression metric {metric!r} (have: {', '.join(REGRESSION_METRICS)})")


def regression_scores(pred: Tensor, target: Tensor, metrics: tuple[str, ...] = ("nmse", "rel_l1", "mse", "r2")) -> dict:
    """``{metric: float}`` of ``pred`` against ``target`` for each named metric."""
    return {m: float(REGRESSION_METRICS[m][0](pred, target)) for m in metrics}


def floor_scores(
    y_fit: Tensor, y_eval: Tensor, metrics: tuple[str, ...] = ("nmse", "rel_l1", "mse", "r2")
) -> dict[str, float]:
    """Each metric's floor: its :func:`best_constant` fitted on ``y_fit``, scored on ``y_eval``."""
    out = {}
    for m in metrics:
        c = best_constant(m, y_fit)
        pred = c.expand(len(y_eval), -1)
        out[m] = float(REGRESSION_METRICS[m][0](pred if _as_2d(y_eval).shape[1] > 1 else pred[:, 0], y_eval))
    return out


def rankme(z: Tensor, eps: float = 1e-7) -> Tensor:
    """Effective rank (RankMe, Garrido et al. 2023): ``exp(entropy of sigma / sum sigma)``; z: (N, D)."""
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum() + eps
    return torch.exp(-(p * torch.log(p)).sum())


def ridge_fit_predict(x_fit: Tensor, y_fit: Tensor, x_eval: Tensor, lam: float) -> Tensor:
    """Closed-form ridge regression on standardised features; x: (N, D), y: (N,) or (N, k)."""
    x_fit, x_eval, y = x_fit.double(), x_eval.double(), _as_2d(y_fit).double()
    mu, sd = x_fit.mean(0), x_fit.std(0).clamp_min(1e-8)
    a, b = (x_fit - mu) / sd, (x_eval - mu) / sd
    ym = y.mean(0)
    d = a.shape[1]
    w = torch.linalg.solve(a.T @ a + lam * a.shape[0] * torch.eye(d, dtype=a.dtype, device=a.device), a.T @ (y - ym))
    return b @ w + ym


def ridge_probe(
    feats: Tensor, target: Tensor, log_target: bool = False, lams: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
) -> dict[str, float]:
    """Online probe: ridge regression of ``target`` from frozen ``feats``, honest model selection.

    The first half fits, the second half evaluates. The ridge strength is chosen on a holdout inside the
    first half, then refit on all of it. With ``log_target`` the regression is on log(target) and the
    prediction exponentiated, clamped to the fit range. Returns NMSE and relative L1 of the prediction of
    ``target`` on the evaluation half, and the floor: the NMSE of the best constant for NMSE fitted on the
    first half (:func:`best_constant`).
    """
    n = feats.shape[0]
    half = n // 2
    if half < 4:
        raise ValueError(f"ridge probe needs at least 8 samples, got {n}")
    y = torch.log(target.double()) if log_target else target.double()
    xf, yf, xe, ye = feats[:half], y[:half], feats[half:], target[half:].double()
    q = half * 3 // 4
    scores = []
    for lam in lams:
        p = ridge_fit_predict(xf[:q], yf[:q], xf[q:], lam)
        scores.append(float(((p.squeeze(-1) - yf[q:]) ** 2).mean()))
    lam = lams[min(range(len(lams)), key=scores.__getitem__)]
    pred = ridge_fit_predict(xf, yf, xe, lam).squeeze(-1)
    pred = pred.clamp(yf.min(), yf.max())
    if log_target:
        pred = torch.exp(pred)
    return {
        "nmse": float(nmse(pred, ye)),
        "rel_l1": float(rel_l1(pred, ye)),
        "floor_nmse": floor_scores(target[:half], ye, ("nmse",))["nmse"],
        "lambda": lam,
    }


def ridge_classify(
    feats: Tensor, labels: Tensor, lams: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
) -> dict[str, float]:
    """Online class probe: ridge regression of one-hot ``labels`` from frozen ``feats``, the class with the largest
    prediction. The same protocol as :func:`ridge_probe`: the first half fits (the ridge strength chosen on a holdout
    inside it, by accuracy), the second half evaluates. Returns the accuracy on the evaluation half and its floor,
    the accuracy of always predicting the first half's most frequent class.

    Args:
        feats: (N, D) representations, N >= 8.
        labels: (N,) integer classes (any values; at least two distinct).
    """
    n = feats.shape[0]
    half = n // 2
    if half < 4:
        raise ValueError(f"class probe needs at least 8 samples, got {n}")
    classes, y = torch.unique(labels, return_inverse=True)
    onehot = torch.nn.functional.one_hot(y, len(classes)).double()
    xf, yf, xe, ye = feats[:half], onehot[:half], feats[half:], y[half:]
    q = half * 3 // 4
    scores = []
    for lam in lams:
        p = ridge_fit_predict(xf[:q], yf[:q], xf[q:], lam)
        scores.append(float((p.argmax(1) == y[q:half]).double().mean()))
    lam = lams[max(range(len(lams)), key=scores.__getitem__)]
    pred = ridge_fit_predict(xf, yf, xe, lam).argmax(1)
    majority = torch.bincount(y[:half], minlength=len(classes)).argmax()
    return {
        "accuracy": float((pred == ye).double().mean()),
        "floor_accuracy": float((ye == majority).double().mean()),
        "lambda": lam,
    }


def rollout_errors(pred: Tensor, target: Tensor) -> Tensor:
    """Per trajectory and predicted frame: ``e_k = ||u^_k - u_k||^2 / ||u_k||^2``; (B, K, X) -> (B, K)."""
    p, y = pred.double().flatten(2), target.double().flatten(2)
    return ((p - y) ** 2).sum(-1) / (y**2).sum(-1)


def rollout_nmse(pred: Tensor, target: Tensor) -> dict[str, float]:
    """The rollout metrics (docs/evaluation.md): the mean of e_k over frames and trajectories (``rollout_nmse``) and the
    sum over frames averaged over trajectories (``rollout_nmse_sum``, the LPSDA convention), with the
    number of predicted frames, and the plain MSE over every predicted value (``rollout_mse``, PDEArena's)."""
    e = rollout_errors(pred, target)
    return {
        "rollout_nmse": float(e.mean()),
        "rollout_nmse_sum": float(e.sum(1).mean()),
        "rollout_mse": float(((pred.double() - target.double()) ** 2).mean()),  # PDEArena's NS metric
        "frames": int(e.shape[1]),
    }


def one_step_metrics(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Errors of teacher-forced predictions (every frame predicted from true inputs): the mean of ``e_k``
    (:func:`rollout_errors`) over frames and trajectories (``one_step_nmse``) and the plain MSE over every
    predicted value (``one_step_mse``). pred, target: (B, K, ...) -> floats."""
    e = rollout_errors(pred, target)
    return {
        "one_step_nmse": float(e.mean()),
        "one_step_mse": float(((pred.double() - target.double()) ** 2).mean()),
    }
