"""Latent-space maths of the method (Eq. 1-2 of Mazilu, Wang, Dummer et al., CAIP 2023): the one home of alpha.

A latent is a tensor, an array, or a tuple/list of them (multi-scale models); every operation is
applied to each part. ``alpha`` close to 1 means "close to the sharper plane". The conventions built on
alpha live here too:

* the slider's ``t``: ``t * z_B + (1 - t) * z_C`` is blur synthesis for ``t <= 1`` (alpha = t) and
  deblurring above (alpha = 1 / t), :func:`mix`;
* the deblurring ``strength`` ``s``: the fraction of Eq. 2's step beyond ``z_B`` that is taken,
  :func:`damp_alpha`;
* the default rule that picks ``s`` and the decoding from the planes' distance to focus, :func:`default_step`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def deblur_t(alpha):
    """The mixing weight ``t = 1 / alpha`` that writes Eq. 2 as ``t * z_B + (1 - t) * z_C`` (array-friendly)."""
    return 1.0 / alpha


def eq2_step(alpha: float) -> float:
    """Eq. 2 as a step beyond B: ``z_B + k * (z_B - z_C)`` with ``k = (1 - alpha) / alpha``."""
    alpha = check_alpha(alpha)
    return (1.0 - alpha) / alpha


def step_towards(z_start, z_target, strength: float):
    """``z_start + strength * (z_target - z_start)``: ``strength`` of the way from one latent to another."""
    return combine([z_start, z_target], [1.0 - strength, strength])


def step_to_eq2(z_start, z_b, z_c, alpha: float, strength: float):
    """``step_towards(z_start, extrapolate(z_b, z_c, alpha), strength)`` as one weighted sum (one pass over the
    latents; ``z_start`` is often ``z_b``, whose weights then add up)."""
    k = eq2_step(alpha)
    weights = [1.0 - strength, strength * (1.0 + k), -strength * k]
    latents = [z_start, z_b, z_c]
    if z_start is z_b:
        latents, weights = latents[1:], [weights[0] + weights[1], weights[2]]
    return combine(latents, weights)


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


def mix(z_sharp, z_blurry, t: float):
    """``t * z_sharp + (1 - t) * z_blurry``: blur synthesis for ``t <= 1`` (alpha = t), deblurring above
    (alpha = 1 / t in Eq. 2); ``t <= 0`` is the blurrier plane itself."""
    if t <= 0:
        return combine([z_blurry], [1.0])
    if t <= 1:
        return interpolate(z_sharp, z_blurry, t)
    return extrapolate(z_sharp, z_blurry, 1.0 / t)


def describe_t(t: float) -> tuple[str, float]:
    """The operation and its alpha for slider value ``t``."""
    return ("blur synthesis", t) if t <= 1 else ("deblurring", 1.0 / t)


# -- the deblurring step: how far towards focus, and how to decode ------------------------------------

# The default rule's numbers, chosen leave-one-series-out on real focus series (benchmarks/out_of_fold.py)
AUTO_STEP = 0.3  # fraction of Eq. 2's step beyond z_B
AUTO_RECONSTRUCTION = 2.0  # reconstruction residual of B, in noise sigmas, above which decoding is residual


@dataclass(frozen=True)
class Step:
    """How a deblurring pair is decoded: ``strength`` of Eq. 2's step beyond ``z_B``; ``residual`` decodes
    ``x_B + D(z') - D(z_B)`` instead of ``D(z')``; ``rule`` says which rule chose it."""

    strength: float
    residual: bool
    rule: str


def parse_strength(value) -> str:
    """``"auto"``, ``"model"`` or a number in (0, 1] (as text); :class:`InputError` for anything else."""
    text = str(value).strip().lower()
    if text in ("auto", "model"):
        return text
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"strength must be auto, model or a number in (0, 1]; got {value!r}. "
                         "Pass e.g. --strength 1 for Eq. 2 exactly") from None
    return repr(check_strength(number))


def default_step(reconstruction_sigmas: float) -> Step:
    """The default rule: ``AUTO_STEP`` of Eq. 2's step, decoded as the model reconstructs plane B.

    ``reconstruction_sigmas`` is the RMS of ``x_B - D(E(x_B))`` over the noise sigma of ``x_B``. Where the
    model reproduces B to within ``AUTO_RECONSTRUCTION`` noise sigmas, plain decoding ``D(z')`` keeps its
    denoising; where it loses more of B (content unlike its training data), decoding is residual,
    ``x_B + D(z') - D(z_B)``: B's detail is kept and only the model's change towards focus is added.
    Both numbers were chosen leave-one-series-out on real series (see the README's results).
    """
    residual = reconstruction_sigmas > AUTO_RECONSTRUCTION
    why = (f"auto: reconstruction residual {reconstruction_sigmas:.1f} sigma -> step {AUTO_STEP:g} of Eq. 2, "
           + ("residual decoding" if residual else "plain decoding"))
    return Step(AUTO_STEP, residual, why)


def resolve_step(setting: str, calibrated: float, measure=None) -> Step:
    """The :class:`Step` for a strength ``setting``: ``"auto"`` (:func:`default_step`, with
    ``measure() -> reconstruction_sigmas``), ``"model"`` (the model's ``calibrated``
    fraction) or a number (that fraction; 1 is Eq. 2 exactly). Only the default rule decodes residually."""
    setting = parse_strength(setting)
    if setting == "auto":
        return default_step(measure())
    if setting == "model":
        return Step(check_strength(calibrated), False, f"model: the model's calibrated strength {calibrated:g}")
    s = float(setting)
    return Step(s, False, "Eq. 2 exactly" if s == 1 else f"fixed: {s:g} of Eq. 2's step")
