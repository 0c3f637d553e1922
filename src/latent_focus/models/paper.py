"""The autoencoder of the CAIP 2023 paper, layer for layer.

Encoder: five 3x3 stride-2 convolutions with 64-128-256-512-1024 filters, each followed by batch
normalisation and LeakyReLU. Decoder: the mirror image with transposed convolutions back to 64
channels, one more stride-2 transposed convolution, then a 3x3 convolution to one channel and a sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True))


class PaperAutoencoder(nn.Module):
    """Single-tensor latent of shape (1024, H/32, W/32); output in [0, 1] through a sigmoid."""

    multiple = 32
    output_range = (0.0, 1.0)

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512, 1024)):
        super().__init__()
        chans = (1, *widths)
        self.encoder = nn.Sequential(*(_down(chans[i], chans[i + 1]) for i in range(len(widths))))
        rev = widths[::-1]
        ups = [_up(rev[i], rev[i + 1]) for i in range(len(rev) - 1)]
        ups.append(_up(widths[0], widths[0]))
        self.decoder = nn.Sequential(*ups, nn.Conv2d(widths[0], 1, 3, padding=1), nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
