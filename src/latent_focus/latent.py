"""Latent-space maths of the method (Eq. 1-2 of Mazilu, Wang, Dummer et al., CAIP 2023).

A latent is a tensor, an array, or a tuple/list of them (multi-scale models); every operation is
applied to each part. ``alpha`` close to 1 means "close to the sharper plane".
"""

from __future__ import annotations

import math

from .errors import InputError


def _in_unit_interval(value, name: str, example: str) -> float:
    """``value`` as float if it lies in (0, 1], else :class:`InputError` naming it and an ``example``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in (0, 1]; got {value!r}") from None
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise InputError(f"{name} must lie in (0, 1]; got {value}. Pass e.g. {example}")
    return value


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as float if it lies in (0, 1], else raise :class:`InputError`."""
    return _in_unit_interval(alpha, "alpha", "--alpha 0.5")


def check_strength(strength: float) -> float:
    """Return ``strength`` as float if it lies in (0, 1], else raise :class:`InputError`."""
    return _in_unit_interval(strength, "deblurring strength", "--strength 1")


def parts(z) -> list:
    """The parts of a latent: a multi-scale tuple's tensors, or the one tensor or array."""
    return list(z) if isinstance(z, (tuple, list)) else [z]


def map_parts(fn, *latents):
    """Apply ``fn`` to the matching parts of latents of one structure; the result has that structure."""
    first = latents[0]
    if isinstance(first, (tuple, list)):
        return type(first)(map_parts(fn, *group) for group in zip(*latents))
    return fn(*latents)


def combine(latents, weights):
    """Weighted sum ``sum_i w_i * z_i`` of latents of the same structure."""
    def weighted_sum(*zs):
        out = zs[0] * weights[0]
        for z, w in zip(zs[1:], weights[1:]):
            out = out + z * w
        return out
    return map_parts(weighted_sum, *latents)


def interpolate(z_a, z_c, alpha: float):
    """Blur synthesis, Eq. 1: ``alpha * z_a + (1 - alpha) * z_c`` (``z_a`` the sharper plane)."""
    alpha = check_alpha(alpha)
    return combine([z_a, z_c], [alpha, 1.0 - alpha])


def extrapolate(z_b, z_c, alpha: float):
    """Deblurring, Eq. 2: ``z_b / alpha - (1 - alpha) / alpha * z_c`` (``z_b`` sharper than ``z_c``)."""
    alpha = check_alpha(alpha)
    return combine([z_b, z_c], [1.0 / alpha, -(1.0 - alpha) / alpha])


def damp_alpha(alpha: float, strength: float) -> float:
    """The alpha that goes ``strength`` of the way from ``z_b`` to Eq. 2's extrapolated latent.

    ``extrapolate(z_b, z_c, damp_alpha(alpha, s)) == z_b + s * (extrapolate(z_b, z_c, alpha) - z_b)``;
    ``s = 1`` is Eq. 2 itself. A model whose latent is not linear in blur overshoots the focus plane at
    ``s = 1``; its card records the strength that served it best on simulated stacks with known focus.
    """
    alpha, strength = check_alpha(alpha), check_strength(strength)
    return 1.0 / (1.0 + strength * (1.0 / alpha - 1.0))


def alpha_from_defocus(d_b: float, d_c: float) -> float:
    """Alpha that extrapolates from defocus ``d_b`` and ``d_c`` to focus: ``1 - d_b / d_c``.

    Distances are measured from the in-focus plane on the same side of focus, ``|d_b| < |d_c|``.
    For interpolation between planes at ``d_a`` and ``d_c`` towards ``d_b`` use
    ``alpha_from_defocus(d_b - d_a, d_c - d_a)``.
    """
    if d_c == 0 or d_b * d_c < 0 or abs(d_b) >= abs(d_c):
        raise InputError(
            f"defocus distances {d_b} and {d_c} must lie on the same side of focus with |d_b| < |d_c|"
        )
    return check_alpha(1.0 - d_b / d_c)
