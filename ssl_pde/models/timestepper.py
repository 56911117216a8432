"""Neural time-steppers for 1D PDEs with FiLM conditioning (none / a parameter / an SSL representation).

Two architectures share one conditioning path, so variants differ only in the condition they receive:

- ``CNNStepper`` follows the LPSDA residual CNN: a pointwise lift of the ``history`` input frames, 8 residual
  circular Conv1d layers (kernels 3, 5, 5, 7, 7, 9, 9, 15) with ELU, and a pointwise projection to the
  ``future`` next frames.
- ``FNOStepper`` is an FNO1d (Li et al. 2021): a pointwise lift, ``layers`` Fourier layers (a complex
  weight on the lowest ``modes`` modes plus a pointwise convolution, GELU), and a pointwise projection.

Conditioning (:class:`FiLM`): a vector c (B, cond_dim) -> per-layer (scale, shift), applied to each hidden
layer's update as ``z <- z * (1 + scale) + shift``; optionally through a ``cond_hidden``-wide bottleneck
(Linear -> GELU -> Linear). The last linear map is zero-initialised, so with the same seed every variant
starts as the same function. With ``cond_dim = 0`` the model is unconditioned. Both steppers predict the
change from the last input frame.
"""

from __future__ import annotations

import torch
from torch import nn

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


class _Stepper(nn.Module):
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

    def layer(self, i: int, h: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

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


STEPPERS: dict[str, type[_Stepper]] = {"cnn": CNNStepper, "fno": FNOStepper}


def build_stepper(
    arch: str, history: int, future: int, width: int, cond_dim: int = 0, cond_hidden: int = 0
) -> _Stepper:
    """A stepper by name (``"cnn"`` or ``"fno"``)."""
    if arch not in STEPPERS:
        raise ValueError(f"unknown stepper arch {arch!r} (available: {', '.join(STEPPERS)})")
    return STEPPERS[arch](history=history, future=future, width=width, cond_dim=cond_dim, cond_hidden=cond_hidden)
