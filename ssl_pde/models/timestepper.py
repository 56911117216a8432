"""Neural time-steppers for 1D and 2D PDEs with FiLM conditioning (none / a parameter / an SSL representation).

Two architectures share one conditioning path, so variants differ only in the condition they receive:

- ``CNNStepper`` follows the LPSDA residual CNN: a pointwise lift of the ``history`` input frames, 8 residual
  circular Conv1d layers (kernels 3, 5, 5, 7, 7, 9, 9, 15) with ELU, and a pointwise projection to the
  ``future`` next frames.
- ``UNetStepper`` (2D data, e.g. Navier–Stokes): a PDEArena-style U-Net over frames x fields as channels.
- ``FNOStepper`` is an FNO1d (Li et al. 2021): a pointwise lift, ``layers`` Fourier layers (a complex
  weight on the lowest ``modes`` modes plus a pointwise convolution, GELU), and a pointwise projection.

Conditioning (:class:`FiLM`): a vector c (B, cond_dim) -> per-layer (scale, shift), applied to each hidden
layer's update as ``z <- z * (1 + scale) + shift``; optionally through a ``cond_hidden``-wide bottleneck
(Linear -> GELU -> Linear). The last linear map is zero-initialised, so with the same seed every variant
starts as the same function. With ``cond_dim = 0`` the model is unconditioned. Both steppers predict the
change from the last input frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ssl_pde.core.errors import UserError

Tensor = torch.Tensor
KERNELS = (3, 5, 5, 7, 7, 9, 9, 15)


class FiLM(nn.Module):
    """c (B, cond_dim) -> (B, layers, 2, width, 1) scales and shifts, zero at initialisation.

    Args:
        cond_dim: size of the condition (> 0).
        layers, width: how many hidden layers are modulated and their channels.
        hidden: width of an optional bottleneck (0: one linear map).
    """

    def __init__(self, cond_dim: int, layers: int, width: int, hidden: int = 0) -> None:
        super().__init__()
        self.layers, self.width = layers, width
        last = nn.Linear(hidden or cond_dim, 2 * width * layers)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(nn.Linear(cond_dim, hidden), nn.GELU(), last) if hidden else last

    def forward(self, c: Tensor) -> Tensor:
        return self.net(c).view(c.shape[0], self.layers, 2, self.width, 1)


def _grid(u: Tensor) -> Tensor:
    """The normalised grid coordinate x / L as an extra channel: (B, 1, X)."""
    b, _, nx = u.shape
    return torch.linspace(0, 1, nx, device=u.device, dtype=u.dtype).expand(b, 1, nx)


class _Stepper(nn.Module, ABC):
    """Shared lift / FiLM / projection around an architecture's hidden layers."""

    n_layers: int

    def __init__(self, history: int, future: int, width: int, cond_dim: int, cond_hidden: int) -> None:
        super().__init__()
        self.history, self.future = history, future
        self.lift = nn.Conv1d(history + 1, width, 1)  # + the grid coordinate
        self.out = nn.Sequential(nn.Conv1d(width, width, 1), nn.GELU(), nn.Conv1d(width, future, 1))
        self._film_args = (cond_dim, width, cond_hidden)

    def _build_film(self) -> None:
        """Called by subclasses after their layers, so the zero-initialised FiLM is built last."""
        cond_dim, width, hidden = self._film_args
        self.film = FiLM(cond_dim, self.n_layers, width, hidden) if cond_dim > 0 else None

    @abstractmethod
    def layer(self, i: int, h: Tensor) -> Tensor:
        """The update z of hidden layer ``i`` from h (B, width, X), before FiLM."""

    @abstractmethod
    def activation(self, h: Tensor, z: Tensor) -> Tensor:
        """The next hidden state from h and the (modulated) update z."""

    def forward(self, u: Tensor, cond: Tensor | None = None) -> Tensor:
        """u: (B, history, X), cond: (B, cond_dim) or None -> the next frames (B, future, X)."""
        if (self.film is None) != (cond is None):
            raise ValueError("a conditioned stepper needs cond, an unconditioned one takes none")
        h = self.lift(torch.cat([u, _grid(u)], dim=1))
        films = None if self.film is None else self.film(cond)
        for i in range(self.n_layers):
            z = self.layer(i, h)
            if films is not None:
                z = z * (1 + films[:, i, 0]) + films[:, i, 1]
            h = self.activation(h, z)
        return u[:, -1:] + self.out(h)


class CNNStepper(_Stepper):
    """LPSDA residual CNN: u (B, history, X), c (B, cond_dim) -> (B, future, X).

    Args:
        history, future: input and output window lengths (frames).
        width: channels of the residual layers.
        cond_dim: size of the conditioning vector (0: no conditioning).
        cond_hidden: FiLM bottleneck width (0: a single linear map).
    """

    n_layers = len(KERNELS)

    def __init__(
        self, history: int = 20, future: int = 20, width: int = 64, cond_dim: int = 0, cond_hidden: int = 0
    ) -> None:
        super().__init__(history, future, width, cond_dim, cond_hidden)
        self.convs = nn.ModuleList(nn.Conv1d(width, width, k, padding=k // 2, padding_mode="circular") for k in KERNELS)
        self.act = nn.ELU()
        self._build_film()

    def layer(self, i: int, h: Tensor) -> Tensor:
        return self.convs[i](h)

    def activation(self, h: Tensor, z: Tensor) -> Tensor:
        return self.act(h + z)  # residual


class SpectralConv1d(nn.Module):
    """h (B, C, X) -> irfft(W · rfft(h)[..., :modes]) (B, C, X), W complex (C, C, modes)."""

    def __init__(self, width: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (width * width)
        self.weight = nn.Parameter(scale * torch.randn(width, width, modes, dtype=torch.cfloat))

    def forward(self, h: Tensor) -> Tensor:
        nx = h.shape[-1]
        m = min(self.modes, nx // 2 + 1)
        hf = torch.fft.rfft(h.float(), dim=-1)
        out = torch.zeros(h.shape[0], self.weight.shape[1], nx // 2 + 1, dtype=hf.dtype, device=h.device)
        out[..., :m] = torch.einsum("bix,iox->box", hf[..., :m], self.weight[..., :m])
        return torch.fft.irfft(out, n=nx, dim=-1).to(h.dtype)


class FNOStepper(_Stepper):
    """FNO1d: u (B, history, X), c (B, cond_dim) -> (B, future, X).

    Args:
        history, future: input and output window lengths (frames).
        width: hidden channels.
        cond_dim: size of the conditioning vector (0: no conditioning).
        cond_hidden: FiLM bottleneck width (0: a single linear map).
        modes: retained Fourier modes per layer.
        layers: Fourier layers.
    """

    def __init__(
        self,
        history: int = 20,
        future: int = 20,
        width: int = 64,
        cond_dim: int = 0,
        cond_hidden: int = 0,
        modes: int = 24,
        layers: int = 4,
    ) -> None:
        super().__init__(history, future, width, cond_dim, cond_hidden)
        self.n_layers = layers
        self.spectral = nn.ModuleList(SpectralConv1d(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv1d(width, width, 1) for _ in range(layers))
        self.act = nn.GELU()
        self._build_film()

    def layer(self, i: int, h: Tensor) -> Tensor:
        return self.spectral[i](h) + self.pointwise[i](h)

    def activation(self, h: Tensor, z: Tensor) -> Tensor:
        return self.act(z)  # FNO layers replace h (no skip inside a layer beyond the pointwise path)


class _ResBlock2d(nn.Module):
    """GroupNorm -> GELU -> conv -> FiLM -> GroupNorm -> GELU -> conv, plus a (1x1) skip: (B, cin, X, Y) ->
    (B, cout, X, Y). Zero padding: the box is closed, not periodic."""

    def __init__(self, cin: int, cout: int, groups: int = 8) -> None:
        super().__init__()
        self.n1, self.n2 = nn.GroupNorm(min(groups, cin), cin), nn.GroupNorm(min(groups, cout), cout)
        self.c1, self.c2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.act = nn.GELU()

    def forward(self, h: Tensor, film: Tensor | None) -> Tensor:
        z = self.c1(self.act(self.n1(h)))
        if film is not None:  # (B, 2, cout, 1, 1)
            z = z * (1 + film[:, 0]) + film[:, 1]
        return self.skip(h) + self.c2(self.act(self.n2(z)))


class UNetStepper(nn.Module):
    """A 2D U-Net stepper in the style of PDEArena's (residual blocks with GroupNorm and GELU, two levels of
    downsampling, skip connections), FiLM-conditioned in every block through the same zero-initialised
    path as the 1D steppers.

    Maps u (B, history, C, X, Y) and c (B, cond_dim) to the next frames (B, future, C, X, Y); frames and
    fields are stacked as channels, with the normalised cell-centre coordinates as two more. X and Y must
    be divisible by 4. Predicts the change from the last input frame.

    Args:
        history, future: input and output window lengths (frames).
        width: channels at full resolution (doubled at each of the two coarser levels).
        cond_dim: size of the conditioning vector (0: no conditioning).
        cond_hidden: FiLM bottleneck width (0: a single linear map).
        fields: channels C of a frame.
    """

    def __init__(
        self,
        history: int = 4,
        future: int = 1,
        width: int = 32,
        cond_dim: int = 0,
        cond_hidden: int = 0,
        fields: int = 3,
    ) -> None:
        super().__init__()
        self.history, self.future, self.fields = history, future, fields
        w = (width, 2 * width, 4 * width)
        self.lift = nn.Conv2d(history * fields + 2, w[0], 3, padding=1)
        self.down = nn.ModuleList([_ResBlock2d(w[0], w[0]), _ResBlock2d(w[0], w[1]), _ResBlock2d(w[1], w[2])])
        self.mid = _ResBlock2d(w[2], w[2])
        self.up = nn.ModuleList([_ResBlock2d(2 * w[2], w[1]), _ResBlock2d(2 * w[1], w[0]), _ResBlock2d(2 * w[0], w[0])])
        self.pool = nn.AvgPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(w[0], future * fields, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # starts as "the next frames equal the last one"
        nn.init.zeros_(self.out.bias)
        blocks = [*self.down, self.mid, *self.up]
        widths = [b.c1.out_channels for b in blocks]
        self.films = nn.ModuleList(FiLM(cond_dim, 1, wi, cond_hidden) for wi in widths) if cond_dim > 0 else None

    def forward(self, u: Tensor, cond: Tensor | None = None) -> Tensor:
        """u: (B, history, C, X, Y), cond: (B, cond_dim) or None -> (B, future, C, X, Y)."""
        if (self.films is None) != (cond is None):
            raise ValueError("a conditioned stepper needs cond, an unconditioned one takes none")
        b, _, c, nx, ny = u.shape
        if nx % 4 or ny % 4:
            raise UserError(f"UNetStepper needs X and Y divisible by 4, got {nx} x {ny}")
        gx = torch.linspace(0, 1, nx, device=u.device, dtype=u.dtype)[:, None].expand(nx, ny)
        gy = torch.linspace(0, 1, ny, device=u.device, dtype=u.dtype)[None, :].expand(nx, ny)
        h = self.lift(torch.cat([u.reshape(b, -1, nx, ny), torch.stack([gx, gy]).expand(b, 2, nx, ny)], dim=1))
        films = [None] * 7 if self.films is None else [f(cond)[:, 0, :, :, :, None] for f in self.films]
        skips = []
        for i, blk in enumerate(self.down):
            h = blk(h, films[i])
            skips.append(h)
            if i < 2:
                h = self.pool(h)
        h = self.mid(h, films[3])
        for i, blk in enumerate(self.up):
            h = blk(torch.cat([h, skips[2 - i]], dim=1), films[4 + i])
            if i < 2:
                h = self.upsample(h)
        return u[:, -1:] + self.out(h).view(b, self.future, c, nx, ny)


STEPPERS_2D: dict[str, type[nn.Module]] = {"unet": UNetStepper}


STEPPERS: dict[str, type[nn.Module]] = {"cnn": CNNStepper, "fno": FNOStepper, "unet": UNetStepper}
"""Steppers by name: ``cnn`` and ``fno`` for 1D data (u: (B, T, X)), ``unet`` for 2D data (u: (B, T, C, X, Y))."""


def build_stepper(
    arch: str, history: int, future: int, width: int, cond_dim: int = 0, cond_hidden: int = 0, fields: int = 1
) -> nn.Module:
    """A stepper by name (``"cnn"``, ``"fno"`` or ``"unet"``; ``fields`` is used by the 2D U-Net)."""
    if arch not in STEPPERS:
        raise UserError(f"unknown stepper arch {arch!r} (available: {', '.join(STEPPERS)})")
    extra = {"fields": fields} if arch in STEPPERS_2D else {}
    return STEPPERS[arch](
        history=history, future=future, width=width, cond_dim=cond_dim, cond_hidden=cond_hidden, **extra
    )
