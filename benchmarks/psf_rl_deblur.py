"""Single-plane deblurring of real planes at several distances from focus, scored against the real in-focus plane.

    python benchmarks/psf_rl_deblur.py [--model FOLDER] [--series neubias bead ...] [--json OUT]

Columns, all on the same plane (PSNR and SSIM on per-stack normalised intensities, as ``latent-focus evaluate``):

* identity: the plane as it is;
* oracle RL: Richardson-Lucy (30 iterations) with the PSF of the true defocus (Born & Wolf, the series' optics);
* oracle refocus: psf-rl's default (target focus) told the true defocus instead of estimating it;
* richardson-lucy: ``--method richardson-lucy`` with the series' optics (defocus from its spectral estimator);
* latent: ``--method latent`` on the plane and its blurrier neighbour (the shipped model);
* psf-rl: ``--method psf-rl`` as a user runs it (target focus, everything estimated from the plane);
* psf-rl object: the same with ``--target object``.

Only psf-rl and richardson-lucy see nothing but the plane; the oracle columns know the true defocus. Nothing is
tuned on these planes: psf-rl's iteration rule comes from scripts/fit_psf_rl_rule.py (simulated stacks).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from latent_focus.io import Normalizer
from latent_focus.methods import load_method, run
from latent_focus.methods.psf_rl import PsfRLParams
from latent_focus.methods.richardson_lucy import RLParams
from latent_focus.metrics import psnr, ssim
from latent_focus.optics import born_wolf_psf
from latent_focus.optics.deconvolution import richardson_lucy
from psf_rl_series import load_series

OFFSETS = {"neubias": (-10, -6, -4, -2, 2, 4, 6, 10), "bead": (-8, -4, -2, 2, 4, 8),
           "mitochondria": (-12, -8, -4, 4, 8, 12), "microtubules": (-8, -4, 4, 8, 12, 16)}
COLUMNS = ("identity", "oracle RL", "oracle refocus", "richardson-lucy", "latent", "psf-rl", "psf-rl object")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="psf-rl estimator (default: the shipped psf-widefield)")
    p.add_argument("--series", nargs="+", default=list(OFFSETS), choices=list(OFFSETS))
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    psf_rl = load_method("psf-rl", args.model, "cpu")
    latent = load_method("latent", None, "cpu")
    rl = load_method("richardson-lucy", None, "cpu")
    rows = []
    for s in load_series(names=args.series):
        norm = Normalizer.from_data(s.stack.data)
        x = norm.normalize(s.stack.data)
        o = s.optics
        optics = (o.na, o.wavelength_um, o.n_immersion)
        for d in OFFSETS[s.name]:
            b = s.focus + d
            if not 0 <= b < s.stack.n_planes:
                continue
            dz = float(abs(s.rel_um[b]))
            outs = {"identity": s.stack.data[b]}
            psf = born_wolf_psf(dz, o.na, o.wavelength_um, o.n_immersion, o.pixel_size_um)
            outs["oracle RL"] = richardson_lucy(s.stack.data[b], psf, 30)
            est = run(psf_rl.restore(s.stack, b, PsfRLParams(optics=optics)))
            outs["psf-rl"] = est.image
            outs["oracle refocus"] = run(psf_rl.restore(s.stack, b, PsfRLParams(optics=optics, defocus=dz))).image
            outs["psf-rl object"] = run(psf_rl.restore(s.stack, b, PsfRLParams(optics=optics, target="object"))).image
            outs["richardson-lucy"] = run(rl.restore(s.stack, b, RLParams(optics=optics))).image
            outs["latent"] = run(latent.restore(s.stack, b, latent.default_params())).image
            row = {"series": s.name, "plane": b, "dz_um": float(s.rel_um[b]),
                   "psf_rl_estimate_um": est.info.get("defocus_um_median"), "psf_rl_iterations": est.info["iterations"]}
            for name in COLUMNS:
                y = norm.normalize(outs[name])
                row[name] = {"psnr": psnr(x[s.focus], y), "ssim": ssim(x[s.focus], y)}
            rows.append(row)
            print(f"{s.name} plane {b} (dz {row['dz_um']:+.2f} um, psf-rl estimate {row['psf_rl_estimate_um']} um, "
                  f"{row['psf_rl_iterations']} it): " + ", ".join(
                      f"{n} {row[n]['psnr']:.2f}" for n in COLUMNS), flush=True)
    print("\nPSNR (dB) / SSIM against the real in-focus plane\n")
    print("| series | plane | dz (um) | " + " | ".join(COLUMNS) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in COLUMNS) + " |")
    for r in rows:
        print(f"| {r['series']} | {r['plane']} | {r['dz_um']:+.2f} | " + " | ".join(
            f"{r[n]['psnr']:.2f} / {r[n]['ssim']:.3f}" for n in COLUMNS) + " |")
    print("\nGain over identity (dB): median over planes, and the worst plane\n")
    print("| method | " + " | ".join(f"{s} median | worst" for s in args.series) + " | all: median | worst |")
    print("| --- | " + " | ".join("--- | ---" for _ in args.series) + " | --- | --- |")
    for n in COLUMNS[1:]:
        cells = []
        for group in list(args.series) + [None]:
            g = [r[n]["psnr"] - r["identity"]["psnr"] for r in rows if group is None or r["series"] == group]
            cells.append(f"{np.median(g):+.2f} | {np.min(g):+.2f}" if g else "- | -")
        print(f"| {n} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
