"""Metrics (pure functions): regression errors as defined in DESIGN.md, representation rank, ridge probe."""

from __future__ import annotations

import torch

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
    ``target`` on the evaluation half, and the NMSE of predicting the fit-half mean (the floor).
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
    floor = torch.full_like(ye, float(target[:half].double().mean()))
    return {
        "nmse": float(nmse(pred, ye)),
        "rel_l1": float(rel_l1(pred, ye)),
        "floor_nmse": float(nmse(floor, ye)),
        "lambda": lam,
    }


def rollout_errors(pred: Tensor, target: Tensor) -> Tensor:
    """Per trajectory and predicted frame: ``e_k = ||u^_k - u_k||^2 / ||u_k||^2``; (B, K, X) -> (B, K)."""
    p, y = pred.double().flatten(2), target.double().flatten(2)
    return ((p - y) ** 2).sum(-1) / (y**2).sum(-1)


def rollout_nmse(pred: Tensor, target: Tensor) -> dict[str, float]:
    """DESIGN.md rollout metrics: the mean of e_k over frames and trajectories (``rollout_nmse``) and the
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
