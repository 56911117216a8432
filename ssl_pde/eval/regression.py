"""Parameter regression methods: each fits on a labelled set and makes every choice on the valid split.

A method returns a :class:`Fitted`: a predictor of the parameter for any split and the record of its
choices (with the valid score each was chosen by). None of these functions receives a test split; the
test split is scored once, by :func:`ssl_pde.eval.protocol.score_test`, after every choice is made.

Methods (``ssl_pde.eval.protocol.METHODS``):

- ``floor``: the constant minimising each metric on the labelled set (:func:`ssl_pde.metrics.best_constant`);
- ``ssl_linear``: ridge regression on the frozen representation, strength chosen on valid;
- ``ssl_mlp``: a 2-layer MLP head on the frozen, standardised representation (full-batch AdamW), learning
  rate and epochs (early stopping) chosen on valid;
- ``random_init``: ridge on the representation of the same architecture left at its random initialisation
  (the control: what the architecture alone gives);
- ``ssl_finetune``: the pretrained encoder + a linear head trained end to end;
- ``supervised``: the same architecture + head from a fresh initialisation, trained alike.

Targets are regressed in log space when ``log_target`` (scale parameters such as the viscosity); every
prediction is clamped to the labelled range in that space (widened by ``clamp_margin`` labelled widths at each
end, 0 by default: :func:`clamp_range`; the extrapolation transfer, :mod:`ssl_pde.eval.transfer`, widens it for
every method alike) and scored on the parameter itself.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.eval.data import Split
from ssl_pde.eval.train import Search, search
from ssl_pde.metrics import REGRESSION_METRICS, ridge_fit_predict

Tensor = torch.Tensor


@dataclass
class Fitted:
    """A fitted method: ``predict(split) -> (N,) float64`` parameter predictions, its choices, and the trained
    network of the end-to-end methods (None for the others)."""

    predict: Callable[[Split], Tensor]
    choice: dict[str, Any]
    model: nn.Module | None = None


def to_target(y: Tensor, log_target: bool) -> Tensor:
    return torch.log(y.double()) if log_target else y.double()


def from_target(z: Tensor, log_target: bool) -> Tensor:
    return torch.exp(z) if log_target else z


def clamp_range(z: Tensor, margin: float = 0.0) -> tuple[Tensor, Tensor]:
    """The prediction clamp ``(lo, hi)`` of labelled targets ``z`` (n,) in target space: their range, widened by
    ``margin`` times its width at each end (``margin`` 0: the range itself, bit for bit)."""
    lo, hi = z.min(), z.max()
    if margin > 0:
        w = hi - lo
        lo, hi = lo - margin * w, hi + margin * w
    return lo, hi


def valid_loss(metric: str) -> Callable[[Tensor, Tensor], float]:
    """The selection score of ``metric`` as a loss (lower is better: R^2 is negated)."""
    fn, lower = REGRESSION_METRICS[metric]
    return lambda p, y: float(fn(p, y)) if lower else -float(fn(p, y))


def _as_loss(metric: str) -> str:
    """How a choice's ``valid`` score reads: the metric, or its negative for a higher-is-better one."""
    return metric if REGRESSION_METRICS[metric][1] else f"-{metric}"


def crop_mean(fn: Callable[[Tensor], Tensor], views: Any, s: Split, device: torch.device, batch: int) -> Tensor:
    """``fn`` of the deterministic evaluation inputs of ``s``, averaged over the views' evaluation crops
    (``views.eval_views``: one crop unless ``eval_crops`` tiles the trajectory), in batches; (N, ...) on the CPU."""
    out = []
    for i in range(0, len(s), batch):
        crops = eval_crops(views, *views.inputs(s.batch(slice(i, i + batch), device)))
        out.append(torch.stack([fn(v) for v in crops]).mean(0).cpu())
    return torch.cat(out)


@torch.no_grad()
def embed(encoder: nn.Module, views: Any, s: Split, device: torch.device, batch: int = 256) -> Tensor:
    """Representations (N, D) float32 of the deterministic evaluation crops (their mean over several crops), the
    encoder in eval mode."""
    encoder.eval()
    return crop_mean(lambda v: encoder(v).float(), views, s, device, batch)


class Embedder:
    """Frozen representations of splits, computed once per (split) and cached."""

    def __init__(self, encoder: nn.Module, views: Any, device: torch.device) -> None:
        self.encoder, self.views, self.device = encoder, views, device
        self._cache: dict[int, tuple[Split, Tensor]] = {}

    def __call__(self, s: Split) -> Tensor:
        hit = self._cache.get(id(s))
        if hit is None or hit[0] is not s:
            hit = (s, embed(self.encoder, self.views, s, self.device))
            self._cache[id(s)] = hit
        return hit[1]


def ridge_select(
    f_lab: Tensor,
    z_lab: Tensor,
    f_val: Tensor,
    y_val: Tensor,
    lambdas: Sequence[float],
    log_target: bool,
    metric: str,
    clamp_margin: float = 0.0,
) -> tuple[float, dict[float, float]]:
    """The ridge strength whose fit on (``f_lab`` (n, D), ``z_lab`` (n,) target space) scores best on the valid
    ``metric`` of ``y_val`` (m,) from ``f_val`` (m, D); returns it and every strength's valid score. Predictions
    are clamped to :func:`clamp_range` of ``z_lab`` with ``clamp_margin``."""
    lo, hi = clamp_range(z_lab, clamp_margin)
    loss = valid_loss(metric)
    scores = {}
    for lam in lambdas:
        p = from_target(ridge_fit_predict(f_lab, z_lab, f_val, lam).squeeze(-1).clamp(lo, hi), log_target)
        scores[float(lam)] = loss(p, y_val)
    return min(scores, key=scores.__getitem__), scores


def fit_ridge(
    features: Callable[[Split], Tensor],
    lab: Split,
    valid: Split,
    lambdas: Sequence[float],
    log_target: bool,
    metric: str,
    clamp_margin: float = 0.0,
) -> Fitted:
    """Ridge from ``features(split)`` (N, D) to the (log) parameter; the strength with the best valid
    ``metric`` is kept. Predictions are clamped to the labelled range in target space (widened by
    ``clamp_margin``: :func:`clamp_range`)."""
    f_lab = features(lab)
    z = to_target(lab.y, log_target)
    lo, hi = clamp_range(z, clamp_margin)
    lam, scores = ridge_select(
        f_lab, z, features(valid), valid.y, lambdas, log_target=log_target, metric=metric, clamp_margin=clamp_margin
    )

    def predict(s: Split) -> Tensor:
        return from_target(ridge_fit_predict(f_lab, z, features(s), lam).squeeze(-1).clamp(lo, hi), log_target)

    return Fitted(
        predict, {"lambda": lam, "valid": scores[lam], "valid_metric": _as_loss(metric), "candidates": scores}
    )


def fit_mlp(
    features: Callable[[Split], Tensor],
    lab: Split,
    valid: Split,
    spec: Search,
    hidden: int,
    log_target: bool,
    metric: str,
    seed: int,
    clamp_margin: float = 0.0,
) -> Fitted:
    """A 2-layer MLP (GELU) on standardised features and target, full-batch AdamW; ``spec.max_steps`` epochs
    at most, learning rate and stopping epoch chosen on valid; predictions clamped as :func:`fit_ridge`'s."""
    f_lab, f_val = features(lab), features(valid)
    mu, sd = f_lab.mean(0), f_lab.std(0).clamp_min(1e-6)
    a, b = ((f_lab - mu) / sd).float(), ((f_val - mu) / sd).float()
    z = to_target(lab.y, log_target)
    zm, zs = z.mean(), z.std().clamp_min(1e-12)
    lo, hi = clamp_range(z, clamp_margin)
    t = ((z - zm) / zs).float()
    loss = valid_loss(metric)

    def decode(out: Tensor) -> Tensor:
        return from_target((out.squeeze(-1).double() * zs + zm).clamp(lo, hi), log_target)

    def build(cand: dict[str, Any]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(a.shape[1], hidden), nn.GELU(), nn.Linear(hidden, 1))
        return net, lambda _: ((net(a).squeeze(-1) - t) ** 2).mean(), lambda: loss(decode(net(b)), valid.y)

    net, record = search(build, spec)
    record["valid_metric"] = _as_loss(metric)

    @torch.no_grad()
    def predict(s: Split) -> Tensor:
        return decode(net(((features(s) - mu) / sd).float()))

    return Fitted(predict, record)


class Regressor(nn.Module):
    """An encoder and a linear head on the standardised (log) target: (B, C, ...) -> (B,) standardised."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, 1)

    def forward(self, v: Tensor) -> Tensor:
        return self.head(self.encoder(v)).squeeze(-1)


@torch.no_grad()
def predict_network(model: Regressor, views: Any, s: Split, device: torch.device, batch: int = 256) -> Tensor:
    """(N,) float64 standardised predictions from the deterministic evaluation crops (the mean of the predictions
    over several crops: with the linear head, the head of the mean representation)."""
    model.eval()
    return crop_mean(lambda v: model(v).double(), views, s, device, batch)


TRAIN_INPUTS = ("crops", "lie", "eval")
"""Training inputs of the end-to-end methods: ``crops`` (random crops anywhere in the trajectory), ``lie``
(random crops transformed by the symmetry views), ``eval`` (the deterministic evaluation inputs themselves:
the task's own input distribution, e.g. NS's first frames)."""


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Callable[[], Iterable[Tensor]]) -> None:
    """Re-estimate every BatchNorm's running statistics as the plain average over ``batches()`` (inputs
    (B, C, ...) each), the model in train mode without gradients; the model is left in eval mode.

    A network trained with a high learning rate carries running statistics that lag behind its weights (an
    exponential average over past steps' weights); in eval mode its predictions then drift far from what it
    learned (on NS a network from scratch sat at a constant). Re-estimating them under the final weights on
    the network's own training inputs ("precise BN") removes the lag without changing what the statistics
    describe, and reads no valid or test data. Models without BatchNorm are left unchanged.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        momenta = [m.momentum for m in bns]
        try:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches
            model.train()
            for v in batches():
                model(v)
        finally:
            for m, mom in zip(bns, momenta, strict=True):
                m.momentum = mom
            model.eval()
    model.eval()


def eval_crops(views: Any, *args: Tensor) -> list[Tensor]:
    """The evaluation inputs of one batch: every crop of the views' ``eval_grid`` (one unless ``eval_crops``)."""
    return views.eval_views(*args) if hasattr(views, "eval_views") else [views.eval_view(*args)]


def random_eval_crop(views: Any, args: tuple[Tensor, ...], gen: torch.Generator) -> Tensor:
    """(B, C, ...): for each trajectory one of its evaluation crops, drawn from ``gen`` (the training input
    ``eval`` under several evaluation crops: the network trains on the inputs it is scored on)."""
    crops = eval_crops(views, *args)
    if len(crops) == 1:
        return crops[0]
    pick = torch.randint(len(crops), (crops[0].shape[0],), generator=gen, device=gen.device)
    return torch.stack(crops)[pick.to(crops[0].device), torch.arange(crops[0].shape[0], device=crops[0].device)]


def training_inputs(views: Any, kind: str, s: Split, device: torch.device, batch: int, seed: int) -> Iterator[Tensor]:
    """One pass over ``s`` of the training inputs ``kind`` (:data:`TRAIN_INPUTS`): ``eval`` the deterministic
    evaluation inputs (every evaluation crop, one batch per crop), ``crops``/``lie`` random views drawn from a
    generator seeded with ``seed`` (the same views at every call). The pass is cut into ``ceil(len(s) / batch)``
    batches of near-equal size: each counts alike in :func:`recalibrate_batchnorm`'s average, and with
    ``batch >= 3`` none holds a single trajectory (which BatchNorm cannot normalise)."""
    train_views = views if kind == "lie" else views.without_symmetries()
    gen = torch.Generator(device=device).manual_seed(seed)
    for idx in torch.arange(len(s)).tensor_split(max(1, math.ceil(len(s) / batch))):
        b = train_views.inputs(s.batch(idx, device))
        if kind == "eval":
            yield from eval_crops(views, *b)
        else:
            yield train_views.view(*b, gen)


PROBE_RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
"""Ridge strengths of :func:`probe_head`, relative to the mean eigenvalue of the centred feature Gram matrix."""


@torch.no_grad()
def probe_head(model: Regressor, inputs: Tensor | None, target: Tensor, features: Tensor | None = None) -> float:
    """Set ``model.head`` to the ridge regression of ``target`` on ``model.encoder``'s features of ``inputs``.

    The "linear probe, then fine-tune" start: fine-tuning then begins from a head that already reads the
    pretrained features instead of a random one. The ridge strength is chosen by exact leave-one-out error on
    the labelled set itself (no valid data), from :data:`PROBE_RIDGE_GRID` times the mean eigenvalue of the
    centred Gram matrix. The encoder is run in eval mode.

    Args:
        model: encoder + linear head; the head is overwritten in place.
        inputs: (N, C, ...) the labelled trajectories' evaluation inputs.
        target: (N,) standardised targets.
        features: (N, D) the encoder's features of the labelled trajectories instead of ``inputs`` (e.g. averaged
            over several evaluation crops, :func:`embed`).

    Returns:
        The chosen relative ridge strength.
    """
    model.eval()
    f = (model.encoder(inputs) if features is None else features).double()  # (N, D)
    y = target.double().to(f.device)
    fm, ym = f.mean(0), y.mean()
    fc, yc = f - fm, y - ym
    u, sv, _ = torch.linalg.svd(fc, full_matrices=False)  # fc = U diag(sv) V^T
    scale = float((sv**2).sum()) / f.shape[1] or 1.0
    uy = u.T @ yc
    best = (math.inf, PROBE_RIDGE_GRID[0])
    for rel in PROBE_RIDGE_GRID:
        shrink = sv**2 / (sv**2 + rel * scale)  # (K,)
        fit = u @ (shrink * uy)
        h = (u**2 * shrink).sum(1) + 1.0 / len(y)  # leverages of ridge + intercept
        loo = float((((yc - fit) / (1 - h).clamp_min(1e-12)) ** 2).mean())
        if loo < best[0]:
            best = (loo, rel)
    rel = best[1]
    w = torch.linalg.solve(fc.T @ fc + rel * scale * torch.eye(f.shape[1], dtype=f.dtype, device=f.device), fc.T @ yc)
    model.head.weight.copy_(w.to(model.head.weight)[None])
    model.head.bias.copy_((ym - fm @ w).to(model.head.bias).reshape(1))
    return rel


def fit_network(
    init: Callable[[], nn.Module],
    views: Any,
    lab: Split,
    valid: Split,
    spec: Search,
    log_target: bool,
    metric: str,
    seed: int,
    device: torch.device,
    recalibrate_bn: bool = True,
    clamp_margin: float = 0.0,
) -> Fitted:
    """Train ``init()`` (a fresh or a pretrained encoder) + a linear head end to end on the labelled set.

    One run per candidate of ``spec`` (learning rate x training inputs, :data:`TRAIN_INPUTS`), MSE on the
    standardised (log) target, early stopping on the valid ``metric``; the best candidate on valid is kept.
    With ``recalibrate_bn``, before every valid score the BatchNorm statistics are re-estimated under the
    current weights on one pass of the labelled set's training inputs (:func:`recalibrate_batchnorm`).
    Predictions are clamped as :func:`fit_ridge`'s (``clamp_margin``)."""
    zt, decode = network_target(lab, log_target, clamp_margin)
    zt = zt.to(device)
    loss = valid_loss(metric)
    n = len(lab)

    def build(cand: dict[str, Any]):
        torch.manual_seed(seed)
        model = Regressor(init()).to(device)
        model.requires_grad_(True)
        if spec.head_init == "probe":
            probe_head(model, None, zt, features=embed(model.encoder, views, lab, device).to(device))
        kind = cand["views"]
        train_views = views if kind == "lie" else views.without_symmetries()
        gen = torch.Generator(device=device).manual_seed(seed)
        rng = np.random.default_rng(seed)
        bsz = min(spec.batch, n)

        def loss_fn(_: int) -> Tensor:
            idx = torch.as_tensor(rng.choice(n, bsz, replace=False))
            b = train_views.inputs(lab.batch(idx, device))
            v = random_eval_crop(views, b, gen) if kind == "eval" else train_views.view(*b, gen)
            return ((model(v) - zt[idx.to(device)]) ** 2).mean()

        def valid_fn() -> float:
            if recalibrate_bn:
                recalibrate_batchnorm(model, lambda: training_inputs(views, kind, lab, device, bsz, seed + 1))
            return loss(decode(predict_network(model, views, valid, device)), valid.y)

        return model, loss_fn, valid_fn

    model, record = search(build, spec)
    record["valid_metric"] = _as_loss(metric)
    model.requires_grad_(False)
    return Fitted(lambda s: decode(predict_network(model, views, s, device)), record, model)


def network_target(lab: Split, log_target: bool, clamp_margin: float = 0.0) -> tuple[Tensor, Callable]:
    """An end-to-end network's target coding on the labelled set: the (N,) float32 standardised (log) targets it
    trains on, and ``decode`` from its (B,) outputs to parameters, clamped as :func:`fit_ridge`'s."""
    z = to_target(lab.y, log_target)
    zm, zs = z.mean(), z.std().clamp_min(1e-12)
    lo, hi = clamp_range(z, clamp_margin)

    def decode(out: Tensor) -> Tensor:
        return from_target((out * zs + zm).clamp(lo, hi), log_target)

    return ((z - zm) / zs).float(), decode


def restore_network(
    init: Callable[[], nn.Module],
    state: dict[str, Tensor],
    record: dict[str, Any],
    views: Any,
    lab: Split,
    log_target: bool,
    device: torch.device,
    clamp_margin: float = 0.0,
) -> Fitted:
    """The :class:`Fitted` of an end-to-end network trained earlier by :func:`fit_network` on the same labelled
    set: ``Regressor(init())`` given the stored weights and BatchNorm statistics ``state``, predicting exactly
    as the network :func:`fit_network` returned, with its stored choices ``record``."""
    model = Regressor(init()).to(device)
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    _, decode = network_target(lab, log_target, clamp_margin)
    return Fitted(lambda s: decode(predict_network(model, views, s, device)), record, model)


def pretrained_copy(encoder: nn.Module) -> Callable[[], nn.Module]:
    """A builder of trainable copies of a (frozen) pretrained encoder, for fine-tuning."""
    return lambda: copy.deepcopy(encoder).requires_grad_(True)


def metric_names(*ys: Tensor) -> tuple[str, ...]:
    """The reported metrics: NMSE, relative L1, MSE, R^2, and the log-MSE when every target is positive."""
    base = ("nmse", "rel_l1", "mse", "r2")
    return (*base, "log_mse") if all(bool((y > 0).all()) for y in ys) else base


def finite(x: float) -> float:
    """``x``, or ``nan`` for infinities (JSON-safe)."""
    return x if math.isfinite(x) else float("nan")
