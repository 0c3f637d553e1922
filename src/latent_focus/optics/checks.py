"""Argument checks shared by the optics modules: each raises InputError saying what to pass instead."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

__all__ = ["check_image", "check_optics", "check_size", "finite", "positive"]


def positive(name: str, value, hint: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {value!r}. {hint}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be a positive finite number; got {value!r}. {hint}")
    return v


def finite(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in micrometres; got {value!r}") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be finite; got {value!r}")
    return v


def check_optics(na, wavelength_um, n_immersion, pixel_size_um) -> tuple[float, float, float, float]:
    na = positive("na", na, "Pass the objective numerical aperture, e.g. na=0.75 (air) or na=1.4 (oil).")
    wl = positive("wavelength_um", wavelength_um, "Pass the emission wavelength in micrometres, e.g. 0.52.")
    n = positive("n_immersion", n_immersion, "Pass the immersion refractive index, e.g. 1.0 (air), 1.515 (oil).")
    px = positive("pixel_size_um", pixel_size_um, "Pass the pixel size in object space in micrometres, e.g. 0.1.")
    if na > n:
        raise InputError(f"na={na} exceeds n_immersion={n}; the numerical aperture cannot exceed the immersion "
                         f"refractive index. Pass na <= n_immersion (e.g. na=0.75 in air, na=1.4 with n=1.515).")
    if wl > 5:
        raise InputError(f"wavelength_um={wl} looks like nanometres; pass micrometres (e.g. 0.52 for 520 nm)")
    return na, wl, n, px


def check_size(size) -> int:
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
