"""Camera noise: Poisson shot noise, Gaussian read noise, gain, offset, quantisation and saturation."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .checks import positive

__all__ = ["add_camera_noise"]


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
    gain = positive("gain", gain, "Pass ADU per electron, e.g. 1.0.")
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
