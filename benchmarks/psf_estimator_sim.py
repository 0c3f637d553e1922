"""The PSF estimator on simulated held-out patches: R^2 and median absolute error of each parameter, by noise level.

    python benchmarks/psf_estimator_sim.py [--model FOLDER] [--modality widefield] [--content FILE] [--n 400]

Held out twice over: other content than training (default: the DAPI image of the HeLa set, a widefield plane of
nuclei; licence MIT with a non-commercial clause, used here for evaluation only, never shipped) and other seeds.
Each noise level fixes the brightest in-focus pixel at that many photons (brightfield: the clear background);
everything else (optics, defocus, astigmatism, illumination, background, read noise, rotation) is drawn as in
training. The last row, "ideal", is 10000 photons with no astigmatism, no haze and uniform illumination.
Widefield parameters are the canonical ones (|W|, s A0, s A45) the PSF determines; |A| is the astigmatism's
size, free of that sign. Each level is also scored on its "structured patches" alone: those whose structure
score (the estimator's own weight, from the patch, not from the truth) is at least 0.5.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from latent_focus.io import read_stack
from latent_focus.methods import load_method
from latent_focus.methods.psf_rl.estimator import structure_score
from latent_focus.methods.psf_rl.sampling import normalize_patches
from latent_focus.methods.psf_rl.simulation import SimulationRecipe, simulate_sample
from latent_focus.methods.psf_rl.training import predict, r2_scores

REPO = Path(__file__).resolve().parents[1]
LEVELS = (30.0, 100.0, 1000.0, 10000.0)


def samples(content, recipe: SimulationRecipe, n: int, seed: int):
    out = [simulate_sample(content, np.random.default_rng([seed, k]), recipe) for k in range(n)]
    patches = torch.from_numpy(np.stack([o[0] for o in out]))[:, None]
    cond = torch.from_numpy(np.stack([o[1] for o in out]))
    return (normalize_patches(patches), cond, np.stack([o[2] for o in out]), [o[3] for o in out],
            structure_score(patches))


def r2_or_nan(pred: np.ndarray, truth: np.ndarray) -> list[float]:
    """R^2 per column; NaN where the truth does not vary (e.g. no astigmatism at all)."""
    return [r if truth[:, k].std() > 1e-6 else float("nan") for k, r in enumerate(r2_scores(pred, truth))]


def scores(est: np.ndarray, truth: np.ndarray, meta: list[dict]) -> dict:
    r2 = r2_or_nan(est[:, :3], truth)
    mae = np.median(np.abs(est[:, :3] - truth), axis=0)
    size_est, size_true = np.hypot(est[:, 1], est[:, 2]), np.hypot(truth[:, 1], truth[:, 2])
    per_um = np.array([m["defocus_um"] / w if w else np.nan for m, w in zip(meta, truth[:, 0])])
    z_err = np.abs(est[:, 0] - truth[:, 0]) * np.abs(per_um)
    return {"n": int(len(truth)), "r2_W": r2[0], "r2_A0": r2[1], "r2_A45": r2[2],
            "r2_astig_size": r2_or_nan(size_est[:, None], size_true[:, None])[0],
            "mae_W": float(mae[0]), "mae_A0": float(mae[1]), "mae_A45": float(mae[2]),
            "mae_defocus_um": float(np.nanmedian(z_err))}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--modality", default="widefield", choices=("widefield", "brightfield"))
    p.add_argument("--content", type=Path, default=REPO.parent / "shared" / "data" / "brightfield_hela_set1" /
                   "dapi_fl.tif")
    p.add_argument("--n", type=int, default=400, help="patches per noise level")
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    content = [read_stack(args.content).data[0]]
    method = load_method("psf-rl", args.model, "cpu")
    est_model = method.estimator(args.modality)
    trained = est_model.card.training["recipe"]["recipe"]
    base = SimulationRecipe(modality=args.modality, max_waves=trained["max_waves"], max_astig=trained["max_astig"])
    rows = {}
    cases = [(f"{level:g} photons", replace(base, photons=(level, level))) for level in LEVELS]
    cases.append(("ideal (10000 photons, no astigmatism, no haze, even illumination)",
                  replace(base, photons=(1e4, 1e4), max_astig=0.0, haze=0.0, illumination=0.0)))
    for i, (name, recipe) in enumerate(cases):
        x, c, truth, meta, structure = samples(content, recipe, args.n, args.seed + i)
        est = predict(est_model.model, x, c, torch.device("cpu"))
        rows[name] = scores(est, truth, meta)
        keep = structure >= 0.5
        rows[name + ", structured patches"] = scores(est[keep], truth[keep], [m for m, k in zip(meta, keep) if k])
        r = rows[name]
        print(f"{name}: R2 W {r['r2_W']:.3f}, A0 {r['r2_A0']:.3f}, A45 {r['r2_A45']:.3f}, |A| {r['r2_astig_size']:.3f};"
              f" median abs err W {r['mae_W']:.3f} waves ({r['mae_defocus_um']:.3f} um), A0 {r['mae_A0']:.3f}, "
              f"A45 {r['mae_A45']:.3f}", flush=True)
    print(f"\n{est_model.name} ({args.modality}), {args.n} held-out patches per row, content {args.content.name}\n")
    print("| noise | patches | R² W | R² A0 | R² A45 | R² abs(A) | median abs err W (waves) | (um) | A0 | A45 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r['n']} | {r['r2_W']:.3f} | {r['r2_A0']:.3f} | {r['r2_A45']:.3f} | "
              f"{r['r2_astig_size']:.3f} | {r['mae_W']:.3f} | {r['mae_defocus_um']:.3f} | {r['mae_A0']:.3f} | "
              f"{r['mae_A45']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
