"""Score any restoration method on real z-stacks with a known in-focus plane, next to identity and pixel-space
extrapolation (``latent-focus evaluate --method``). The latent method's paper-style table is
:mod:`latent_focus.methods.latent.evaluation`.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .focus import deblur_pairs
from .io import Normalizer, Stack, check_plane_index, plane_positions
from .latent import alpha_from_defocus, extrapolate
from .metrics import psnr, ssim


def check_focus(focus: list[int], n_stacks: int) -> list[int]:
    if len(focus) == 1:
        return focus * n_stacks
    if len(focus) != n_stacks:
        raise InputError(f"--focus takes one plane index, or one per stack ({n_stacks}); got {len(focus)}")
    return focus


def method_cases(method, stack: Stack, focus: int, max_cases: int | None = None) -> list[dict]:
    """Score a restoration method on every deblurring case of one stack against its in-focus plane.

    Pair methods run on every (B, C) of :func:`latent_focus.focus.deblur_pairs`; single-plane methods on
    every plane but the focus. Scores use the stack's normalised intensities (robust percentiles -> [0, 1]).
    """
    from .methods import PAIR, run

    focus = check_plane_index(focus, stack.n_planes)
    rel = plane_positions(stack.n_planes, stack.z_um) - plane_positions(stack.n_planes, stack.z_um)[focus]
    norm = Normalizer.from_data(stack.data)
    x = norm.normalize(stack.data)
    params = method.default_params()
    if method.input == PAIR:
        cases = [(b, c) for b, c in deblur_pairs(rel, focus)]
    else:
        cases = [(b, None) for b in range(stack.n_planes) if b != focus]
    rows = []
    for b, c in cases[:max_cases]:
        out = norm.normalize(run(method.restore(stack, b, params, partner=c)).image)
        row = {"source": stack.source, "B": b, "C": c, "defocus_B": float(rel[b]),
               "psnr": psnr(x[focus], out), "ssim": ssim(x[focus], out),
               "identity_psnr": psnr(x[focus], x[b]), "identity_ssim": ssim(x[focus], x[b])}
        if c is not None:
            alpha = alpha_from_defocus(rel[b], rel[c])
            row["pixel_psnr"] = psnr(x[focus], extrapolate(x[b], x[c], alpha))
        rows.append(row)
    return rows


def evaluate_methods(names: list[str], stacks: list[Stack], focus: list[int], model=None, device: str = "auto",
                     max_cases: int | None = None) -> list[dict]:
    """One summary row per method over all stacks: medians of PSNR, SSIM and the gain over identity."""
    from .methods import load_method

    rows = []
    for name in names:
        method = load_method(name, model, device)
        cases = [r for s, f in zip(stacks, focus) for r in method_cases(method, s, f, max_cases)]
        gains = [r["psnr"] - r["identity_psnr"] for r in cases]

        def med(key):
            values = [r[key] for r in cases if key in r]
            return float(np.median(values)) if values else float("nan")

        rows.append({"method": name, "cases": len(cases), "psnr": med("psnr"), "ssim": med("ssim"),
                     "identity_psnr": med("identity_psnr"), "identity_ssim": med("identity_ssim"),
                     "pixel_psnr": med("pixel_psnr"),
                     "gain_db": float(np.median(gains)) if gains else float("nan"),
                     "worst_gain_db": float(np.min(gains)) if gains else float("nan"), "per_case": cases,
                     "extra": method.extra_scores(stacks, focus)})
    return rows


def format_methods(rows: list[dict]) -> str:
    """One line per method next to identity and pixel-space extrapolation (medians over all cases)."""
    lines = [f"{'method':<20}{'cases':>6}{'PSNR':>8}{'SSIM':>7}{'id PSNR':>9}{'id SSIM':>8}{'px PSNR':>9}"
             f"{'gain dB':>9}{'worst':>7}"]
    for r in rows:
        lines.append(f"{r['method']:<20}{r['cases']:>6}{r['psnr']:>8.2f}{r['ssim']:>7.3f}{r['identity_psnr']:>9.2f}"
                     f"{r['identity_ssim']:>8.3f}{r['pixel_psnr']:>9.2f}{r['gain_db']:>+9.2f}{r['worst_gain_db']:>+7.2f}")
    for r in rows:
        if r.get("extra"):
            lines.append(f"{r['method']}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["extra"].items()))
    return "\n".join(lines)
