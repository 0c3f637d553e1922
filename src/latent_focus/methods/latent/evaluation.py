"""Paper-style evaluation of a model on real z-stacks with a known in-focus plane.

Deblurring: every pair (B, C) on one side of focus, ``B`` sharper, with ``alpha = 1 - d_B/d_C``: first as
the ``latent`` method deblurs by default (the default rule, ``--strength auto``;
:func:`summarize_default_rule`), then extrapolated to the focus plane (Eq. 2), and again with the model's
calibrated strength when it has one (:func:`latent.damp_alpha`; :func:`fit_strength` fits it). Blur
synthesis: every triplet (A, B, C) with ``B`` between, interpolated with the alpha given by the defocus
distances. Each result sits beside two baselines on the same case: identity (the least blurry input
plane) and the same arithmetic done on pixels; given a PSF (``defocus -> kernel``), deblurring also sits
beside Richardson-Lucy deconvolution of the sharper plane with the PSF of its defocus. Metrics are
computed on per-stack normalised intensities (robust percentiles -> [0, 1]). LDS and APD are scored on
each side of focus; APD also with its reference paced by the planes' defocus (:func:`metrics.apd`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ...engine import LatentFocus
from ...errors import InputError
from ...focus import deblur_pairs, triplets_for
from ...io import Stack, check_plane_index, plane_positions
from ...latent import alpha_from_defocus, check_strength, damp_alpha, extrapolate, interpolate
from ...metrics import linearity_by_side, psnr, ssim
from ...optics.deconvolution import richardson_lucy
from .params import LatentParams
from .stack_job import StackJob

DEFAULT_RULE = "auto"  # the strength setting of the default rule, the latent method's default everywhere


@dataclass
class StackReport:
    source: str
    focus: int
    deblur: list[dict] = field(default_factory=list)
    synthesis: list[dict] = field(default_factory=list)
    lds: dict = field(default_factory=dict)
    apd: dict = field(default_factory=dict)
    apd_spaced: dict = field(default_factory=dict)  # APD with the reference at the planes' defocus spacing
    strength: float = 1.0  # the model's calibrated deblurring strength, used in the calibrated columns


class StackPlanes:
    """One stack ready for evaluation: normalised planes, defocus from focus, each latent encoded once (shared
    with the ``latent`` method's job, which decodes the default rule)."""

    def __init__(self, engine: LatentFocus, stack: Stack, focus: int):
        self.engine = engine
        self.focus = check_plane_index(focus, stack.n_planes)
        self.pos = plane_positions(stack.n_planes, stack.z_um)
        self.rel = self.pos - self.pos[self.focus]
        self.job = StackJob(engine, stack, LatentParams(strength=DEFAULT_RULE, tile=engine.tile), focus=self.focus)
        self.norm = self.job.norm
        self.x = self.norm.normalize(stack.data)
        self.z = self.job.latent
        self.identity_psnr = cache(lambda i: psnr(self.x[self.focus], self.x[i]))

    def default_rule(self, b: int, c: int, alpha: float):
        """Plane ``b`` deblurred with ``c`` as the ``latent`` method does by default: normalised, and its rule."""
        params = LatentParams(alpha=alpha, strength=DEFAULT_RULE, tile=self.job.plan.tile)
        result = self.job.with_params(params).restore(b, c)
        return self.norm.normalize(result.image), result.info["rule"]

    def decode(self, latent) -> np.ndarray:
        """A latent decoded to normalised intensities, comparable with :attr:`x`."""
        return self.norm.normalize(self.engine.decode(latent))

    def gain(self, b: int, latent) -> float:
        """PSNR gain (dB) of ``latent``, decoded, over plane ``b`` as it is, both against the focus plane."""
        return psnr(self.x[self.focus], self.decode(latent)) - self.identity_psnr(b)

    def deblur_cases(self) -> list[tuple[int, int, float]]:
        """``(B, C, alpha)`` of every deblurring pair, alpha extrapolating to the focus plane."""
        return [(b, c, alpha_from_defocus(self.rel[b], self.rel[c])) for b, c in deblur_pairs(self.rel, self.focus)]


def evaluate_stack(engine: LatentFocus, stack: Stack, focus: int, max_pairs: int | None = None,
                   psf: Callable[[float], np.ndarray] | None = None, rl_iterations: int = 30) -> StackReport:
    """Deblurring and blur-synthesis cases, LDS and APD of one stack; see the module docstring.

    ``psf(d)`` gives the blur kernel at defocus ``d`` (micrometres when the stack has z positions, else
    planes); with it every deblurring case gets a Richardson-Lucy column (``rl_iterations`` iterations).
    """
    planes = StackPlanes(engine, stack, focus)
    focus, rel, x, z, dec = planes.focus, planes.rel, planes.x, planes.z, planes.decode

    # each plane is encoded, reconstructed, scored as identity and deconvolved at most once, however many
    # cases use it
    @cache
    def recon(i):
        return dec(z(i))

    @cache
    def identity_ssim(i):
        return ssim(x[focus], x[i])

    @cache
    def restored(i):
        return richardson_lucy(x[i], psf(rel[i]), rl_iterations)

    report = StackReport(stack.source, focus, strength=engine.strength)
    target = x[focus]
    for b, c, alpha in planes.deblur_cases()[:max_pairs]:
        auto, rule = planes.default_rule(b, c, alpha)
        out = dec(extrapolate(z(b), z(c), alpha))
        calibrated = out
        if engine.strength != 1:
            calibrated = dec(extrapolate(z(b), z(c), damp_alpha(alpha, engine.strength)))
        residual = x[b] + out - recon(b)
        pixel = extrapolate(x[b], x[c], alpha)
        row = {
            "B": b, "C": c, "alpha": round(float(alpha), 4), "defocus_B": float(rel[b]),
            "auto_psnr": psnr(target, auto), "auto_ssim": ssim(target, auto), "auto_rule": rule,
            "psnr": psnr(target, out), "ssim": ssim(target, out),
            "psnr_vs_reconstruction": psnr(recon(focus), out),
            "calibrated_psnr": psnr(target, calibrated),
            "calibrated_ssim": ssim(target, calibrated),
            "residual_psnr": psnr(target, residual), "residual_ssim": ssim(target, residual),
            "identity_psnr": planes.identity_psnr(b), "identity_ssim": identity_ssim(b),
            "pixel_psnr": psnr(target, pixel), "pixel_ssim": ssim(target, pixel),
        }
        if psf is not None:
            row.update(rl_psnr=psnr(target, restored(b)), rl_ssim=ssim(target, restored(b)))
        report.deblur.append(row)
    for a, b, c, alpha in triplets_for(stack.n_planes, stack.z_um, focus, "all")[:max_pairs]:
        out = dec(interpolate(z(a), z(c), alpha))
        pixel = interpolate(x[a], x[c], alpha)
        report.synthesis.append({
            "A": a, "B": b, "C": c, "alpha": round(float(alpha), 4),
            "psnr": psnr(x[b], out), "psnr_vs_reconstruction": psnr(recon(b), out),
            "ssim": ssim(x[b], out),
            "identity_psnr": psnr(x[b], x[a]), "pixel_psnr": psnr(x[b], pixel),
        })
    for side, geo in linearity_by_side(lambda i: z(i).flatten(), planes.pos, focus).items():
        report.lds[side], report.apd[side], report.apd_spaced[side] = geo.lds, geo.apd, geo.apd_spaced
    return report


def summarize(reports: list[StackReport]) -> dict:
    """Medians over all cases of all stacks; LDS and APD are means over the sides of focus."""
    def med(rows, key):
        vals = [r[key] for r in rows if key in r and np.isfinite(r[key])]
        return float(np.median(vals)) if vals else float("nan")

    def gain(rows, key, stat):
        return float(stat([r[key] - r["identity_psnr"] for r in rows])) if rows else float("nan")

    def mean_over_sides(attr):
        vals = [v for rep in reports for v in getattr(rep, attr).values()]
        return float(np.mean(vals)) if vals else float("nan")

    deb = [r for rep in reports for r in rep.deblur]
    syn = [r for rep in reports for r in rep.synthesis]
    return {
        "deblur_cases": len(deb),
        "deblur_psnr": med(deb, "psnr"), "deblur_ssim": med(deb, "ssim"),
        "deblur_psnr_vs_reconstruction": med(deb, "psnr_vs_reconstruction"),
        "residual_psnr": med(deb, "residual_psnr"), "residual_ssim": med(deb, "residual_ssim"),
        "identity_psnr": med(deb, "identity_psnr"), "identity_ssim": med(deb, "identity_ssim"),
        "pixel_psnr": med(deb, "pixel_psnr"), "pixel_ssim": med(deb, "pixel_ssim"),
        "rl_psnr": med(deb, "rl_psnr"), "rl_ssim": med(deb, "rl_ssim"),
        "deblur_gain_over_identity_db": gain(deb, "psnr", np.median),
        "deblur_worst_gain_db": gain(deb, "psnr", np.min),
        "strength": reports[0].strength if reports else float("nan"),
        "calibrated_psnr": med(deb, "calibrated_psnr"), "calibrated_ssim": med(deb, "calibrated_ssim"),
        "calibrated_gain_over_identity_db": gain(deb, "calibrated_psnr", np.median),
        "calibrated_worst_gain_db": gain(deb, "calibrated_psnr", np.min),
        "synthesis_cases": len(syn),
        "synthesis_psnr": med(syn, "psnr"),
        "synthesis_psnr_vs_reconstruction": med(syn, "psnr_vs_reconstruction"),
        "synthesis_identity_psnr": med(syn, "identity_psnr"),
        "synthesis_pixel_psnr": med(syn, "pixel_psnr"),
        "lds": mean_over_sides("lds"), "apd": mean_over_sides("apd"), "apd_spaced": mean_over_sides("apd_spaced"),
    }


def summarize_default_rule(reports: list[StackReport]) -> dict:
    """The default rule over all deblurring cases: medians of PSNR and SSIM, median and worst gain over identity."""
    rows = [r for rep in reports for r in rep.deblur]
    gains = [r["auto_psnr"] - r["identity_psnr"] for r in rows]

    def stat(fn, values):
        return float(fn(values)) if values else float("nan")

    return {"name": DEFAULT_RULE, "cases": len(rows), "psnr": stat(np.median, [r["auto_psnr"] for r in rows]),
            "ssim": stat(np.median, [r["auto_ssim"] for r in rows]),
            "gain_over_identity_db": stat(np.median, gains), "worst_gain_db": stat(np.min, gains)}


def format_table(reports: list[StackReport], summary: dict, model_name: str) -> str:
    """Plain-text table: one row per case, then the medians, the default rule first."""
    with_rl = np.isfinite(summary["rl_psnr"])
    lines = [f"model: {model_name}", f"deblurring: the default rule (--strength {DEFAULT_RULE}) first, then Eq. 2 "
             "(--strength 1) and the model's calibrated strength", ""]
    for rep in reports:
        lines += [f"{rep.source}  (focus plane {rep.focus})", *_deblur_rows(rep, with_rl), *_synthesis_rows(rep)]
        for side in rep.lds:
            lines.append(f"latent geometry {side} focus: LDS {rep.lds[side]:.3f}  APD {rep.apd[side]:.4f}"
                         f"  (at the planes' spacing {rep.apd_spaced[side]:.4f})")
        lines.append("")
    return "\n".join(lines + _deblur_medians(reports, summary, with_rl) + [""] + _synthesis_medians(summary))


def _deblur_rows(rep: StackReport, with_rl: bool) -> list[str]:
    head = (f"{'task':<10}{'planes':<12}{'alpha':>7}{'rule PSNR':>10}{'rule SSIM':>10}{'Eq2 PSNR':>9}{'Eq2 SSIM':>9}"
            f"{'PSNR_rec':>9}{'id PSNR':>9}{'id SSIM':>8}{'px PSNR':>9}{'px SSIM':>8}")
    lines = [head + (f"{'RL PSNR':>9}{'RL SSIM':>8}" if with_rl else "")] if rep.deblur else []
    for r in rep.deblur:
        planes = "B={} C={}".format(r["B"], r["C"])
        lines.append(f"{'deblur':<10}{planes:<12}{r['alpha']:>7.3f}{r['auto_psnr']:>10.2f}{r['auto_ssim']:>10.3f}"
                     f"{r['psnr']:>9.2f}{r['ssim']:>9.3f}{r['psnr_vs_reconstruction']:>9.2f}"
                     f"{r['identity_psnr']:>9.2f}{r['identity_ssim']:>8.3f}{r['pixel_psnr']:>9.2f}{r['pixel_ssim']:>8.3f}"
                     + (f"{r['rl_psnr']:>9.2f}{r['rl_ssim']:>8.3f}" if "rl_psnr" in r else ""))
    return lines


def _synthesis_rows(rep: StackReport) -> list[str]:
    head = f"{'task':<10}{'planes':<12}{'alpha':>7}{'PSNR':>8}{'PSNR_rec':>9}{'SSIM':>7}{'id PSNR':>9}{'px PSNR':>9}"
    lines = [head] if rep.synthesis else []
    for r in rep.synthesis:
        planes = "{}>{}<{}".format(r["A"], r["B"], r["C"])
        lines.append(f"{'synthesis':<10}{planes:<12}{r['alpha']:>7.3f}{r['psnr']:>8.2f}"
                     f"{r['psnr_vs_reconstruction']:>9.2f}{r['ssim']:>7.3f}{r['identity_psnr']:>9.2f}"
                     f"{r['pixel_psnr']:>9.2f}")
    return lines


def _deblur_medians(reports: list[StackReport], s: dict, with_rl: bool) -> list[str]:
    """Deblurring medians, one line per way of deblurring: PSNR and SSIM against the real focus, gain over B."""
    rule = summarize_default_rule(reports)

    def line(label, psnr_, ssim_, gain=None, worst=None):
        text = f"{label:<48}{psnr_:>8.2f}{ssim_:>8.3f}"
        return text + (f"{gain:>+9.2f}{worst:>+9.2f}" if gain is not None else "")

    lines = [f"{'deblurring, medians over all cases':<48}{'PSNR':>8}{'SSIM':>8}{'gain dB':>9}{'worst':>9}",
             line(f"default rule (--strength {DEFAULT_RULE})", rule["psnr"], rule["ssim"],
                  rule["gain_over_identity_db"], rule["worst_gain_db"]),
             line("Eq. 2 (--strength 1)", s["deblur_psnr"], s["deblur_ssim"], s["deblur_gain_over_identity_db"],
                  s["deblur_worst_gain_db"])]
    if s["strength"] != 1:
        lines.append(line(f"calibrated strength {s['strength']:.2f} (--strength model)", s["calibrated_psnr"],
                          s["calibrated_ssim"], s["calibrated_gain_over_identity_db"], s["calibrated_worst_gain_db"]))
    lines += [line("identity (plane B as it is)", s["identity_psnr"], s["identity_ssim"]),
              line("pixel-space Eq. 2", s["pixel_psnr"], s["pixel_ssim"])]
    if with_rl:
        lines.append(line("Richardson-Lucy", s["rl_psnr"], s["rl_ssim"]))
    return lines + [line("Eq. 2, residual decoding (x_B + D(z') - D(z_B))", s["residual_psnr"], s["residual_ssim"]),
                    f"{'Eq. 2, PSNR vs the reconstructed focus plane':<48}{s['deblur_psnr_vs_reconstruction']:>8.2f}"]


def _synthesis_medians(s: dict) -> list[str]:
    return [
        "blur synthesis (Eq. 1), medians                   model  identity  pixel-space",
        f"PSNR (vs real plane)                         {s['synthesis_psnr']:>10.2f}"
        f"{s['synthesis_identity_psnr']:>10.2f}{s['synthesis_pixel_psnr']:>13.2f}",
        f"PSNR vs reconstruction                       {s['synthesis_psnr_vs_reconstruction']:>10.2f}",
        f"LDS (higher is better, 1 = linear)           {s['lds']:>10.3f}",
        f"APD (lower is better)                        {s['apd']:>10.4f}",
        f"APD at the planes' defocus spacing           {s['apd_spaced']:>10.4f}   (= APD when equally spaced)",
    ]


def strength_gains(engine: LatentFocus, stack: Stack, focus: int, strengths) -> np.ndarray:
    """PSNR gain over identity (dB) of every deblurring pair at every strength: (pairs, strengths)."""
    strengths = [check_strength(s) for s in strengths]
    planes = StackPlanes(engine, stack, focus)
    z = planes.z
    rows = [[planes.gain(b, extrapolate(z(b), z(c), damp_alpha(alpha, s))) for s in strengths]
            for b, c, alpha in planes.deblur_cases()]
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(strengths))


def fit_strength(gains: np.ndarray, strengths) -> tuple[float, list[dict]]:
    """The strength with the highest mean PSNR gain over identity, and every strength's statistics.

    ``gains`` stacks :func:`strength_gains` of all calibration stacks. The mean, unlike the median,
    charges a strength for the cases where it loses badly.
    """
    if gains.size == 0:
        raise InputError("no deblurring pairs to calibrate on: each stack needs two planes on one side of focus")
    table = [{"strength": float(s), "mean_gain_db": float(g.mean()), "median_gain_db": float(np.median(g)),
              "worst_gain_db": float(g.min())} for s, g in zip(strengths, gains.T)]
    best = max(table, key=lambda row: row["mean_gain_db"])
    return best["strength"], table


#: how :func:`latent_cases` decodes each pair: the strength setting of the ``latent`` method, and whether the
#: result is taken as decoded (``plain``) or as ``x_B + D(z') - D(z_B)`` (``res``); ``auto`` decides by itself
LATENT_COLUMNS = {"auto": ("auto", None), "model": ("model", False), "model+res": ("model", True),
                  "eq2": ("1", False), "eq2+res": ("1", True), "recon": (None, False)}


def latent_cases(method, stack: Stack, focus: int, pairs=None, strengths=(), score=None) -> list[dict]:
    """Every deblurring pair of one stack decoded as the ``latent`` method does, for several strength settings.

    ``method`` is a loaded ``latent`` method; one :class:`~latent_focus.methods.latent.StackJob` per stack,
    given the known ``focus``, encodes each plane once for every pair and setting. Columns
    (:data:`LATENT_COLUMNS`): ``auto`` (the default rule, with its own choice of decoding), ``model`` and
    ``eq2`` (the calibrated strength and Eq. 2, decoded plainly) and their residual decodings
    ``x_B + D(z') - D(z_B)``, ``recon`` (``D(E(x_B))``, no step), plus ``s<k>`` and ``s<k>+res`` for each
    fixed fraction ``k`` in ``strengths``. ``pairs`` limits the ``(B, C)`` pairs (default: all of
    :func:`latent_focus.focus.deblur_pairs`). ``score(b, image) -> dict`` adds the keys it returns for each
    decoded image (default: PSNR and SSIM against the focus plane, on the model's normalisation).
    """
    focus = check_plane_index(focus, stack.n_planes)
    rel = plane_positions(stack.n_planes, stack.z_um) - plane_positions(stack.n_planes, stack.z_um)[focus]
    job = StackJob(method.engine, stack, LatentParams(), focus=focus)
    x = job.norm.normalize(stack.data)
    if score is None:
        def score(b, image):
            out = job.norm.normalize(image)
            return {"psnr": psnr(x[focus], out), "ssim": ssim(x[focus], out)}
    columns = dict(LATENT_COLUMNS)
    for k in strengths:
        columns[f"s{k:g}"], columns[f"s{k:g}+res"] = (repr(check_strength(k)), False), (repr(check_strength(k)), True)
    rows = []
    for b, c in (deblur_pairs(rel, focus) if pairs is None else pairs):
        alpha = alpha_from_defocus(rel[b], rel[c])
        row = {"B": b, "C": c, "alpha": round(float(alpha), 4), "defocus_B": float(rel[b]),
               **{f"identity_{k}": v for k, v in score(b, stack.data[b]).items()}}
        pixel = extrapolate(stack.data[b], stack.data[c], alpha).astype(np.float32)
        row.update({f"pixel_{k}": v for k, v in score(b, pixel).items()})
        decoded = {}
        for name, (setting, residual) in columns.items():
            if setting is None:
                image = job.reconstruction(b)
            else:
                if setting not in decoded:
                    result = job.with_params(LatentParams(alpha=alpha, strength=setting)).restore(b, c)
                    plain = result.image
                    if result.info["decoding"] == "residual":  # only the default rule decodes residually
                        plain = plain - stack.data[b] + job.reconstruction(b)
                    decoded[setting] = (result, plain)
                    if setting == "auto":
                        row["auto_rule"] = result.info["rule"]
                result, plain = decoded[setting]
                image = result.image if residual is None else plain
                if residual:
                    image = stack.data[b] + plain - job.reconstruction(b)
            row.update({f"{name}_{k}": v for k, v in score(b, image).items()})
        rows.append(row)
    return rows
