"""A small CNN that regresses the parameters of a defocus PSF model, and their uncertainty, from one image patch.

Input: a (batch, 1, S, S) patch normalised by :func:`latent_focus.methods.psf_rl.estimator.normalize_patches`, and
per patch a few scalars that condition the head (how the patch was resampled, the objective's NA / n). Output:
(batch, 2 * n_params): the estimates, then the log of the scale of a Laplace distribution of their error.
"""

from __future__ import annotations

import torch
from torch import nn


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
    )


class PsfEstimator(nn.Module):
    """A pixel fold, strided convolution stages, mean and standard-deviation pooling, and a conditioned MLP head."""

    def __init__(self, widths: tuple[int, ...] = (32, 48, 64, 96, 128), n_params: int = 3, n_cond: int = 2,
                 hidden: int = 128):
        super().__init__()
        self.n_params, self.n_cond = n_params, n_cond
        # 2 x 2 pixel blocks folded into channels (lossless), then a convolution at half resolution
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(*(_stage(widths[k], widths[k + 1]) for k in range(len(widths) - 1)))
        self.head = nn.Sequential(nn.Linear(2 * widths[-1] + n_cond, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2 * n_params))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(x))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.std(dim=(2, 3))], dim=1)
        return self.head(torch.cat([pooled, cond], dim=1))
