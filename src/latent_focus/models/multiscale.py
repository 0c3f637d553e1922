"""Multi-scale latent autoencoder: the latent is a pyramid of feature maps, one per scale.

The encoder is a plain convolutional pyramid; at every scale a 1x1 projection produces one part of
the latent. The decoder climbs the pyramid, fusing each latent part on the way up, and adds a linear
output head (no sigmoid, so intensities outside the normalised range survive). Interpolation and
extrapolation act on every part at once, so the fine scales keep the detail a single deep bottleneck
loses, while the coarse scales carry the blur.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
    )


class MultiScaleAutoencoder(nn.Module):
    """Latent: tuple of tensors with ``latent_channels[k]`` channels at 1/(s * 2**k) resolution.

    ``s = unshuffle`` folds s x s pixel blocks into channels first (lossless), so the network runs at
    1/s resolution and the output is unfolded back to full resolution.
    """

    output_range = None

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128),
                 latent_channels: tuple[int, ...] = (4, 8, 16, 32), unshuffle: int = 1):
        super().__init__()
        if len(widths) != len(latent_channels):
            raise ValueError("widths and latent_channels need one entry per scale")
        self.multiple = unshuffle * 2 ** (len(widths) - 1)
        self.fold = nn.PixelUnshuffle(unshuffle)
        self.unfold = nn.PixelShuffle(unshuffle)
        chans = (unshuffle ** 2, *widths)
        self.down = nn.ModuleList(_block(chans[k], chans[k + 1], stride=1 if k == 0 else 2)
                                  for k in range(len(widths)))
        self.to_latent = nn.ModuleList(nn.Conv2d(w, c, 1) for w, c in zip(widths, latent_channels))
        self.from_latent = nn.ModuleList(nn.Conv2d(c, w, 1) for w, c in zip(widths, latent_channels))
        self.up = nn.ModuleList(
            _block(widths[k] + widths[k + 1], widths[k]) for k in range(len(widths) - 1)
        )
        self.bottom = _block(widths[-1], widths[-1])
        self.head = nn.Conv2d(widths[0], unshuffle ** 2, 3, padding=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        parts = []
        h = self.fold(x)
        for down, proj in zip(self.down, self.to_latent):
            h = down(h)
            parts.append(proj(h))
        return tuple(parts)

    def decode(self, z: tuple[torch.Tensor, ...]) -> torch.Tensor:
        h = self.bottom(self.from_latent[-1](z[-1]))
        for k in range(len(z) - 2, -1, -1):
            skip = self.from_latent[k](z[k])
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = self.up[k](torch.cat([skip, h], dim=1))
        return self.unfold(self.head(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
