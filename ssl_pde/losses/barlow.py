"""Barlow Twins loss (Zbontar, Jing, Misra, LeCun & Deny, 2021).

For two embedding batches ``z1, z2`` of shape (N, D) (the two views of the same N samples):

- each branch is standardised per dimension over the batch: ``zn = (z - mean_n z) / sqrt(var_n z + eps)`` with the
  **biased** (1/N) variance, as the reference code's ``BatchNorm1d(affine=False)`` in training mode does;
- the cross-correlation matrix is ``C = z1n^T z2n / N`` (D, D). With the biased variance and ``eps = 0``, ``C`` is
  exactly the matrix of Pearson correlations between the columns of z1 and z2 (``C_ii = 1`` for identical views,
  ``|C_ij| <= 1``); the unbiased (N - 1) variance with the 1/N normalisation would put the diagonal's optimum at
  ``(N - 1) / N`` instead of 1, a batch-size-dependent bias of the invariance term;
- ``loss = sum_i (1 - C_ii)^2 + off_diag_coeff * sum_{i != j} C_ij^2`` (the paper's lambda, 5e-3 by default).

The whole loss is computed in (at least) float32 with autocast disabled, whatever the input dtype: the
standardisation's ``sqrt`` and the (D, D) matrix product lose too much precision in bf16 / fp16.

Distributed training: with ``gather=True`` both branches are all-gathered from every rank with gradients
(:func:`~ssl_pde.losses.vicreg.gather_with_grad`) before standardising, so every rank computes the single-process
loss of the concatenated global batch (the reference code reaches the same matrix with a synchronised batch norm
and an all-reduce of ``C``).
"""

from __future__ import annotations

import torch

from ssl_pde.losses.vicreg import gather_with_grad

Tensor = torch.Tensor


def _check_pair(z1: Tensor, z2: Tensor) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (N, D), got shapes {tuple(z1.shape)} and {tuple(z2.shape)}")


def _check_batch(z: Tensor) -> None:
    if z.shape[0] < 2:
        raise ValueError(f"Barlow Twins needs a batch of at least 2 samples (standardised over N), got N={z.shape[0]}")


def standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-dimension batch standardisation: ``(z - mean) / sqrt(var + eps)``, biased (1/N) variance over N.

    Computed in (at least) float32 with autocast disabled.

    Args:
        z: (N, D) embeddings, N >= 2.
        eps: added to the variance inside the square root (``BatchNorm1d``'s default).

    Returns:
        (N, D) standardised embeddings, at least float32.

    Raises:
        ValueError: z not 2-D or N < 2.
    """
    if z.ndim != 2:
        raise ValueError(f"Barlow Twins expects embeddings of shape (N, D), got shape {tuple(z.shape)}")
    _check_batch(z)
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.to(torch.promote_types(z.dtype, torch.float32))
        zc = z - z.mean(dim=0)
        return zc / torch.sqrt(zc.pow(2).mean(dim=0) + eps)


def cross_correlation(z1: Tensor, z2: Tensor, eps: float = 1e-5) -> Tensor:
    """Cross-correlation matrix of two batches: ``C = standardize(z1)^T standardize(z2) / N``.

    Args:
        z1: (N, D) embeddings of the first view.
        z2: (N, D) embeddings of the second view (row n: same sample as row n of z1).
        eps: added to the biased variance inside the square root of the standardisation.

    Returns:
        (D, D) matrix, at least float32; ``C[i, j]`` correlates dimension i of z1 with dimension j of z2.

    Raises:
        ValueError: z1, z2 not 2-D of the same shape, or N < 2.
    """
    _check_pair(z1, z2)
    z1n, z2n = standardize(z1, eps), standardize(z2, eps)
    with torch.autocast(device_type=z1n.device.type, enabled=False):
        return z1n.T @ z2n / z1n.shape[0]


def barlow_twins_loss(
    z1: Tensor,
    z2: Tensor,
    off_diag_coeff: float = 5e-3,
    eps: float = 1e-5,
    gather: bool = True,
) -> dict[str, Tensor]:
    """Barlow Twins loss of two embedding batches::

        loss = sum_i (1 - C_ii)^2 + off_diag_coeff * sum_{i != j} C_ij^2,   C = z1n^T z2n / N

    with ``z1n, z2n`` the per-dimension batch-standardised branches (biased variance, :func:`standardize`).

    With ``gather=True`` and an initialised process group (world size > 1), both branches are first all-gathered
    from every rank with gradients and ``C`` is the global batch's, so every rank returns the single-process loss of
    the concatenated batch and DDP's gradient averaging yields its exact gradient. Otherwise the loss is that of the
    local batch.

    Args:
        z1: (N, D) embeddings of the first view.
        z2: (N, D) embeddings of the second view (row n: same sample as row n of z1).
        off_diag_coeff: weight lambda of the redundancy-reduction (off-diagonal) term; 5e-3 in the paper.
        eps: added to the biased variance inside the square root of the standardisation.
        gather: gather both branches across ranks before computing the loss.

    Returns:
        Dict of () scalars, at least float32: ``loss`` (weighted total), ``on_diag`` (``sum_i (1 - C_ii)^2``) and
        ``off_diag`` (``sum_{i != j} C_ij^2``, unweighted).

    Raises:
        ValueError: z1, z2 not 2-D of the same shape, or fewer than 2 samples in the (gathered) batch.
    """
    _check_pair(z1, z2)
    if gather:
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    c = cross_correlation(z1, z2, eps)
    with torch.autocast(device_type=c.device.type, enabled=False):
        off = ~torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
        on_diag = (1 - c.diagonal()).pow(2).sum()
        off_diag = c[off].pow(2).sum()  # masked, not sum(C^2) - sum(C_ii^2): no cancellation against the ~D diagonal
        loss = on_diag + off_diag_coeff * off_diag
    return {"loss": loss, "on_diag": on_diag, "off_diag": off_diag}
