"""Identity and blur codes: an autoencoder whose latent is split into an identity code and a small blur code.

After Ritsema (MSc thesis, University of Twente 2023): the encoder maps a plane to an **identity code**
(what is in the field) and a **blur code** (how defocused it is); the decoder rebuilds the plane from
both, so a plane can be deblurred by decoding its identity code with the blur code of an in-focus plane.

The identity code is multi-scale (one feature map per scale of a convolutional pyramid, as in
:mod:`latent_focus.models.multiscale`, whose layers it shares, so a trained ``compact`` model can start it),
so it keeps the field's detail at every scale. The blur code is
one number (``blur_dim=1``, the thesis' 1-D model) or a short vector, read by a small convolutional
branch of its own from the log energy of its feature maps over the whole plane (blur acts the same
everywhere, and a branch of its own keeps the blur losses from reshaping the identity code); it steers the decoder
through feature-wise affine modulation (FiLM: ``h * (1 + gamma(b)) + beta(b)``) at every scale.

With ``variational=True`` the same network is the ML-VAE baseline (Bouchacourt et al. 2018): both codes
are Gaussians (mean and log-variance), and training accumulates the identity evidence of a group of
planes of one field (:func:`group_evidence`).

A latent is a tuple ``(c_1, ..., c_K, b)``: the identity maps from fine to coarse, then the blur code of
shape (B, blur_dim). :meth:`BlurCodeAutoencoder.encode` returns the means, so inference is deterministic.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .multiscale import FoldNotch


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.LeakyReLU(0.1, inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
    )


def split_latent(z) -> tuple[tuple, torch.Tensor]:
    """``(identity parts, blur code)`` of a latent ``(c_1, ..., c_K, b)``."""
    return tuple(z[:-1]), z[-1]


def join_latent(identity, code: torch.Tensor) -> tuple:
    """The latent ``(c_1, ..., c_K, b)`` of identity parts and a blur code."""
    return (*identity, code)


def group_evidence(mu: torch.Tensor, logvar: torch.Tensor, groups: torch.Tensor):
    """Product of the Gaussians of each group (ML-VAE's accumulated group evidence).

    ``mu`` and ``logvar`` have shape (N, ...); ``groups`` (N,) holds each sample's group index in
    ``0..G-1``. Returns the group posterior's mean and log-variance, each (G, ...): precisions add, and the
    mean is the precision-weighted mean of the members' means.
    """
    n_groups = int(groups.max()) + 1
    precision = torch.exp(-logvar)
    shape = (n_groups, *mu.shape[1:])
    total = torch.zeros(shape, dtype=mu.dtype, device=mu.device).index_add_(0, groups, precision)
    weighted = torch.zeros(shape, dtype=mu.dtype, device=mu.device).index_add_(0, groups, precision * mu)
    return weighted / total, -torch.log(total)


class BlurCodeAutoencoder(nn.Module):
    """Multi-scale identity code plus a ``blur_dim``-dimensional blur code; see the module docstring.

    Parameters
    ----------
    widths : channels of the encoder pyramid, one per scale (1/u, 1/2u, ... of the input, u = ``unshuffle``).
    identity_channels : channels of the identity code at each scale.
    unshuffle : pixel blocks folded into channels first (lossless), so the network runs at 1/u resolution.
    blur_dim : length of the blur code (1 for the thesis' 1-D model).
    embed : width of the blur code's embedding that drives the decoder's modulation.
    blur_widths : channels of the blur branch at each of its scales.
    variational : encode Gaussians (means and log-variances) for the ML-VAE baseline.
    """

    output_range = None
    BANDS = 5  # Laplacian-pyramid bands whose energy the blur code reads directly

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96),
                 identity_channels: tuple[int, ...] = (8, 12, 16, 24), unshuffle: int = 2,
                 blur_dim: int = 1, embed: int = 32, variational: bool = False,
                 blur_widths: tuple[int, ...] = (16, 16, 32, 32)):
        super().__init__()
        if len(widths) != len(identity_channels):
            raise ValueError("widths and identity_channels need one entry per scale")
        self.blur_dim, self.variational = int(blur_dim), bool(variational)
        self.multiple = unshuffle * 2 ** (len(widths) - 1)
        k = 2 if variational else 1  # means, and log-variances for the ML-VAE
        self.fold, self.unfold = nn.PixelUnshuffle(unshuffle), nn.PixelShuffle(unshuffle)
        chans = (unshuffle ** 2, *widths)
        self.down = nn.ModuleList(_block(chans[i], chans[i + 1], stride=1 if i == 0 else 2)
                                  for i in range(len(widths)))
        self.to_identity = nn.ModuleList(nn.Conv2d(w, k * c, 1) for w, c in zip(widths, identity_channels))
        bw = (4 * unshuffle ** 2, *blur_widths)
        self.blur_down = nn.ModuleList(nn.Sequential(nn.Conv2d(bw[i], bw[i + 1], 3, stride=1 if i == 0 else 2,
                                                               padding=1), nn.LeakyReLU(0.1))
                                       for i in range(len(blur_widths)))
        self.blur_in = nn.Conv2d(unshuffle ** 2, bw[0], 3, padding=1)
        n_energy = sum(blur_widths) + self.BANDS
        self.to_blur = nn.Sequential(nn.LayerNorm(n_energy), nn.Linear(n_energy, 64),
                                     nn.LeakyReLU(0.1), nn.Linear(64, k * blur_dim))
        # the deterministic code is standardised over the training data, so it can neither shrink nor drift
        self.blur_norm = nn.Identity() if variational else nn.BatchNorm1d(blur_dim, affine=False)
        self.embed = nn.Sequential(nn.Linear(blur_dim, embed), nn.SiLU(), nn.Linear(embed, embed), nn.SiLU())
        self.from_identity = nn.ModuleList(nn.Conv2d(c, w, 1) for w, c in zip(widths, identity_channels))
        self.up = nn.ModuleList(_block(widths[i] + widths[i + 1], widths[i]) for i in range(len(widths) - 1))
        self.bottom = _block(widths[-1], widths[-1])
        self.film = nn.ModuleList(nn.Linear(embed, 2 * w) for w in widths)
        for layer in self.film:  # start unconditioned: a random modulation would teach the encoder a constant code
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.head = nn.Conv2d(widths[0], unshuffle ** 2, 3, padding=1)
        self.notch = FoldNotch() if unshuffle > 1 else nn.Identity()  # no stripes at the fold's period

    # -- encoder ---------------------------------------------------------------------------------
    def encode_stats(self, x: torch.Tensor):
        """``(identity means, identity log-variances, blur mean, blur log-variance)``; the log-variances
        are None unless the model is variational."""
        feats, h = [], self.fold(x)
        for down in self.down:
            h = down(h)
            feats.append(h)
        raw = [proj(f) for proj, f in zip(self.to_identity, feats)]
        if not self.variational:
            return tuple(raw), None, self.encode_blur(x), None
        mus, logvars = zip(*(r.chunk(2, dim=1) for r in raw))
        b_mu, b_logvar = self.to_blur(self._blur_energy(x)).chunk(2, dim=1)
        return tuple(mus), tuple(logvars), b_mu, b_logvar

    def encode_blur(self, x: torch.Tensor) -> torch.Tensor:
        """The blur code alone, (B, blur_dim) (the mean for the ML-VAE); it does not run the identity encoder."""
        blur = self.to_blur(self._blur_energy(x))
        return blur.chunk(2, dim=1)[0] if self.variational else self.blur_norm(blur)

    def _blur_energy(self, x: torch.Tensor) -> torch.Tensor:
        """Log mean energies of the plane's Laplacian-pyramid bands and of each channel of the blur branch at each
        of its scales: (B, BANDS + sum(blur_widths)).

        Blur sets how much of the plane's energy each band keeps (the bands give that from the first step;
        the learned channels refine it); a brighter or dimmer plane shifts every log alike, which the layer
        normalisation of :attr:`to_blur` removes.
        """
        energies, level = [], x
        for _ in range(self.BANDS):
            coarse = F.avg_pool2d(level, 2, ceil_mode=True)
            up = F.interpolate(coarse, size=level.shape[-2:], mode="bilinear", align_corners=False)
            energies.append(torch.log((level - up).pow(2).mean(dim=(1, 2, 3)) + 1e-8)[:, None])
            level = coarse
        h = self.blur_in(self.fold(x))
        for down in self.blur_down:
            h = down(h)
            energies.append(torch.log(h.pow(2).mean(dim=(2, 3)) + 1e-6))
        return torch.cat(energies, dim=1)

    def encode(self, x: torch.Tensor) -> tuple:
        """Latent ``(c_1, ..., c_K, b)`` of a (B, 1, H, W) batch (the means for the ML-VAE)."""
        identity, _, code, _ = self.encode_stats(x)
        return join_latent(identity, code)

    # -- decoder ---------------------------------------------------------------------------------
    def _modulate(self, h: torch.Tensor, level: int, e: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film[level](e).chunk(2, dim=1)
        return h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]

    def decode(self, z) -> torch.Tensor:
        identity, code = split_latent(z)
        e = self.embed(code.to(identity[0].dtype))
        last = len(identity) - 1
        h = self._modulate(self.bottom(self.from_identity[last](identity[last])), last, e)
        for k in range(last - 1, -1, -1):
            skip = self.from_identity[k](identity[k])
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = self._modulate(self.up[k](torch.cat([skip, h], dim=1)), k, e)
        return self.notch(self.unfold(self.head(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
