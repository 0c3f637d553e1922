"""Widefield PSFs: scalar pupil models (Born & Wolf, Gibson-Lanni) and kernels from measured bead stacks.

Lengths are in micrometres; kernels are (y, x), centred on pixel (size // 2, size // 2), and sum to 1.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..errors import InputError
from .checks import check_optics, check_size, finite, positive
from .fft import fast_len

__all__ = ["born_wolf_psf", "gibson_lanni_psf", "psf_from_bead_stack", "psf_support_px"]


def odd_at_least(x: float) -> int:
    k = max(1, int(math.ceil(x - 1e-9)))
    return k if k % 2 == 1 else k + 1


def psf_support_px(defocus_um: float, na: float, wavelength_um: float, n_immersion: float,
                   pixel_size_um: float, max_size: int | None = None) -> int:
    """Odd kernel size (pixels) holding the geometric blur disc of a defocused PSF plus diffraction rings.

    The blur radius is ``|z| tan(asin(NA/n))``; a margin of four Airy radii is added.
    """
    sin_t = min(na / n_immersion, 0.999)
    r_um = abs(defocus_um) * sin_t / math.sqrt(1 - sin_t ** 2) + 4 * 0.61 * wavelength_um / na
    s = 2 * int(math.ceil(r_um / pixel_size_um)) + 1
    s = max(s, 9)
    if max_size is not None:
        s = min(s, max_size if max_size % 2 == 1 else max_size - 1)
    return max(s, 3)


def _pupil_psf(pupil_phase: Callable[[np.ndarray], np.ndarray], cutoff: float, wavelength_um: float,
               na: float, blur_radius_um: float, pixel_size_um: float, size: int) -> np.ndarray:
    """Intensity PSF |FT(pupil)|^2 computed on an oversampled grid and binned to ``size`` x ``size`` pixels.

    ``pupil_phase(rho2)`` returns the pupil phase (rad) for squared spatial frequency rho2 (1/um^2); the pupil
    passes ``rho <= cutoff``. The PSF centre lies at pixel (size // 2, size // 2); the result sums to 1.
    """
    # oversampling: fine grid Nyquist-samples the intensity (dx <= lambda / (4 NA)), odd so pixels stay centred
    os_ = odd_at_least(max(3.0, pixel_size_um * 4 * na / wavelength_um))
    dx = pixel_size_um / os_
    n_win = os_ * size
    # the field must not wrap around: the grid holds the blur disc (or the window) with a margin
    m = fast_len(1.25 * max(n_win, 2 * blur_radius_um / dx) + 16 * os_)
    f = np.fft.fftfreq(m, d=dx)
    rho2 = f[:, None] ** 2 + f[None, :] ** 2
    inside = rho2 <= cutoff ** 2
    pupil = np.zeros((m, m), dtype=np.complex128)
    pupil[inside] = np.exp(1j * pupil_phase(rho2[inside]))
    field = np.fft.fft2(pupil)  # origin of the PSF at fine index 0
    inten = field.real ** 2 + field.imag ** 2
    # place the origin at the centre of the centre pixel, crop the window and bin os x os
    c = (size // 2) * os_ + (os_ - 1) // 2
    inten = np.roll(inten, (c, c), axis=(0, 1))[:n_win, :n_win]
    psf = inten.reshape(size, os_, size, os_).sum(axis=(1, 3))
    psf = 0.5 * (psf + psf.T)  # remove round-off asymmetry; the model is radially symmetric
    return (psf / psf.sum()).astype(np.float64)


def born_wolf_psf(defocus_um: float, na: float, wavelength_um: float, n_immersion: float = 1.0,
                  pixel_size_um: float = 0.1, size: int | None = None) -> np.ndarray:
    """Widefield intensity PSF at a given defocus (scalar Born & Wolf model).

    Parameters
    ----------
    defocus_um : float
        Focal shift in micrometres (0 = in focus; the model is symmetric in the sign).
    na : float
        Objective numerical aperture, ``0 < na <= n_immersion``.
    wavelength_um : float
        Emission wavelength in vacuum, micrometres.
    n_immersion : float
        Refractive index of the immersion medium (and, for this model, of the sample).
    pixel_size_um : float
        Pixel size in object space, micrometres.
    size : int, optional
        Kernel side in pixels (odd recommended). Default: large enough for the blur disc (:func:`psf_support_px`).

    Returns
    -------
    psf : ndarray, float64, shape (size, size)
        Non-negative, sums to 1, centred on pixel (size // 2, size // 2). Energy outside the window is dropped
        and the kernel renormalised.
    """
    z = finite("defocus_um", defocus_um)
    na, wl, n, px = check_optics(na, wavelength_um, n_immersion, pixel_size_um)
    size = psf_support_px(z, na, wl, n, px) if size is None else check_size(size)
    k_n2 = (n / wl) ** 2

    def phase(rho2):
        return 2 * np.pi * z * np.sqrt(np.maximum(k_n2 - rho2, 0.0))

    sin_t = na / n
    r = abs(z) * sin_t / math.sqrt(max(1 - sin_t ** 2, 1e-6))
    return _pupil_psf(phase, na / wl, wl, na, r, px, size)


def gibson_lanni_psf(defocus_um: float, na: float, wavelength_um: float, n_immersion: float = 1.515,
                     n_sample: float = 1.33, depth_um: float = 0.0, pixel_size_um: float = 0.1,
                     size: int | None = None) -> np.ndarray:
    """Widefield intensity PSF with the Gibson-Lanni aberration for a refractive-index mismatch at depth.

    The pupil phase is ``2 pi [ d (sqrt(n_s^2/l^2 - rho^2) - sqrt(n_i^2/l^2 - rho^2)) + z sqrt(n_i^2/l^2 - rho^2) ]``
    for a point at depth ``d`` below the coverslip (coverslip as designed). Pupil frequencies above
    ``n_sample / lambda`` (rays totally reflected at the sample interface) are blocked. With
    ``n_sample == n_immersion`` or ``depth_um == 0`` this is exactly :func:`born_wolf_psf`. With a mismatch
    the best focus moves away from ``defocus_um = 0`` (focal shift) and the PSF becomes axially asymmetric.

    Parameters
    ----------
    defocus_um, na, wavelength_um, n_immersion, pixel_size_um, size
        As in :func:`born_wolf_psf`.
    n_sample : float
        Refractive index of the sample medium (e.g. 1.33 water, 1.38 cells).
    depth_um : float
        Depth of the emitter below the coverslip, micrometres (>= 0).

    Returns
    -------
    psf : ndarray, float64, shape (size, size)
        Non-negative, sums to 1, centred on pixel (size // 2, size // 2).
    """
    z = finite("defocus_um", defocus_um)
    na, wl, n_i, px = check_optics(na, wavelength_um, n_immersion, pixel_size_um)
    n_s = positive("n_sample", n_sample, "Pass the sample refractive index, e.g. 1.33 (water).")
    d = finite("depth_um", depth_um)
    if d < 0:
        raise InputError(f"depth_um must be >= 0 (depth below the coverslip); got {depth_um!r}")
    size = psf_support_px(abs(z) + abs(d * (n_i - n_s)), na, wl, n_i, px) if size is None else check_size(size)
    ki2, ks2 = (n_i / wl) ** 2, (n_s / wl) ** 2

    def phase(rho2):
        ci = np.sqrt(np.maximum(ki2 - rho2, 0.0))
        cs = np.sqrt(np.maximum(ks2 - rho2, 0.0))
        return 2 * np.pi * (d * (cs - ci) + z * ci)

    na_eff = min(na, n_s)
    sin_t = min(na_eff / n_i, 0.999)
    r = (abs(z) + abs(d * (n_i - n_s)) * 2) * sin_t / math.sqrt(1 - sin_t ** 2)
    return _pupil_psf(phase, na_eff / wl, wl, na, r, px, size)


def _area_matrix(n_out: int, out_px: float, n_in: int, in_px: float, centre_in: float) -> np.ndarray:
    """(n_out, n_in) box-integration weights mapping a 1-D profile onto a new pixel grid.

    Input pixel j covers [j, j+1) * in_px; output pixel i covers a window of width out_px whose centre for
    i = n_out // 2 falls at input coordinate ``centre_in`` (in input pixels, pixel centres at j + 0.5).
    """
    in_edges = np.arange(n_in + 1) * in_px
    c_um = (centre_in + 0.5) * in_px
    out_lo = c_um + (np.arange(n_out) - n_out // 2 - 0.5) * out_px
    out_hi = out_lo + out_px
    lo = np.maximum(out_lo[:, None], in_edges[None, :-1])
    hi = np.minimum(out_hi[:, None], in_edges[None, 1:])
    return np.clip(hi - lo, 0, None) / in_px


def psf_from_bead_stack(stack, z_um, pixel_size_um: float, target_pixel_um: float, target_defocus_um: float,
                        size: int | None = None, background: float | None = None,
                        center_z: bool = True) -> np.ndarray:
    """2-D defocus kernel from a measured bead z-stack.

    Background is subtracted (median of the stack's outer frame unless given) and clipped at zero; the stack
    is centred laterally on the intensity centroid around the brightest voxel and axially on the brightest
    plane (``center_z``), linearly interpolated in z and box-integrated onto the target pixel grid.

    Parameters
    ----------
    stack : array, shape (z, y, x)
        Measured bead stack (one isolated, sub-resolution bead).
    z_um : array, shape (z,)
        Focal position of each plane, micrometres (increasing or decreasing).
    pixel_size_um : float
        Lateral pixel size of ``stack``, micrometres.
    target_pixel_um : float
        Pixel size of the image the kernel will blur, micrometres.
    target_defocus_um : float
        Defocus relative to the bead focus (brightest plane if ``center_z``), micrometres. Must lie within the
        stack's z range.
    size : int, optional
        Output side in pixels (odd). Default: the stack's lateral extent at the target pixel size.
    background : float, optional
        Background level to subtract. Default: median of the outermost 3-pixel frame of all planes.
    center_z : bool
        Shift z so the brightest plane is at 0.

    Returns
    -------
    psf : ndarray, float64, shape (size, size)
        Sums to 1, peak at (size // 2, size // 2) for an in-focus bead.
    """
    s = np.asarray(stack, dtype=np.float64)
    if s.ndim != 3 or s.shape[0] < 1 or min(s.shape[1:]) < 5:
        raise InputError(f"stack must be a (z, y, x) bead stack with planes of at least 5x5; got shape {s.shape}")
    if not np.isfinite(s).all():
        raise InputError("bead stack contains NaN or Inf; replace them and try again")
    z = np.asarray(z_um, dtype=np.float64).ravel()
    if z.shape[0] != s.shape[0]:
        raise InputError(f"z_um has {z.shape[0]} values but the stack has {s.shape[0]} planes; "
                         f"pass one z position (um) per plane")
    px = positive("pixel_size_um", pixel_size_um, "Pass the bead stack's lateral pixel size in um.")
    tpx = positive("target_pixel_um", target_pixel_um, "Pass the target image pixel size in um.")
    tz = finite("target_defocus_um", target_defocus_um)
    if background is None:
        b = 3
        frame = np.concatenate([s[:, :b, :].ravel(), s[:, -b:, :].ravel(), s[:, :, :b].ravel(), s[:, :, -b:].ravel()])
        background = float(np.median(frame))
    s = np.clip(s - background, 0, None)
    if s.max() <= 0:
        raise InputError("bead stack has no signal above the background; pass a stack with a visible bead")
    order = np.argsort(z)
    z, s = z[order], s[order]
    # brightest voxel on a lightly smoothed copy (robust against hot pixels)
    sm = s.copy()
    sm[:, 1:-1, 1:-1] = sum(s[:, 1 + dy:s.shape[1] - 1 + dy, 1 + dx:s.shape[2] - 1 + dx]
                            for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
    iz, iy, ix = np.unravel_index(int(np.argmax(sm)), sm.shape)
    if center_z:
        z = z - z[iz]
    if not z[0] - 1e-9 <= tz <= z[-1] + 1e-9:
        raise InputError(f"target_defocus_um={tz} is outside the bead stack's z range [{z[0]:.3g}, {z[-1]:.3g}] um;"
                         f" pass a defocus inside it")
    # lateral centroid of the focus plane in a window around the peak
    r = max(2, int(round(0.5 / px)))
    y0, y1 = max(0, iy - r), min(s.shape[1], iy + r + 1)
    x0, x1 = max(0, ix - r), min(s.shape[2], ix + r + 1)
    win = s[iz, y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1]
    cy, cx = float((win * yy).sum() / win.sum()), float((win * xx).sum() / win.sum())
    # plane at the requested defocus by linear interpolation in z
    if s.shape[0] == 1:
        plane = s[0]
    else:
        j = int(np.clip(np.searchsorted(z, tz) - 1, 0, s.shape[0] - 2))
        w = 0.0 if z[j + 1] == z[j] else (tz - z[j]) / (z[j + 1] - z[j])
        w = float(np.clip(w, 0, 1))
        plane = (1 - w) * s[j] + w * s[j + 1]
    if size is None:
        ext = min(s.shape[1], s.shape[2]) * px
        size = max(3, int(ext / tpx))
        size = size if size % 2 == 1 else size - 1
    else:
        size = check_size(size)
    ay = _area_matrix(size, tpx, s.shape[1], px, cy)
    ax = _area_matrix(size, tpx, s.shape[2], px, cx)
    out = ay @ plane @ ax.T
    total = out.sum()
    if total <= 0:
        raise InputError("bead stack kernel is empty at this defocus; pass a larger size or check the stack")
    return out / total
