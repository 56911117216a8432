"""VICReg loss (Bardes, Ponce & LeCun, 2022), pinned to the convention of the official VICReg / SSLForPDEs code.

For two embedding batches ``z1, z2`` of shape (N, D) (the two views of the same N samples):

- invariance: ``mse(z1, z2)``, the mean over all N*D entries;
- variance (per branch): ``mean_j relu(gamma - sqrt(var_j(z) + eps))``, unbiased (N - 1) variance over the batch;
- covariance (per branch): ``sum_{i != j} C_ij^2 / D`` with ``C = z_c^T z_c / (N - 1)``, z_c the batch-centred z,
  N the actual batch size (the reference code divided by the *configured* batch size, wrong for a short last
  batch and for the gathered global batch);
- ``loss = sim_coeff * inv + std_coeff * (v(z1) + v(z2)) / 2 + cov_coeff * (c(z1) + c(z2))``: the variance
  term is averaged over the two branches, the covariance term summed (as in the reference code).

The variance and covariance terms are computed in (at least) float32, with autocast disabled, whatever the input
dtype: ``sqrt``, squared sums and the (D, D) matrix product lose too much precision in bf16 / fp16.

Distributed training: with ``gather=True``, :func:`vicreg_loss` all-gathers both branches from every rank (with
gradients, :func:`gather_with_grad`) before computing *all three* terms, so every rank computes the single-process
loss of the concatenated global batch. This matters for the variance and covariance terms, which are batch
statistics: computed per rank, they would regularise each local batch instead of the global one.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

Tensor = torch.Tensor


def _check_batch(z: Tensor) -> None:
    if z.ndim != 2:
        raise ValueError(f"VICReg expects embeddings of shape (N, D), got shape {tuple(z.shape)}")
    if z.shape[0] < 2:
        raise ValueError(f"VICReg needs a batch of at least 2 samples (variance/covariance over N), got N={z.shape[0]}")


def _at_least_float32(z: Tensor) -> Tensor:
    return z.to(torch.promote_types(z.dtype, torch.float32))


def invariance_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Invariance (similarity) term: mean squared error between the two branches.

    Args:
        z1: (N, D) embeddings of the first view.
        z2: (N, D) embeddings of the second view.

    Returns:
        () scalar, ``mean((z1 - z2)^2)`` over all N*D entries.
    """
    return F.mse_loss(z1, z2)


def variance_loss(z: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """Variance term of one branch: hinge on the per-dimension standard deviation over the batch.

    Computed in (at least) float32 with autocast disabled.

    Args:
        z: (N, D) embeddings, N >= 2.
        gamma: target standard deviation.
        eps: added to the variance inside the square root.

    Returns:
        () scalar, ``mean_j relu(gamma - sqrt(var_j + eps))`` with the unbiased (N - 1) variance ``var_j`` of
        column j.

    Raises:
        ValueError: z not 2-D or N < 2.
    """
    _check_batch(z)
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = _at_least_float32(z)
        std = torch.sqrt(z.var(dim=0, correction=1) + eps)
        return F.relu(gamma - std).mean()


def covariance_loss(z: Tensor) -> Tensor:
    """Covariance term of one branch: squared off-diagonal entries of the batch covariance, divided by D.

    Computed in (at least) float32 with autocast disabled.

    Args:
        z: (N, D) embeddings, N >= 2.

    Returns:
        () scalar, ``sum_{i != j} C_ij^2 / D`` with ``C = z_c^T z_c / (N - 1)``, ``z_c = z - mean(z, 0)`` and N the
        actual batch size ``z.shape[0]``.

    Raises:
        ValueError: z not 2-D or N < 2.
    """
    _check_batch(z)
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = _at_least_float32(z)
        n, d = z.shape
        zc = z - z.mean(dim=0)
        cov = zc.T @ zc / (n - 1)  # (D, D)
        return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / d


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 whose backward routes to each rank the gradient of its own slice.

    Gradient scaling: in data-parallel training rank k computes a loss ``L_k`` from the gathered batch, and DDP
    averages parameter gradients, i.e. it differentiates ``(1/W) sum_k L_k``. The gradient reaching rank r's local
    slice must therefore be ``sum_k dL_k/dz_r``: backward all-reduces (SUM) the incoming gradient of the gathered
    tensor over ranks and returns rank r's slice. With the gathered loss identical on every rank (``L_k = L``), the
    slice gradient is ``W dL/dz_r``, and DDP's average ``(1/W) sum_r W g_r = sum_r g_r`` is exactly the
    single-process gradient of ``L`` on the global batch (checked by ``tests/test_vicreg.py``).
    """

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:
        z = z.contiguous()
        parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, z)
        ctx.rank, ctx.n = dist.get_rank(), z.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()  # all_reduce is in place: never modify autograd's buffer
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(z: Tensor) -> Tensor:
    """All-gather ``z`` from all ranks along dim 0, with gradients flowing back to every rank's local slice.

    Without an initialised process group of world size > 1, returns ``z`` unchanged.

    Args:
        z: (n, ...) local batch; every rank must hold the same shape (``all_gather`` needs equal sizes).

    Returns:
        (W * n, ...) global batch, rank 0's slice first (``z`` itself when not distributed).
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return z
    return _GatherWithGrad.apply(z)


def vicreg_loss(
    z1: Tensor,
    z2: Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    eps: float = 1e-4,
    gather: bool = True,
) -> dict[str, Tensor]:
    """VICReg loss of two embedding batches.

    Convention (official VICReg / SSLForPDEs code): the variance term is **averaged** over the two branches, the
    covariance term **summed**::

        loss = sim_coeff * inv(z1, z2) + std_coeff * (v(z1) + v(z2)) / 2 + cov_coeff * (c(z1) + c(z2))

    With ``gather=True`` and an initialised process group (world size > 1), both branches are first all-gathered
    from every rank with gradients (:func:`gather_with_grad`) and all three terms are computed on the global batch,
    so every rank returns the single-process loss of the concatenated batch and DDP's gradient averaging yields its
    exact gradient. Otherwise the loss is that of the local batch.

    Args:
        z1: (N, D) embeddings of the first view.
        z2: (N, D) embeddings of the second view (row i: same sample as row i of z1).
        sim_coeff: weight of the invariance term.
        std_coeff: weight of the (branch-averaged) variance term.
        cov_coeff: weight of the (branch-summed) covariance term.
        eps: added to the variance inside the square root of the variance term.
        gather: gather both branches across ranks before computing the loss.

    Returns:
        Dict of () scalars: ``loss`` (weighted total), ``invariance``, ``variance`` (``(v(z1) + v(z2)) / 2``) and
        ``covariance`` (``c(z1) + c(z2)``), the last three unweighted. Variance and covariance are at least float32.

    Raises:
        ValueError: z1, z2 not 2-D of the same shape, or fewer than 2 samples in the (gathered) batch.
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (N, D), got shapes {tuple(z1.shape)} and {tuple(z2.shape)}")
    if gather:
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    _check_batch(z1)
    inv = invariance_loss(z1, z2)
    var = (variance_loss(z1, eps=eps) + variance_loss(z2, eps=eps)) / 2
    cov = covariance_loss(z1) + covariance_loss(z2)
    loss = sim_coeff * inv + std_coeff * var + cov_coeff * cov
    return {"loss": loss, "invariance": inv, "variance": var, "covariance": cov}
