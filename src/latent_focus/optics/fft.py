"""FFT helpers: fast transform lengths, centred-kernel transfer functions, padded convolution."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .checks import check_image

__all__ = ["crop_center", "fast_len", "fft_convolve", "kernel_otf", "pad", "pad_amount"]


def fast_len(n: int) -> int:
    """Smallest 2,3,5-smooth integer >= n (fast FFT length)."""
    n = max(int(n), 1)
    best = None
    p5 = 1
    while p5 < 2 * n:
        p35 = p5
        while p35 < 2 * n:
            p = p35
            while p < n:
                p *= 2
            if best is None or p < best:
                best = p
            p35 *= 3
        p5 *= 5
    return int(best)


def pad_amount(kshape: tuple[int, int]) -> tuple[int, int]:
    return kshape[0] // 2 + 1, kshape[1] // 2 + 1


def kernel_otf(kernel: np.ndarray, fshape: tuple[int, int], dtype=np.float64) -> np.ndarray:
    """rfft2 of ``kernel`` zero-padded to ``fshape`` with its centre pixel moved to the origin."""
    kh, kw = kernel.shape
    buf = np.zeros(fshape, dtype=dtype)
    buf[:kh, :kw] = kernel
    buf = np.roll(buf, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return np.fft.rfft2(buf)


def fft_convolve(image, kernels, mode: str = "reflect") -> np.ndarray:
    """Convolve one plane with one or several centred kernels by FFT, with edge padding.

    Parameters
    ----------
    image : array, shape (y, x)
    kernels : array, shape (ky, kx) or (k, ky, kx)
        Kernels centred on pixel (ky // 2, kx // 2).
    mode : {'reflect', 'wrap', 'edge', 'constant'}
        How the image is extended beyond its border before convolving ('wrap' = periodic).

    Returns
    -------
    out : ndarray, float32, shape (y, x) or (k, y, x)
    """
    img = check_image(image).astype(np.float64)
    ks = np.asarray(kernels, dtype=np.float64)
    single = ks.ndim == 2
    if single:
        ks = ks[None]
    if ks.ndim != 3:
        raise InputError(f"kernels must have shape (ky, kx) or (k, ky, kx); got {ks.shape}")
    h, w = img.shape
    py, px = pad_amount(ks.shape[1:])
    if mode == "wrap":
        py, px = 0, 0
        padded = img
        fshape = (h, w)
    else:
        if mode not in ("reflect", "edge", "constant"):
            raise InputError(f"mode must be 'reflect', 'wrap', 'edge' or 'constant'; got {mode!r}")
        py, px = min(py, 4 * h), min(px, 4 * w)
        padded = pad(img, py, px, mode)
        fshape = (fast_len(padded.shape[0]), fast_len(padded.shape[1]))
    buf = padded
    if fshape != padded.shape:
        # fill the FFT margin by continuing the padding so wrap-around stays smooth
        buf = pad(padded, (0, fshape[0] - padded.shape[0]), (0, fshape[1] - padded.shape[1]), mode)
    spec = np.fft.rfft2(buf)
    out = np.empty((ks.shape[0], h, w), dtype=np.float32)
    for i, k in enumerate(ks):
        if k.shape[0] > fshape[0] or k.shape[1] > fshape[1]:
            k = crop_center(k, min(k.shape[0], fshape[0]), min(k.shape[1], fshape[1]))
        res = np.fft.irfft2(spec * kernel_otf(k, fshape), s=fshape)
        out[i] = res[py:py + h, px:px + w]
    return out[0] if single else out


def pad(img: np.ndarray, py, px, mode: str) -> np.ndarray:
    py = (py, py) if np.isscalar(py) else tuple(py)
    px = (px, px) if np.isscalar(px) else tuple(px)
    if mode == "reflect":
        # numpy 'reflect' needs pad < size; fall back to 'symmetric' repeats for large pads
        h, w = img.shape
        if max(py) >= h or max(px) >= w:
            return np.pad(img, (py, px), mode="symmetric")
        return np.pad(img, (py, px), mode="reflect")
    return np.pad(img, (py, px), mode=mode)


def crop_center(k: np.ndarray, h: int, w: int) -> np.ndarray:
    h -= 1 - h % 2
    w -= 1 - w % 2
    cy, cx = k.shape[0] // 2, k.shape[1] // 2
    out = k[cy - h // 2:cy - h // 2 + h, cx - w // 2:cx - w // 2 + w]
    return out / out.sum()
