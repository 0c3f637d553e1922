"""Held-out simulated planes: kernel-estimation error and deblurring PSNR against the noise-free in-focus truth.

Content comes from the ``cells3d`` planes the training held out (51-59) and from procedural blobs and
filaments; the microscopes (optics, defocus, noise) are drawn from a generator seed the training never
used. Each plane is scored as it is (identity), deblurred with the estimated kernel (the method), and
deblurred with the true kernel (how much better kernels would help). Kernel error is the sum of absolute
differences of the 33 x 33 kernels (0 to 2) and the difference of their radii (``kernel_radius``).

    python benchmarks/analysis_synthesis_sim.py [--model FOLDER] [--samples 240] [--json OUT.json]
        [--strength S] [--strengths 0.5 1 1.5 ...] [--seed N]

``--strengths`` also prints the mean and median gain over the defocused planes for each fraction of the
synthesis correction (the method's ``--strength``): with another ``--seed`` than the one reported, that is
how a strength is calibrated without the real series.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from latent_focus.io import read_stack
from latent_focus.methods.analysis_synthesis.inference import Pair
from latent_focus.methods.analysis_synthesis.simulation import kernel_radius, make_samples, make_settings
from latent_focus.metrics import psnr

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BINS = [(0, 0, "in focus"), (0, 4, "radius 0-4 px"), (4, 8, "4-8 px"), (8, 16, "8-16 px"), (16, 1e9, "> 16 px")]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--samples", type=int, default=240)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--strength", type=float, default=1.0, help="fraction of the correction applied")
    p.add_argument("--strengths", type=float, nargs="*", default=[])
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    pair = Pair(args.model, "cpu")
    cells = read_stack(DATA / "cells3d_nuclei_confocal" / "stack.tif").data[51:]
    bead = read_stack(DATA / "psf_widefield_bead_560nm" / "stack.tif")
    rng = np.random.default_rng([args.seed, 7])
    settings = make_settings(rng, 140, 60, 33, bead)
    samples = make_samples(list(cells), settings, rng, args.samples, args.crop)
    rows = []
    by_strength = {v: [] for v in args.strengths}
    with torch.inference_mode():
        for s in samples:
            x = torch.from_numpy(s.x)[None, None]
            k_est = pair.model.analysis(x)
            k_true = torch.from_numpy(s.kernel)[None, None]
            truth = s.x + s.residual
            res = {name: pair.model.synthesis.residual(x, k)[0, 0].numpy()
                   for name, k in (("estimated", k_est), ("true", k_true))}
            out = {name: s.x + args.strength * r for name, r in res.items()}
            if s.setting.z_um != 0:
                for v in args.strengths:
                    by_strength[v].append(psnr(truth, s.x + v * res["estimated"]) - psnr(truth, s.x))
            k = k_est[0, 0].numpy()
            radius = 0.0 if s.setting.z_um == 0 else s.setting.blur_radius_px
            rows.append({"modality": s.setting.modality, "kind": s.setting.kind, "radius_px": radius,
                         "kernel_error": float(np.abs(k - s.kernel).sum()),
                         "radius_error_px": abs(kernel_radius(k) - kernel_radius(s.kernel)),
                         "identity_psnr": psnr(truth, s.x),
                         "psnr": psnr(truth, out["estimated"]), "true_kernel_psnr": psnr(truth, out["true"])})
    print(f"{'samples':<28}{'n':>5}{'kernel err':>11}{'radius err':>11}{'identity':>10}{'method':>9}{'gain':>8}"
          f"{'true kernel':>12}")
    for modality in ("widefield", "brightfield", "all"):
        for lo, hi, label in BINS + [(None, None, "all")]:
            rs = [r for r in rows if modality in ("all", r["modality"])
                  and (lo is None or (r["radius_px"] == 0 if hi == 0 else lo < r["radius_px"] <= hi))]
            finite = [r for r in rs if np.isfinite(r["identity_psnr"])]
            if not rs:
                continue
            med = {k: float(np.median([r[k] for r in finite])) if finite else float("nan")
                   for k in ("identity_psnr", "psnr", "true_kernel_psnr")}
            gain = float(np.median([r["psnr"] - r["identity_psnr"] for r in finite])) if finite else float("nan")
            print(f"{modality + ', ' + label:<28}{len(rs):>5}{np.median([r['kernel_error'] for r in rs]):>11.3f}"
                  f"{np.median([r['radius_error_px'] for r in rs]):>11.2f}{med['identity_psnr']:>10.2f}"
                  f"{med['psnr']:>9.2f}{gain:>+8.2f}{med['true_kernel_psnr']:>12.2f}")
    for v, gains in by_strength.items():
        print(f"strength {v:.2f}: gain over identity on {len(gains)} defocused planes mean {np.mean(gains):+.3f} dB, "
              f"median {np.median(gains):+.3f} dB, worst {np.min(gains):+.2f} dB")
    focus = [r for r in rows if r["radius_px"] == 0]
    print(f"in-focus planes: identity PSNR is infinite (no residual); the method's PSNR against them: median "
          f"{np.median([r['psnr'] for r in focus]):.2f} dB" if focus else "")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
