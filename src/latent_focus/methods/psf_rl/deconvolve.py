"""Spatially-variant Richardson-Lucy with total-variation regularisation, in torch (CPU, CUDA, MPS).

The plane is covered by overlapping tiles, each with its own PSF. The blur is the PSF-interpolation model of
Nagy & O'Leary (1998): ``H x = sum_t k_t * (w_t x)``, with ``w_t`` the tiles' raised-cosine weights normalised to a
partition of unity, so the PSF changes smoothly from tile to tile and nothing is stitched afterwards: there are
no seams. The tile PSFs are compressed to their mean and a few basis kernels (``k_t = m + sum_j u_tj b_j``), so
one iteration costs a few FFTs of the whole plane whatever the number of tiles (:class:`TiledBlur`). With one
PSF this is exactly the plain Richardson-Lucy of
:func:`latent_focus.optics.deconvolution.richardson_lucy`: the same background handling (1st
percentile subtracted, added back), mirror padding, floor and clipping.

The total-variation term is that of Dey et al. (2006), used by Shajkofci & Liebling's semi-blind
deconvolution: ``x <- x H^T(y / Hx) / (1 - lambda div(grad x / |grad x|))``.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import torch

from ...errors import InputError
from ...optics import check_image, fast_len, kernel_otf
from ...optics import pad as pad_plane
from ...tiling import blend_weights

MAX_RANK = 6  # basis kernels kept at most
RANK_TOL = 0.05  # relative (L2) error of the tile PSFs the dropped basis kernels may leave


class TiledBlur:
    """The spatially-variant blur of one padded plane: a mean kernel, basis kernels and their coefficient maps.

    The tile PSFs are written ``k_t = m + sum_j u_tj b_j`` with ``m`` their mean and ``b_j`` the leading singular
    vectors of ``k_t - m``. Every ``b_j`` sums to zero, so however many are dropped, the blur keeps the flux
    (``H^T 1 = 1``) and a flat plane stays flat across tile borders.

    Parameters
    ----------
    kernels : array, shape (n_tiles, k, k)
        One PSF per tile (each sums to 1), odd side ``k``.
    boxes : list of (y0, y1, x0, x1)
        The tiles on the plane, in the order of ``kernels``.
    shape : (h, w)
        The plane.
    overlap : int
        Overlap of neighbouring tiles; the blend weights taper over it.
    fshape, offset : (int, int)
        The padded (FFT) grid and where the plane starts on it.
    device : torch.device
    """

    def __init__(self, kernels: np.ndarray, boxes, shape, overlap: int, fshape, offset, device,
                 max_rank: int = MAX_RANK, tol: float = RANK_TOL):
        ks = np.asarray(kernels, dtype=np.float64)
        self.device, self.fshape = device, tuple(fshape)
        mean = ks.mean(axis=0)
        dev = (ks - mean).reshape(len(ks), -1)
        if len(ks) == 1 or np.abs(dev).max() <= 1e-7 * ks.max():
            mean = _fit(ks[0], fshape)
            basis, coeff = [mean / mean.sum()], None
        else:
            u, s, vt = np.linalg.svd(dev, full_matrices=False)
            total = np.linalg.norm(ks)
            left = np.sqrt(np.clip((s ** 2).sum() - np.cumsum(s ** 2), 0, None)) / total  # error at rank k + 1
            rank = int(min(max_rank, np.argmax(left <= tol) + 1 if (left <= tol).any() else len(s)))
            basis = [_fit(mean, fshape)] + [_fit(b, fshape) for b in (s[:rank, None] * vt[:rank]).reshape(
                rank, *ks.shape[1:])]
            coeff = _coefficients(u[:, :rank], boxes, shape, overlap, fshape, offset)
        self.rank = len(basis) - 1
        otf = np.stack([kernel_otf(b, fshape, np.float32) for b in basis])
        self.otf = torch.from_numpy(otf.astype(np.complex64)).to(device)
        self.coeff = None if coeff is None else torch.from_numpy(coeff).to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``m * x + sum_j b_j * (c_j x)``: the plane as the tiles' PSFs blur it."""
        spec = torch.fft.rfft2(x) * self.otf[0]
        if self.coeff is not None:
            spec = spec + (torch.fft.rfft2(self.coeff * x[None]) * self.otf[1:]).sum(0)
        return torch.fft.irfft2(spec, s=self.fshape)

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """``m~ * r + sum_j c_j (b_j~ * r)``: the transpose of :meth:`forward`."""
        spec = torch.fft.rfft2(r)
        if self.coeff is None:
            return torch.fft.irfft2(spec * self.otf[0].conj(), s=self.fshape)
        parts = torch.fft.irfft2(spec[None] * self.otf.conj(), s=self.fshape)
        return parts[0] + (self.coeff * parts[1:]).sum(0)


def _fit(kernel: np.ndarray, fshape) -> np.ndarray:
    """``kernel`` cropped (centred) to fit the FFT grid."""
    kh, kw = kernel.shape
    hy, hx = min(kh // 2, fshape[0] // 2 - 1), min(kw // 2, fshape[1] // 2 - 1)
    cy, cx = kh // 2, kw // 2
    return kernel[cy - hy:cy + hy + 1, cx - hx:cx + hx + 1]


def _coefficients(u: np.ndarray, boxes, shape, overlap: int, fshape, offset) -> np.ndarray:
    """``c_j = sum_t u_tj w_t`` on the padded grid (the plane's edge values continue into the padding)."""
    h, w = shape
    acc = np.zeros((u.shape[1], h, w), np.float64)
    norm = np.zeros((h, w), np.float64)
    for t, box in enumerate(boxes):
        y0, y1, x0, x1 = box
        wt = blend_weights(box, h, w, overlap)
        acc[:, y0:y1, x0:x1] += u[t][:, None, None] * wt[None]
        norm[y0:y1, x0:x1] += wt
    acc /= norm[None]
    oy, ox = offset
    out = np.pad(acc, ((0, 0), (oy, fshape[0] - h - oy), (ox, fshape[1] - w - ox)), mode="edge")
    return out.astype(np.float32)


def _tv_divergence(x: torch.Tensor, eps: float) -> torch.Tensor:
    """``div(grad x / |grad x|)`` with forward differences for the gradient and backward ones for the divergence."""
    gy = torch.diff(x, dim=0, append=x[-1:])
    gx = torch.diff(x, dim=1, append=x[:, -1:])
    norm = torch.sqrt(gy * gy + gx * gx + eps * eps)
    ny, nx = gy / norm, gx / norm
    div_y = ny - torch.cat([torch.zeros_like(ny[:1]), ny[:-1]], dim=0)
    div_x = nx - torch.cat([torch.zeros_like(nx[:, :1]), nx[:, :-1]], dim=1)
    return div_y + div_x


class Padding:
    """Mirror padding of a plane onto a fast FFT grid, as the numpy Richardson-Lucy pads it."""

    def __init__(self, shape, kernel_size: int):
        h, w = shape
        self.shape = (h, w)
        self.py, self.px = min(kernel_size // 2 + 1, 4 * h), min(kernel_size // 2 + 1, 4 * w)
        self.fshape = (fast_len(h + 2 * self.py), fast_len(w + 2 * self.px))

    def pad(self, x: np.ndarray) -> np.ndarray:
        h, w = self.shape
        return pad_plane(x, (self.py, self.fshape[0] - h - self.py), (self.px, self.fshape[1] - w - self.px),
                         "reflect").astype(np.float32)

    def crop(self, x: torch.Tensor) -> np.ndarray:
        h, w = self.shape
        return x[self.py:self.py + h, self.px:self.px + w].detach().cpu().numpy()


def background_level(image: np.ndarray) -> float:
    """The level RL treats as background: the plane's 1st percentile (camera offset, diffuse light)."""
    return float(np.percentile(image, 1.0))


def richardson_lucy_sv(image, kernels, boxes, overlap: int, iterations: int, tv: float = 0.0,
                       background: float | str = "auto", reblur=None, eps: float = 1e-6,
                       device: torch.device | str = "cpu", max_rank: int = MAX_RANK
                       ) -> Generator[int, None, np.ndarray]:
    """Spatially-variant, TV-regularised Richardson-Lucy of one plane; a generator yielding each iteration.

    Parameters
    ----------
    image : array, shape (y, x)
    kernels : array, shape (n_tiles, k, k)
        The PSF of each tile (normalised to sum 1 here).
    boxes : list of (y0, y1, x0, x1)
        The tiles, e.g. :func:`latent_focus.tiling.plan_tiles`; one box covering the plane for a single PSF.
    overlap : int
        Tile overlap in pixels; the PSFs are blended over it.
    iterations : int
        At least 0 (0 returns the input, or its reblurred copy with ``reblur``).
    tv : float
        Weight of the total-variation term (0: plain RL; 0.001-0.01 are usual).
    background : 'auto' or float
        Subtracted before and added back after ('auto': the 1st percentile).
    reblur : array (n_tiles, k, k), optional
        Blur the estimate with these per-tile kernels before adding the background back: the plane as those
        PSFs (e.g. the in-focus ones) would have shown the object.
    device : torch device or name

    Returns (as the generator's value)
    -------
    restored : ndarray, float32, shape (y, x)
    """
    img = check_image(np.asarray(image), "image").astype(np.float32)
    ks = _check_kernels(kernels, len(boxes))
    if int(iterations) != iterations or iterations < 0:
        raise InputError(f"iterations must be a whole number >= 0; got {iterations!r}")
    if not np.isfinite(tv) or tv < 0 or tv >= 0.5:
        raise InputError(f"the TV weight must be in [0, 0.5); got {tv!r}. Pass e.g. 0.002")
    device = torch.device(device)
    bg = background_level(img) if isinstance(background, str) else float(background)
    h, w = img.shape
    size = max(ks.shape[1], 0 if reblur is None else np.asarray(reblur).shape[1])
    padding = Padding((h, w), size)
    x = np.clip(img - bg, 0, None)
    xp = torch.from_numpy(padding.pad(x)).to(device)
    blur = TiledBlur(ks, boxes, (h, w), overlap, padding.fshape, (padding.py, padding.px), device, max_rank)
    floor = float(eps * max(float(xp.max()), 1e-12))
    tv_eps = 1e-3 * max(float(xp.max()), 1e-12)  # gradients below this are treated as flat
    est = torch.clamp(xp, min=floor)
    for i in range(int(iterations)):
        blurred = blur.forward(est)
        ratio = xp / torch.clamp(blurred, min=floor)
        est = est * blur.adjoint(ratio)
        if tv > 0:
            est = est / torch.clamp(1 - tv * _tv_divergence(est, tv_eps), min=0.5)
        est = torch.clamp(est, min=0)
        yield i + 1
    if reblur is not None:
        focus = TiledBlur(_check_kernels(reblur, len(boxes)), boxes, (h, w), overlap, padding.fshape,
                          (padding.py, padding.px), device, max_rank)
        est = focus.forward(est)
    return (padding.crop(est) + bg).astype(np.float32)


def _check_kernels(kernels, n: int) -> np.ndarray:
    k = np.asarray(kernels, dtype=np.float64)
    if k.ndim == 2:
        k = k[None]
    if k.ndim != 3 or len(k) != n or k.shape[1] != k.shape[2] or k.shape[1] % 2 == 0:
        raise InputError(f"pass one odd, square PSF per tile ({n} tiles); got kernels of shape {k.shape}")
    if not np.isfinite(k).all() or (k < 0).any() or (k.sum(axis=(1, 2)) <= 0).any():
        raise InputError("PSFs must be finite and non-negative with a positive sum")
    return k / k.sum(axis=(1, 2), keepdims=True)


def run_to_end(gen: Generator):
    """The return value of a generator like :func:`richardson_lucy_sv`, ignoring what it yields."""
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value
