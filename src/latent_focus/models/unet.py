"""A CARE-style U-Net (Weigert et al., Nature Methods 2018) that maps a defocused plane to its in-focus plane.

Supervised image-to-image regression, the anchor a user would train instead of a seed method: two 3x3
convolutions per level, max-pooling down, bilinear upsampling with skip connections up, and a residual
output added to the input (the last convolution starts at zero, so an untrained network returns its input).
Planes enter normalised (robust percentiles to [0, 1]).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True))


class RefocusUNet(nn.Module):
    """Plane (B, 1, H, W) -> refocused plane, as the input plus a residual; H and W multiples of :attr:`multiple`."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        self.multiple = 2 ** (len(widths) - 1)
        chans = (1, *widths)
        self.down = nn.ModuleList(_double_conv(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.up = nn.ModuleList(_double_conv(widths[i] + widths[i + 1], widths[i]) for i in range(len(widths) - 1))
        self.out = nn.Conv2d(widths[0], 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The correction added to ``x``."""
        skips, h = [], x
        for k, block in enumerate(self.down):
            h = block(h if k == 0 else F.max_pool2d(h, 2))
            skips.append(h)
        for k in range(len(self.up) - 1, -1, -1):
            h = F.interpolate(h, size=skips[k].shape[-2:], mode="bilinear", align_corners=False)
            h = self.up[k](torch.cat([skips[k], h], dim=1))
        return self.out(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)
