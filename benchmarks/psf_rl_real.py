"""The PSF estimator on real defocus series: estimated |defocus| of every plane against the true |z - z_focus|,
and depth from a calibration fitted on one stack and tested on another of the same microscope.

    python benchmarks/psf_rl_real.py [--model FOLDER] [--brightfield-model FOLDER] [--json OUT]

Per series: Spearman correlation of the plane's estimate (confidence-weighted median of its map) with the true
distance from the in-focus plane, the median absolute error in um (the optics of some series are assumptions:
see benchmarks/psf_rl_series.py), and the range within which the estimator is not saturated. Depth: the
calibration (scale, offset and, where astigmatism allows, the side) is fitted with ``fit_calibration`` on one
stack and applied to the other stack's planes (the two dfnn light-sheet stacks come from one microscope).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from latent_focus.methods import load_method
from latent_focus.methods.psf_rl.depth import fit_calibration, plane_summary
from psf_rl_series import load_series


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="widefield estimator (default: the shipped psf-widefield)")
    p.add_argument("--brightfield-model", default=None, help="brightfield estimator (default: psf-brightfield)")
    p.add_argument("--series", nargs="+", default=None, help="only these series (default: all)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results, estimates = {}, {}
    for s in load_series(names=args.series):
        method = load_method("psf-rl", args.brightfield_model if s.modality == "brightfield" else args.model, "cpu")
        est = np.array([plane_summary(method.blur_maps(s.stack.data[i], s.optics, s.modality))
                        for i in range(s.stack.n_planes)])
        estimates[s.name] = est
        true = np.abs(s.rel_um)
        signed = s.modality == "brightfield"
        e = est[:, 0]
        row = {"planes": int(s.stack.n_planes), "range_um": [float(s.rel_um.min()), float(s.rel_um.max())],
               "spearman_abs": spearman(np.abs(e), true), "median_abs_error_um": float(np.median(np.abs(np.abs(e) -
                                                                                                      true))),
               "note": s.note, "per_plane": [{"z_um": float(z), "estimate_um": float(v)} for z, v in
                                             zip(s.rel_um, e)]}
        if signed:
            row["spearman_signed"] = spearman(e, s.rel_um)
        for side, sel in (("below", s.rel_um <= 0), ("above", s.rel_um >= 0)):
            row[f"spearman_{side}"] = spearman(np.abs(e[sel]), true[sel]) if sel.sum() > 2 else None
        results[s.name] = row
        print(f"{s.name}: {s.stack.n_planes} planes, z {row['range_um'][0]:+.2f}..{row['range_um'][1]:+.2f} um: "
              f"Spearman(|estimate|, |z|) {row['spearman_abs']:.3f}"
              + (f", Spearman(estimate, z) {row['spearman_signed']:.3f}" if signed else "")
              + f", median |error| {row['median_abs_error_um']:.2f} um; below / above focus "
              f"{row['spearman_below'] or float('nan'):.3f} / {row['spearman_above'] or float('nan'):.3f}", flush=True)
    depth = {}
    series = {s.name: s for s in load_series(names=("mitochondria", "microtubules"))}
    pairs = [("mitochondria", "microtubules"), ("microtubules", "mitochondria")]
    cases = [(f"{a} -> {b}", series[a], estimates[a], series[b], estimates[b], np.ones(series[b].stack.n_planes, bool))
             for a, b in pairs if a in estimates and b in estimates]
    if "neubias" in estimates:  # one stack, two halves: fitted below focus, tested above
        nb = load_series(names=("neubias",))[0]
        below = np.flatnonzero(nb.rel_um <= 0)
        half = type(nb)(nb.name, type(nb.stack)(nb.stack.data[below], nb.stack.z_um[below], nb.stack.pixel_size_um),
                        int(np.argmax(nb.stack.z_um[below])), nb.optics, nb.modality, nb.note)
        cases.append(("neubias below focus -> neubias above focus", half, estimates["neubias"][below], nb,
                      estimates["neubias"], nb.rel_um > 0))
    for name, a, est_a, b, est_b, test in cases:
        max_um = float(a.optics.defocus_um(10.0))
        cal = fit_calibration(a.stack.z_um, est_a, a.focus, "widefield", a.optics, max_um, "given")
        dist = cal.distance(np.abs(est_b[test, 0]))
        err = np.abs(dist - np.abs(b.rel_um[test]))
        row = {"scale": cal.scale, "offset_um2": cal.offset, "signed": cal.signed, "sign_agreement": cal.sign_agreement,
               "fit_rms_um": cal.residual_um, "test_median_abs_error_um": float(np.median(err)),
               "test_rms_um": float(np.sqrt(np.mean(err ** 2))), "test_range_um": float(np.abs(b.rel_um[test]).max())}
        if cal.signed:
            u = np.array(cal.sign_direction)
            side = np.sign(est_b[test, 1:] @ u)
            far = np.abs(b.rel_um[test]) > 0.2
            row["test_side_correct"] = float(np.mean(side[far] == np.sign(b.rel_um[test][far])))
        depth[name] = row
        print(f"depth, {name}: |z|^2 = {cal.scale:.2f} est^2 {cal.offset:+.3f}; "
              f"median error {row['test_median_abs_error_um']:.3f} um, rms {row['test_rms_um']:.3f} um over "
              f"+-{row['test_range_um']:.2f} um; {'signed' if cal.signed else 'unsigned'}", flush=True)
    print("\n| series | planes | z range (um) | Spearman (abs estimate vs abs z) | below / above focus | "
          "median abs error (um) |\n| --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        extra = f" (signed: {r['spearman_signed']:.3f})" if "spearman_signed" in r else ""
        sides = " / ".join("-" if r[k] is None else f"{r[k]:.3f}" for k in ("spearman_below", "spearman_above"))
        print(f"| {name} | {r['planes']} | {r['range_um'][0]:+.2f} to {r['range_um'][1]:+.2f} | "
              f"{r['spearman_abs']:.3f}{extra} | {sides} | {r['median_abs_error_um']:.2f} |")
    print("\n| depth calibration | scale | offset (um^2) | side from astigmatism | test median abs error (um) | "
          "test rms (um) |\n| --- | --- | --- | --- | --- | --- |")
    for name, r in depth.items():
        side = f"yes ({r['test_side_correct']:.0%} right)" if r["signed"] else "no"
        print(f"| {name} | {r['scale']:.2f} | {r['offset_um2']:+.3f} | {side} | {r['test_median_abs_error_um']:.3f} | "
              f"{r['test_rms_um']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"series": results, "depth": depth}, indent=1))


if __name__ == "__main__":
    main()
