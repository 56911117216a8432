"""ResNet18-style encoder over space-time crops: 2D convolutions over (t, x), 512-d representation.

The layout follows torchvision's ``resnet18`` (the backbone of the reference implementation): a 7x7
stride-2 stem without bias, BN, ReLU, 3x3 stride-2 max-pool, four stages of two BasicBlocks with 64,
128, 256 and 512 channels, global average pooling; no classifier. Written here so that the project
needs no torchvision.

``stem="fine"`` replaces the image stem (which divides the resolution by 4 before the first block) by one
3x3 stride-1 convolution, as networks for small images do: the first stage then sees the grid itself, where
a PDE's coefficients show (a viscosity sets derivative ratios at the grid scale); ``stem="half"`` by one
3x3 stride-2 convolution. On 32 x 64 crops of the narrow network they cost about 12x and 3x the image
stem's training step (measured roughly, one CPU core).
"""

from __future__ import annotations

import torch
from torch import nn

from ssl_pde.core.errors import UserError

Tensor = torch.Tensor


STEM_STRIDES = {"fine": 1, "half": 2}
"""Strides of the single 3x3 convolution of the small-input stems (no max-pool): ``fine`` keeps the grid's
resolution into the first stage, ``half`` halves it (the image stem quarters it)."""


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BN and a residual connection (projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class ResNet18(nn.Module):
    """ResNet18 encoder.

    Args:
        in_channels: input channels (3 for ``coords`` views (t', x', u'), 1 for ``resample`` views).
        widths: channels of the four stages.
        stem: ``imagenet`` (7x7 stride-2 convolution and 3x3 stride-2 max-pool), ``fine`` (one 3x3 stride-1
            convolution: no downsampling before the first stage) or ``half`` (one 3x3 stride-2 convolution).

    Shapes:
        x: (B, in_channels, T, X) -> (B, widths[-1]) representation.
    """

    def __init__(
        self, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 512), stem: str = "imagenet"
    ) -> None:
        super().__init__()
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False),
                nn.BatchNorm2d(widths[0]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        elif stem in STEM_STRIDES:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, widths[0], 3, STEM_STRIDES[stem], 1, bias=False),
                nn.BatchNorm2d(widths[0]),
                nn.ReLU(inplace=True),
            )
        else:
            raise UserError(f"encoder stem must be one of imagenet, {', '.join(STEM_STRIDES)}, got {stem!r}")
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, w, stride), BasicBlock(w, w, 1)]
            cin = w
        self.layers = nn.Sequential(*layers)
        self.out_dim = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.stem(x)).mean(dim=(2, 3))
