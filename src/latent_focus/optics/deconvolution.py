"""Classical deconvolution baseline: Richardson-Lucy, its spatially-variant (tiled) form, and a simple per-patch
defocus estimator.

The spatially-variant scheme follows the structure of Shajkofci & Liebling (2020): the image is cut into
overlapping tiles, each tile gets its own PSF, is deconvolved with it, and the tiles are blended. Their method
estimates the per-tile PSFs with a CNN; here the PSFs are given by the caller, or picked per tile from a set of
Born & Wolf defocus candidates by :func:`estimate_defocus_psf`, a simple spectral-fit estimator.

All arrays are numpy; images have axes (y, x); results are float32.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..progress import Progress, run
from ..tiling import plan_tiles, stitch
from . import born_wolf_psf, check_image, fast_len, kernel_otf, psf_from_bead_stack
from . import pad as pad_plane

__all__ = ["bead_psf", "estimate_defocus_psf", "optics_psf", "richardson_lucy", "richardson_lucy_tiled"]


def _check_image(image, what: str = "image") -> np.ndarray:
    a = np.asarray(image)
    if np.iscomplexobj(a):
        raise InputError(f"{what} must be real-valued; pass intensities (e.g. np.abs(x) ** 2)")
    return check_image(a, what).astype(np.float32)


def _check_psf(psf) -> np.ndarray:
    k = np.asarray(psf, dtype=np.float64)
    if k.ndim != 2 or k.size == 0:
        raise InputError(f"psf must be a non-empty 2-D (y, x) kernel; got shape {k.shape}")
    if not np.isfinite(k).all() or (k < 0).any() or k.sum() <= 0:
        raise InputError("psf must be finite and non-negative with a positive sum; pass an intensity PSF, "
                         "e.g. latent_focus.simulate.born_wolf_psf(...)")
    return (k / k.sum()).astype(np.float32)


def _estimate_background(img: np.ndarray) -> float:
    """Robust background: the 1st percentile (dark-count / camera-offset level in microscopy images)."""
    return float(np.percentile(img, 1.0))


def richardson_lucy(image, psf, iterations: int = 30, *, clip: bool = True, eps: float = 1e-6,
                    background: float | str | None = "auto", pad: str = "reflect") -> np.ndarray:
    """Richardson-Lucy deconvolution of one plane (FFT-based, float32, non-negative); see
    :func:`richardson_lucy_steps`, which this runs to the end."""
    return run(richardson_lucy_steps(image, psf, iterations, clip=clip, eps=eps, background=background, pad=pad))


def richardson_lucy_steps(image, psf, iterations: int = 30, *, clip: bool = True, eps: float = 1e-6,
                          background: float | str | None = "auto",
                          pad: str = "reflect") -> Generator[int, None, np.ndarray]:
    """Richardson-Lucy deconvolution of one plane (FFT-based, float32, non-negative), yielding the number of
    iterations done after each (closing it stops between iterations).

    The background (camera offset, diffuse light) is subtracted before the iterations and added back after,
    so the multiplicative updates act on the signal only. The image is mirror-padded by the kernel size to
    limit edge ringing.

    Parameters
    ----------
    image : array, shape (y, x)
        Blurred plane in any intensity units.
    psf : array, shape (ky, kx)
        Blur kernel centred on pixel (ky // 2, kx // 2); normalised to sum 1 here.
    iterations : int
        Number of RL iterations (>= 0; 0 returns the input).
    clip : bool
        Clip the estimate at 0 after every update (guards against FFT round-off going negative).
    eps : float
        Floor of the re-blurred estimate in the ratio ``image / (estimate * psf)``, relative to the image's
        maximum signal.
    background : 'auto', float or None
        Level subtracted first and added back after: 'auto' = 1st percentile of the image, None = 0.
    pad : {'reflect', 'wrap'}
        Edge handling.

    Returns
    -------
    restored : ndarray, float32, shape (y, x)
    """
    img = _check_image(image)
    k = _check_psf(psf)
    try:
        iterations = int(iterations)
    except (TypeError, ValueError):
        raise InputError(f"iterations must be an integer >= 0; got {iterations!r}") from None
    if iterations < 0:
        raise InputError(f"iterations must be >= 0; got {iterations}")
    if pad not in ("reflect", "wrap"):
        raise InputError(f"pad must be 'reflect' or 'wrap'; got {pad!r}")
    if background is None:
        bg = 0.0
    elif isinstance(background, str):
        if background != "auto":
            raise InputError(f"background must be 'auto', a number or None; got {background!r}")
        bg = _estimate_background(img)
    else:
        bg = float(background)
    if iterations == 0:
        return img.copy()
    x = np.clip(img - bg, 0, None).astype(np.float32)
    h, w = x.shape
    if pad == "reflect":
        py, px = min(k.shape[0] // 2 + 1, 4 * h), min(k.shape[1] // 2 + 1, 4 * w)
        fshape = (fast_len(h + 2 * py), fast_len(w + 2 * px))
        xp = pad_plane(x, (py, fshape[0] - h - py), (px, fshape[1] - w - px), "reflect").astype(np.float32)
    else:
        py = px = 0
        fshape = (h, w)
        xp = x
    if k.shape[0] > fshape[0] or k.shape[1] > fshape[1]:
        cy, cx = k.shape[0] // 2, k.shape[1] // 2
        hy, hx = min(cy, fshape[0] // 2 - 1), min(cx, fshape[1] // 2 - 1)
        k = k[cy - hy:cy + hy + 1, cx - hx:cx + hx + 1]
        k = k / k.sum()
    otf = kernel_otf(k, fshape, np.float32)
    otf_conj = np.conj(otf)
    floor = np.float32(eps * max(float(xp.max()), 1e-12))
    est = xp.copy()
    est = np.maximum(est, floor)
    for i in range(iterations):
        blurred = np.fft.irfft2(np.fft.rfft2(est) * otf, s=fshape)
        ratio = xp / np.maximum(blurred, floor)
        est = est * np.fft.irfft2(np.fft.rfft2(ratio) * otf_conj, s=fshape)
        if clip:
            np.maximum(est, 0, out=est)
        est = est.astype(np.float32, copy=False)
        yield i + 1
    return (est[py:py + h, px:px + w] + bg).astype(np.float32)


PsfSource = Callable[[tuple[int, int, int, int]], np.ndarray] | Sequence[np.ndarray] | np.ndarray


def _tile_psfs(psfs, boxes, tile: int, overlap: int, shape) -> list[np.ndarray] | None:
    """One kernel per tile from ``psfs`` (None for a callable, which is asked tile by tile)."""
    if callable(psfs):
        return None
    if isinstance(psfs, np.ndarray) and psfs.ndim == 2:
        return [psfs] * len(boxes)
    if isinstance(psfs, np.ndarray) and psfs.ndim == 4:
        ys = sorted({b[0] for b in boxes})
        xs = sorted({b[2] for b in boxes})
        if psfs.shape[:2] != (len(ys), len(xs)):
            raise InputError(f"a PSF grid must have shape (n_rows, n_cols, ky, kx) = ({len(ys)}, {len(xs)}, ky, kx) "
                             f"for tile={tile}, overlap={overlap} on a {shape[0]}x{shape[1]} image; "
                             f"got {psfs.shape}")
        return [psfs[ys.index(b[0]), xs.index(b[2])] for b in boxes]
    seq = list(psfs)
    if len(seq) != len(boxes):
        raise InputError(f"got {len(seq)} PSFs for {len(boxes)} tiles; pass one PSF per tile in the order of "
                         f"latent_focus.tiling.plan_tiles({shape[0]}, {shape[1]}, {tile}, {overlap}), "
                         f"a callable box -> psf, or a (n_rows, n_cols, ky, kx) grid")
    return seq


def richardson_lucy_tiled(image, psfs: PsfSource, tile: int = 128, overlap: int = 32, iterations: int = 30,
                          **kwargs) -> np.ndarray:
    """Spatially-variant Richardson-Lucy; see :func:`richardson_lucy_tiled_steps`, which this runs to the end."""
    return run(richardson_lucy_tiled_steps(image, psfs, tile, overlap, iterations, **kwargs))


def richardson_lucy_tiled_steps(image, psfs: PsfSource, tile: int = 128, overlap: int = 32, iterations: int = 30,
                                **kwargs) -> Generator[Progress, None, np.ndarray]:
    """Spatially-variant Richardson-Lucy: overlapping tiles, each with its own PSF, blended smoothly.

    A generator: it yields a :class:`~latent_focus.progress.Progress` after each iteration of each tile (closing
    it stops there) and returns the restored plane.

    Each tile is deconvolved together with a context margin of half its kernel size taken from the image
    (so tile edges see real neighbours, not padding), cropped back, and the tiles are blended with the
    raised-cosine weights of :func:`latent_focus.tiling.stitch`.

    Parameters
    ----------
    image : array, shape (y, x)
    psfs : callable, sequence, or array
        Per-tile PSFs: a callable ``psf_for(box) -> (ky, kx)`` with ``box = (y0, y1, x0, x1)``; a sequence
        with one kernel per tile in the order of :func:`latent_focus.tiling.plan_tiles`; an array
        ``(n_rows, n_cols, ky, kx)`` (grid of tiles); or one ``(ky, kx)`` kernel for all tiles.
    tile, overlap : int
        Tile side and overlap between neighbouring tiles, pixels.
    iterations : int
        RL iterations per tile.
    **kwargs
        Passed to :func:`richardson_lucy` (``clip``, ``eps``, ``background``). With ``background='auto'``
        one background level is estimated from the whole image and used for every tile.

    Returns
    -------
    restored : ndarray, float32, shape (y, x)
    """
    img = _check_image(image)
    h, w = img.shape
    try:
        tile, overlap = int(tile), int(overlap)
    except (TypeError, ValueError):
        raise InputError("tile and overlap must be integers (pixels)") from None
    if tile < 8 or overlap < 0 or overlap >= tile:
        raise InputError(f"need tile >= 8 and 0 <= overlap < tile; got tile={tile}, overlap={overlap}. "
                         f"Pass e.g. tile=128, overlap=32")
    boxes = plan_tiles(h, w, tile, overlap)
    kernels = _tile_psfs(psfs, boxes, tile, overlap, (h, w))  # a callable is asked tile by tile, below
    bg = kwargs.pop("background", "auto")
    if isinstance(bg, str) and bg == "auto":
        bg = _estimate_background(img)
    outs, per_tile = [], max(int(iterations), 1)
    for t, box in enumerate(boxes):
        k = _check_psf(psfs(box) if callable(psfs) else kernels[t])
        y0, y1, x0, x1 = box
        my, mx = k.shape[0] // 2 + 1, k.shape[1] // 2 + 1
        ey0, ey1, ex0, ex1 = max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)
        steps = richardson_lucy_steps(img[ey0:ey1, ex0:ex1], k, iterations, background=bg, **kwargs)
        try:
            while True:
                i = next(steps)
                yield Progress(t * per_tile + i, len(boxes) * per_tile, f"tile {t + 1} of {len(boxes)}")
        except StopIteration as stop:
            res = stop.value
        outs.append(res[y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0])
        if not iterations:
            yield Progress(t + 1, len(boxes), f"tile {t + 1} of {len(boxes)}")
    return stitch(outs, boxes, h, w, overlap).astype(np.float32)


def _radial_mean(values: np.ndarray, fr: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.digitize(fr.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)
    s = np.bincount(idx[ok], weights=values.ravel()[ok], minlength=len(edges) - 1)
    c = np.bincount(idx[ok], minlength=len(edges) - 1)
    return s / np.maximum(c, 1)


def estimate_defocus_psf(patch, candidates: Sequence[float], *, na: float = 0.75, wavelength_um: float = 0.52,
                         n_immersion: float = 1.0, pixel_size_um: float = 0.1, size: int | None = None,
                         psf_fn: Callable[[float], np.ndarray] | None = None,
                         return_scores: bool = False):
    """Pick, for one patch, the defocus whose PSF best explains the patch's power spectrum.

    A simple, transparent estimator (not a learned one): the patch's radially averaged power spectrum
    ``P(f)`` (Hann-windowed) is fitted by ``A f^-beta |OTF_z(f)|^2 + N`` - a power-law object spectrum seen
    through the candidate's optical transfer function plus white noise - with ``beta`` on a grid and ``A, N >= 0``
    by weighted least squares; the candidate with the smallest log-spectrum residual wins. It relies on the
    characteristic dips of the defocus OTF, so it separates defocus steps well beyond the depth of field
    (about lambda / NA^2) on textured patches, is unreliable on flat or nearly empty patches, and cannot tell
    +z from -z (Born & Wolf defocus is even in z).

    Parameters
    ----------
    patch : array, shape (y, x)
        Image patch (at least 16x16; 64x64 or larger recommended).
    candidates : sequence of float
        Defocus values to choose from, micrometres.
    na, wavelength_um, n_immersion, pixel_size_um : float
        Optics for :func:`latent_focus.simulate.born_wolf_psf`.
    size : int, optional
        Side of the returned PSF (odd). Default: the largest odd size not exceeding the patch.
    psf_fn : callable, optional
        ``psf_fn(z) -> (ky, kx)`` kernel to use instead of Born & Wolf (e.g. a measured bead PSF).
    return_scores : bool
        Also return the residual of each candidate.

    Returns
    -------
    defocus_um : float
        The chosen candidate.
    psf : ndarray, float64, shape (size, size)
        Its PSF (sums to 1).
    scores : ndarray, shape (len(candidates),)
        Only with ``return_scores``: fit residual per candidate (lower is better).
    """
    p = _check_image(patch, "patch").astype(np.float64)
    if min(p.shape) < 16:
        raise InputError(f"patch is {p.shape[0]}x{p.shape[1]}; pass a patch of at least 16x16 pixels")
    cands = np.atleast_1d(np.asarray(candidates, dtype=np.float64))
    if cands.ndim != 1 or cands.size == 0 or not np.isfinite(cands).all():
        raise InputError(f"candidates must be a non-empty sequence of defocus values in um; got {candidates!r}")
    h, w = p.shape
    if size is None:
        size = min(h, w) - (1 - min(h, w) % 2)
    if psf_fn is None:
        def psf_fn(z):
            return born_wolf_psf(z, na, wavelength_um, n_immersion, pixel_size_um, size)
    win = np.outer(np.hanning(h), np.hanning(w))
    spec = np.abs(np.fft.rfft2((p - p.mean()) * win)) ** 2
    fy = np.fft.fftfreq(h, d=pixel_size_um)[:, None]
    fx = np.fft.rfftfreq(w, d=pixel_size_um)[None, :]
    fr = np.sqrt(fy ** 2 + fx ** 2)
    f_lo = 3.0 / (min(h, w) * pixel_size_um)
    f_hi = min(2 * na / wavelength_um, 0.5 / pixel_size_um)
    edges = np.linspace(f_lo, f_hi, 33)
    centres = 0.5 * (edges[1:] + edges[:-1])
    pr = _radial_mean(spec, fr, edges)
    good = pr > 0
    if good.sum() < 8:
        raise InputError("patch has too little structure to estimate defocus; pass a textured, non-constant patch")
    logp = np.log(pr[good])
    betas = np.arange(0.0, 4.01, 0.25)
    psfs, scores = [], []
    for z in cands:
        k = np.asarray(psf_fn(float(z)), dtype=np.float64)
        k = k / k.sum()
        psfs.append(k)
        kh, kw = min(k.shape[0], h), min(k.shape[1], w)
        kc = k[(k.shape[0] - kh) // 2:(k.shape[0] - kh) // 2 + kh, (k.shape[1] - kw) // 2:(k.shape[1] - kw) // 2 + kw]
        mtf2 = _radial_mean(np.abs(kernel_otf(kc, (h, w))) ** 2, fr, edges)[good]
        best = np.inf
        for beta in betas:
            g = centres[good] ** (-beta) * mtf2
            wts = 1.0 / pr[good]  # relative (log-like) weighting
            a_mat = np.stack([g, np.ones_like(g)], axis=1) * wts[:, None]
            coef, *_ = np.linalg.lstsq(a_mat, pr[good] * wts, rcond=None)
            if coef[0] <= 0 or coef[1] < 0:
                a = max(float((g * wts ** 2 * pr[good]).sum() / max((g * g * wts ** 2).sum(), 1e-300)), 1e-300)
                coef = np.array([a, 0.0])
            model = coef[0] * g + coef[1]
            r = float(np.mean((logp - np.log(np.maximum(model, 1e-300))) ** 2))
            best = min(best, r)
        scores.append(best)
    scores = np.asarray(scores)
    i = int(np.argmin(scores))
    if return_scores:
        return float(cands[i]), psfs[i], scores
    return float(cands[i]), psfs[i]


def optics_psf(na: float, wavelength_um: float, n_immersion: float = 1.0,
               pixel_size_um: float = 0.1) -> Callable[[float], np.ndarray]:
    """``defocus_um -> kernel``: the Born & Wolf widefield PSF of these optics (checked once, here)."""
    born_wolf_psf(0.0, na, wavelength_um, n_immersion, pixel_size_um, 3)
    return lambda defocus_um: born_wolf_psf(defocus_um, na, wavelength_um, n_immersion, pixel_size_um)


def bead_psf(stack, z_um=None, pixel_size_um: float | None = None,
             target_pixel_um: float | None = None) -> Callable[[float], np.ndarray]:
    """``defocus -> kernel`` from a measured (or theoretical) PSF z-stack, centred on its brightest plane.

    With ``z_um``, ``pixel_size_um`` and ``target_pixel_um`` the defocus is in micrometres and the kernel is
    resampled onto the target pixel grid; without them the PSF stack must share the image's sampling and the
    defocus is counted in planes.
    """
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim != 3:
        raise InputError(f"a PSF z-stack has axes (z, y, x); got shape {stack.shape}")
    known = [v is not None for v in (z_um, pixel_size_um, target_pixel_um)]
    if any(known) and not all(known):
        raise InputError("give the PSF's z positions, its pixel size and the image's pixel size together, "
                         "or none of them when the PSF is sampled like the image")
    if not all(known):
        z_um, pixel_size_um, target_pixel_um = np.arange(stack.shape[0], dtype=float), 1.0, 1.0
    return lambda defocus: psf_from_bead_stack(stack, z_um, pixel_size_um, target_pixel_um, defocus)
