"""SimCLR's NT-Xent (normalised-temperature cross-entropy, an InfoNCE loss; Chen, Kornblith, Norouzi & Hinton, 2020).

For two embedding batches ``z1, z2`` of shape (N, D) (the two views of the same N samples), stacked as the 2N
anchors ``z = [z1; z2]`` and L2-normalised (``u_a = z_a / |z_a|``):

- ``s_ab = u_a . u_b / temperature``, the (2N, 2N) matrix of cosine similarities over the temperature;
- anchor a's positive is the other view of its sample (``p(a) = a + N`` for ``a < N``, ``a - N`` otherwise); every
  other anchor but itself is a negative (the self-similarity ``s_aa`` is masked out);
- ``loss = mean_a [ -s_a,p(a) + log sum_{b != a} exp(s_ab) ]``, the mean cross-entropy over all 2N anchors (both
  views take a turn as the anchor, the symmetric form of the paper).

The loss is computed in (at least) float32 with autocast disabled, whatever the input dtype: the logits are
divided by a small temperature before the exponentials.

Distributed training: with ``gather=True`` both branches are all-gathered from every rank with gradients
(:func:`~ssl_pde.losses.vicreg.gather_with_grad`), so the negatives come from the global batch and every rank
computes the single-process loss of the concatenated batch (the whole (2WN, 2WN) matrix on every rank: redundant
work, but cheap next to the encoder at the batch sizes used here, and what makes DDP's gradient averaging exact).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssl_pde.losses.vicreg import gather_with_grad

Tensor = torch.Tensor


def info_nce_loss(z1: Tensor, z2: Tensor, temperature: float = 0.1, gather: bool = True) -> dict[str, Tensor]:
    """NT-Xent / InfoNCE loss of two embedding batches (SimCLR)::

        loss = mean over the 2N anchors a of  -log( exp(s_a,p(a)) / sum_{b != a} exp(s_ab) ),
        s_ab = cos(z_a, z_b) / temperature,  z = [z1; z2],  p(a) the other view of a's sample

    With ``gather=True`` and an initialised process group (world size > 1), both branches are first all-gathered
    from every rank with gradients: the negatives are the whole global batch, every rank returns the single-process
    loss of the concatenated batch and DDP's gradient averaging yields its exact gradient. Otherwise the loss is
    that of the local batch.

    Args:
        z1: (N, D) embeddings of the first view.
        z2: (N, D) embeddings of the second view (row n: same sample as row n of z1).
        temperature: divides the cosine similarities (> 0); SimCLR's 0.1 by default.
        gather: gather both branches across ranks before computing the loss.

    Returns:
        Dict of () scalars, at least float32: ``loss``, ``pos_sim`` (mean cosine similarity of the N positive pairs)
        and ``neg_sim`` (mean cosine similarity of the 2N (2N - 2) negative pairs); the last two are diagnostics
        (collapse: both near 1).

    Raises:
        ValueError: z1, z2 not 2-D of the same shape, fewer than 2 samples in the (gathered) batch, or a
            temperature that is not positive.
    """
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (N, D), got shapes {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"the InfoNCE temperature must be positive, got {temperature}")
    if gather:
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    n = z1.shape[0]
    if n < 2:
        raise ValueError(f"InfoNCE needs a batch of at least 2 samples (negatives from the batch), got N={n}")
    with torch.autocast(device_type=z1.device.type, enabled=False):
        z = torch.cat([z1, z2])
        u = F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)  # (2N, D)
        cos = u @ u.T  # (2N, 2N)
        self_mask = torch.eye(2 * n, dtype=torch.bool, device=u.device)
        logits = (cos / temperature).masked_fill(self_mask, float("-inf"))
        idx = torch.arange(2 * n, device=u.device)
        positive = (idx + n) % (2 * n)  # (2N,) column of p(a): a + N for a < N, a - N otherwise
        loss = F.cross_entropy(logits, positive)
        with torch.no_grad():
            pos_sim = cos[idx[:n], positive[:n]].mean()
            neg_mask = ~self_mask
            neg_mask[idx, positive] = False
            neg_sim = cos[neg_mask].mean()
    return {"loss": loss, "pos_sim": pos_sim, "neg_sim": neg_sim}
