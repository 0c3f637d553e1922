"""The analysis-synthesis network pair of Kaufman & Fattal (CVPR 2020), for the defocus of microscopy planes.

* :class:`AnalysisNet` estimates a plane's defocus kernel as a ``K x K`` image that sums to 1. Its
  features pass through a :class:`CrossCorrelation` layer: the correlation of every pair of feature maps
  at every shift up to ``K // 2``, averaged over the plane. Blur acts on exactly these second-order
  statistics, and averaging them makes the estimate independent of where the structures lie.
* :class:`SynthesisNet` deblurs the plane with that kernel steering it: the kernel is encoded once into
  a vector that scales and shifts the features of every level of a small U-Net (kernel-guided feature
  modulation), and a Wiener deconvolution of the plane with the kernel is a second input channel. The
  output is a residual added to the input, so that an in-focus plane comes back as it is.

Planes enter normalised (robust percentiles to [0, 1]); kernels are (B, 1, K, K), centred, non-negative.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..optics.fft import fast_len

KERNEL_SIZE = 33
WIENER_EPS = 1e-2


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


class CrossCorrelation(nn.Module):
    """Mean correlation ``sum_x f_i(x) f_j(x + d) / N`` of every pair ``i <= j`` of ``C`` feature maps,
    ``|d| <= radius``.

    Returns (B, C (C + 1) / 2, 2 radius + 1, 2 radius + 1), each map divided by ``sqrt(var_i var_j)`` so that it
    is a correlation coefficient at ``d = 0``: independent of the plane's brightness and of its size. Pairs
    ``j < i`` are left out: their maps are those of ``(j, i)`` mirrored through the origin.
    """

    def __init__(self, radius: int, channels: int):
        super().__init__()
        self.radius = int(radius)
        i, j = torch.triu_indices(channels, channels)
        self.register_buffer("pairs", torch.stack([i, j]), persistent=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        b, c, h, w = f.shape
        r = self.radius
        f = f.float() - f.float().mean(dim=(-2, -1), keepdim=True)
        size = (fast_len(h + r + 1), fast_len(w + r + 1))  # zero padding: shifts up to r do not wrap around
        spec = torch.fft.rfft2(f, s=size)
        i, j = self.pairs
        corr = torch.fft.irfft2(spec[:, i].conj() * spec[:, j], s=size)  # (B, pairs, ...)
        corr = torch.roll(corr, shifts=(r, r), dims=(-2, -1))[..., : 2 * r + 1, : 2 * r + 1] / (h * w)
        var = (f * f).mean(dim=(-2, -1)).clamp_min(1e-12)  # (B, C)
        return corr / torch.sqrt(var[:, i] * var[:, j])[..., None, None]


class AnalysisNet(nn.Module):
    """Plane (B, 1, H, W) -> defocus kernel (B, 1, K, K), non-negative, summing to 1."""

    def __init__(self, features: int = 6, width: int = 12, head: int = 32, kernel_size: int = KERNEL_SIZE):
        super().__init__()
        self.kernel_size = kernel_size
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), _act(),
            nn.Conv2d(width, width, 3, padding=1), _act(),
            nn.Conv2d(width, features, 3, padding=1),
        )
        self.correlate = CrossCorrelation(kernel_size // 2, features)
        layers: list[nn.Module] = [nn.Conv2d(features * (features + 1) // 2 + 1, head, 3, padding=1), _act()]
        for dilation in (2, 4, 8, 2):
            layers += [nn.Conv2d(head, head, 3, padding=dilation, dilation=dilation), _act()]
        layers.append(nn.Conv2d(head, 1, 3, padding=1))
        self.head = nn.Sequential(*layers)
        k = kernel_size // 2
        yy, xx = torch.meshgrid(torch.arange(-k, k + 1.0), torch.arange(-k, k + 1.0), indexing="ij")
        self.register_buffer("radius", (torch.sqrt(yy ** 2 + xx ** 2) / k)[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corr = self.correlate(self.features(x))
        logits = self.head(torch.cat([corr, self.radius.expand(len(corr), -1, -1, -1)], dim=1))
        return torch.softmax(logits.flatten(1), dim=1).view(-1, 1, self.kernel_size, self.kernel_size)


class KernelEncoder(nn.Module):
    """Kernel (B, 1, K, K) -> a code (B, code) that steers the synthesis."""

    def __init__(self, code: int = 64, kernel_size: int = KERNEL_SIZE):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), _act(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), _act(),
            nn.Conv2d(32, 48, 3, stride=2, padding=1), _act(),
            nn.AdaptiveAvgPool2d(3),
        )
        self.fc = nn.Sequential(nn.Linear(48 * 9, code), _act(), nn.Linear(code, code), _act())

    def forward(self, kernel: torch.Tensor) -> torch.Tensor:
        k = kernel * self.kernel_size ** 2  # a flat kernel becomes 1 everywhere
        return self.fc(self.conv(k).flatten(1))


class _Modulated(nn.Module):
    """Two 3x3 convolutions whose features are scaled and shifted by the kernel code (FiLM)."""

    def __init__(self, c_in: int, c_out: int, code: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.film = nn.Linear(code, 2 * c_out)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        h = self.act(self.conv1(x))
        gamma, beta = self.film(code).chunk(2, dim=1)
        h = h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
        return self.act(self.conv2(h))


def wiener(x: torch.Tensor, kernel: torch.Tensor, eps: float = WIENER_EPS) -> torch.Tensor:
    """Wiener deconvolution of planes (B, 1, H, W) by kernels (B, 1, K, K), mirror-padded at the edges."""
    k = kernel.shape[-1]
    p = k // 2 + 1
    h, w = x.shape[-2:]
    mode = "reflect" if p < min(h, w) else "replicate"
    xp = F.pad(x.float(), (p, p, p, p), mode=mode)
    size = xp.shape[-2:]
    buf = torch.zeros((*kernel.shape[:2], *size), dtype=torch.float32, device=x.device)
    buf[..., :k, :k] = kernel.float()
    buf = torch.roll(buf, shifts=(-(k // 2), -(k // 2)), dims=(-2, -1))
    otf = torch.fft.rfft2(buf)
    spec = torch.fft.rfft2(xp)
    out = torch.fft.irfft2(spec * otf.conj() / (otf.abs() ** 2 + eps), s=size)
    return out[..., p:p + h, p:p + w].to(x.dtype)


class SynthesisNet(nn.Module):
    """Plane (B, 1, H, W) and kernel (B, 1, K, K) -> deblurred plane, as the input plus a residual.

    The U-Net runs at half resolution on 2 x 2 pixel blocks folded into channels (lossless), and unfolds its
    residual back to full resolution.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 48, 96, 128), code: int = 64,
                 kernel_size: int = KERNEL_SIZE, fold: int = 2):
        super().__init__()
        self.multiple = fold * 2 ** (len(widths) - 1)
        self.encode_kernel = KernelEncoder(code, kernel_size)
        self.fold, self.unfold = nn.PixelUnshuffle(fold), nn.PixelShuffle(fold)
        chans = (2 * fold * fold, *widths)
        self.down = nn.ModuleList(_Modulated(chans[i], chans[i + 1], code, stride=1 if i == 0 else 2)
                                  for i in range(len(widths)))
        self.up = nn.ModuleList(_Modulated(widths[i] + widths[i + 1], widths[i], code)
                                for i in range(len(widths) - 1))
        self.out = nn.Conv2d(widths[0], fold * fold, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x, kernel)

    def residual(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        """The correction added to ``x``; its height and width must be multiples of :attr:`multiple`."""
        code = self.encode_kernel(kernel)
        h = self.fold(torch.cat([x, wiener(x, kernel)], dim=1))
        skips = []
        for block in self.down:
            h = block(h, code)
            skips.append(h)
        for k in range(len(self.up) - 1, -1, -1):
            h = F.interpolate(h, size=skips[k].shape[-2:], mode="bilinear", align_corners=False)
            h = self.up[k](torch.cat([skips[k], h], dim=1), code)
        return self.unfold(self.out(h))


class AnalysisSynthesis(nn.Module):
    """The pair: ``analysis(x)`` estimates the kernel, ``synthesis(x, kernel)`` deblurs with it."""

    def __init__(self, analysis: dict | None = None, synthesis: dict | None = None):
        super().__init__()
        self.analysis = AnalysisNet(**(analysis or {}))
        self.synthesis = SynthesisNet(**(synthesis or {}))
        self.multiple = self.synthesis.multiple
        self.kernel_size = self.analysis.kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.synthesis(x, self.analysis(x))
