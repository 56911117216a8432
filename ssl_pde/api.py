"""The Python API for using a pretrained encoder outside the command lines: load an export, embed raw arrays.

    from ssl_pde.api import PretrainedEncoder
    enc = PretrainedEncoder.load("runs/burgers/encoder.pt")        # weights-only, allow-listed classes
    z = enc.embed(u, t, x, length=2 * np.pi)                        # (N, 512) float32 torch tensor

The arrays are those of a shard (``ssl-pde-generate``) or any other source on a regular grid: numpy arrays or
torch tensors. Each trajectory goes through the export's deterministic evaluation view, the input the encoder
was evaluated on by ``ssl-pde-eval`` (the central time window of ``crop_t`` frames, the first ``crop_x``
points; for 2D Navier-Stokes the window ``eval_window`` names), then the frozen encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.core.errors import UserError
from ssl_pde.eval.setup import build_views, load_encoder

ArrayLike = np.ndarray | torch.Tensor


@dataclass
class PretrainedEncoder:
    """A frozen encoder with its evaluation view.

    Attributes:
        encoder: the network, in eval mode, gradients off.
        views: the export's view builder (its ``eval_view`` makes the encoder's input).
        pde: the PDE it was pretrained on.
        probe_param: the parameter its online probe regressed (e.g. ``nu``).
        device: where the encoder runs.
    """

    encoder: nn.Module
    views: Any
    pde: str
    probe_param: str | None
    device: torch.device

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu", eval_window: str | None = None):
        """Load an ``encoder.pt`` written by ``ssl-pde-pretrain``; nothing in it is executed (see
        :func:`ssl_pde.eval.setup.load_encoder`). ``eval_window`` overrides the NS evaluation window."""
        dev = torch.device(device)
        enc, exp, _ = load_encoder(Path(path), dev)
        return cls(enc, build_views(exp, Path(path), eval_window), exp["pde"], exp.get("probe_param"), dev)

    @torch.no_grad()
    def embed(
        self,
        u: ArrayLike,
        t: ArrayLike,
        x: ArrayLike,
        y: ArrayLike | None = None,
        length: float | ArrayLike | None = None,
        batch_size: int = 256,
    ) -> torch.Tensor:
        """Representations of trajectories.

        Args:
            u: 1D data (N, T, X), or (N, T, C, X) whose first field is used; 2D Navier-Stokes data
                (N, T, 3, X, Y) with the fields smoke, vx, vy.
            t: (T,) or (N, T) frame times.
            x: (X,) or (N, X) grid points (1D: periodic, ``x[0]`` the origin; 2D: cell centres).
            y: (Y,) or (N, Y) cell centres, 2D only.
            length: the 1D periodic domain length, a number or (N,); default ``X * (x[1] - x[0])``.
            batch_size: trajectories per forward pass.

        Returns:
            (N, D) float32 on the CPU.

        Raises:
            UserError: arrays whose shapes do not fit the encoder (too few frames or points for its crop, a
                2D encoder given 1D data or the reverse, mismatched sizes), or an external dataset's encoder.
        """
        if self.views.__class__.__name__ == "GenericViews":
            raise UserError(f"{self.pde} encoders (external datasets) are not embedded by the API yet")
        two_d = self.views.__class__.__name__ == "NSViews"
        u = _tensor(u, torch.float32)
        if two_d and (u.dim() != 5 or y is None):
            raise UserError(f"a {self.pde} encoder embeds (N, T, 3, X, Y) arrays with y given, got {tuple(u.shape)}")
        if not two_d:
            if u.dim() == 4:
                u = u[:, :, :1]
            elif u.dim() == 3:
                u = u[:, :, None]
            else:
                raise UserError(f"a {self.pde} encoder embeds (N, T, X) or (N, T, C, X) arrays, got {tuple(u.shape)}")
        n, nt = u.shape[0], u.shape[1]
        t_ = _rows(_tensor(t, torch.float64), n, nt, "t")
        x_ = _rows(_tensor(x, torch.float64), n, u.shape[3], "x")
        batch: dict[str, torch.Tensor] = {"u": u, "t": t_, "x": x_}
        if two_d:
            batch["y"] = _rows(_tensor(y, torch.float64), n, u.shape[4], "y")
        else:
            if length is None:
                length = (x_[:, 1] - x_[:, 0]) * u.shape[3]
            batch["length"] = _tensor(length, torch.float64).expand(n).clone()
        self.views.check_data(tuple(u.shape[1:]))
        out = []
        for i in range(0, n, batch_size):
            part = {k: v[i : i + batch_size].to(self.device) for k, v in batch.items()}
            out.append(self.encoder(self.views.eval_view(*self.views.inputs(part))).float().cpu())
        return torch.cat(out)


def _tensor(a: ArrayLike | float, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(dtype)


def _rows(a: torch.Tensor, n: int, size: int, name: str) -> torch.Tensor:
    """(size,) or (n, size) -> (n, size)."""
    if tuple(a.shape) not in ((size,), (n, size)):
        raise UserError(f"{name} has shape {tuple(a.shape)}, expected ({size},) or ({n}, {size})")
    return a.expand(n, -1).contiguous()
