"""MLP projector of VICReg: Linear + BN + ReLU blocks, last Linear without bias."""

from __future__ import annotations

from torch import nn


class Projector(nn.Sequential):
    """MLP ``in_dim -> widths[0] -> ... -> widths[-1]`` (reference default 512-512-512; 2048/8192 options).

    Shapes: (B, in_dim) -> (B, widths[-1]).
    """

    def __init__(self, in_dim: int = 512, widths: tuple[int, ...] | list[int] = (512, 512, 512)) -> None:
        layers: list[nn.Module] = []
        d = in_dim
        for w in list(widths)[:-1]:
            layers += [nn.Linear(d, w), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
            d = w
        layers.append(nn.Linear(d, list(widths)[-1], bias=False))
        super().__init__(*layers)
        self.out_dim = list(widths)[-1]
