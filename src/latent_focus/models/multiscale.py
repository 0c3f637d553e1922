"""Multi-scale latent autoencoder: the latent is a pyramid of feature maps, one per scale.

The encoder is a plain convolutional pyramid; at every scale a 1x1 projection produces one part of
the latent. The decoder climbs the pyramid, fusing each latent part on the way up, and adds a linear
output head (no sigmoid, so intensities outside the normalised range survive). Interpolation and
extrapolation act on every part at once, so the fine scales keep the detail a single deep bottleneck
loses, while the coarse scales carry the blur.

Folding 2 x 2 pixel blocks into channels lets each pixel of a block come from its own output channel;
where those channels disagree by a slowly varying offset, the decoded plane carries a faint stripe and
grid texture at the 2-pixel period, seen in smooth backgrounds. The decoder removes it with a fixed notch
at the fold's frequencies (:class:`FoldNotch`); it has no weights, so any trained model can use it.
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


class FoldNotch(nn.Module):
    """Remove from a plane what lies near the 2-pixel-period frequencies ``(0, 1/2)``, ``(1/2, 0)``, ``(1/2, 1/2)``.

    Each band is shifted to zero frequency (multiplied by ``(-1)^x``, ``(-1)^y`` or both), low-passed by a
    Gaussian of ``sigma`` pixels (a notch about ``1 / (2 pi sigma)`` cycles per pixel wide), shifted back and
    subtracted. Smooth content, edges and ramps pass unchanged; a stripe of slowly varying strength at the
    pixel period does not.
    """

    def __init__(self, sigma: float = 4.0):
        super().__init__()
        r = int(4 * sigma + 0.5)
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
        self.register_buffer("kernel", k / k.sum(), persistent=False)

    def _low_pass(self, x: torch.Tensor) -> torch.Tensor:
        c, r = x.shape[1], self.kernel.numel() // 2
        k = self.kernel.to(x.dtype)
        mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
        x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        sy = 1 - 2 * (torch.arange(h, device=x.device, dtype=x.dtype) % 2).view(h, 1)
        sx = 1 - 2 * (torch.arange(w, device=x.device, dtype=x.dtype) % 2).view(1, w)
        for sign in (sx, sy, sy * sx):
            x = x - sign * self._low_pass(sign * x)
        return x


class MultiScaleAutoencoder(nn.Module):
    """Latent: tuple of tensors with ``latent_channels[k]`` channels at 1/(s * 2**k) resolution.

    ``s = unshuffle`` folds s x s pixel blocks into channels first (lossless), so the network runs at
    1/s resolution and the output is unfolded back to full resolution, then passes the :class:`FoldNotch`.
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
        self.notch = FoldNotch() if unshuffle > 1 else nn.Identity()

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
        return self.notch(self.unfold(self.head(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
